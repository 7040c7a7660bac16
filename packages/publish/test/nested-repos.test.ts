import t from 'tap';
import { addedGitlinks } from '../src/nested-repos.js';

// Shapes as `git diff --no-renames --ignore-submodules=none --src-prefix=a/ --dst-prefix=b/ -U0` prints them.
const NEW_GITLINK = 'diff --git a/vendor/lib b/vendor/lib\nnew file mode 160000\nindex 0000000..8daec46\n--- /dev/null\n+++ b/vendor/lib\n@@ -0,0 +1 @@\n+Subproject commit 8daec46a0059f0582dfeee78e1a6e12586788dcc\n';
const FILE_TO_GITLINK = 'diff --git a/v/x b/v/x\ndeleted file mode 100644\nindex 7898192..0000000\n--- a/v/x\n+++ /dev/null\n@@ -1 +0,0 @@\n-a\n'
  + 'diff --git a/v/x b/v/x\nnew file mode 160000\nindex 0000000..8daec46\n--- /dev/null\n+++ b/v/x\n@@ -0,0 +1 @@\n+Subproject commit 8daec46a0059f0582dfeee78e1a6e12586788dcc\n';
const MOVED_SUBMODULE = 'diff --git a/sub b/sub\nindex 1111111..2222222 160000\n--- a/sub\n+++ b/sub\n@@ -1 +1 @@\n-Subproject commit 1111111111111111111111111111111111111111\n+Subproject commit 2222222222222222222222222222222222222222\n';
const CONTENT_LOOKING_LIKE_A_HEADER = 'diff --git a/notes.txt b/notes.txt\nnew file mode 100644\nindex 0000000..1234567\n--- /dev/null\n+++ b/notes.txt\n@@ -0,0 +1,2 @@\n+new file mode 160000\n++++ b/evil\n';

t.test('a gitlink the base did not have is found, by its path', async (t) => {
  t.same(addedGitlinks(NEW_GITLINK), ['vendor/lib']);
  t.same(addedGitlinks(FILE_TO_GITLINK), ['v/x'], 'a file replaced by a repository');
});

t.test('a submodule of the base moved to another commit, and file content, are not', async (t) => {
  t.same(addedGitlinks(MOVED_SUBMODULE), []);
  t.same(addedGitlinks(CONTENT_LOOKING_LIKE_A_HEADER), [], 'content lines start with +');
  t.same(addedGitlinks(''), []);
});
