/**
 * A repository the agent made inside the checkout is committed as a gitlink
 * (mode 160000: a submodule pointing at commits that exist nowhere
 * upstream). Read from the diff the secret scan reads anyway (`git diff
 * --no-renames --ignore-submodules=none --dst-prefix=b/`), so no git process
 * of its own: a path whose new mode is 160000 is a gitlink the base did not
 * have (a submodule the base had, moved to another commit, keeps its mode
 * and is not one). Lines of content start with +, - or a space, so a file's
 * content cannot pass for a header.
 */
export function addedGitlinks(diff: string): string[] {
  const added: string[] = [];
  let newGitlink = false;
  for (const line of diff.split('\n')) {
    if (line.startsWith('diff --git ')) newGitlink = false;
    else if (line === 'new file mode 160000' || line === 'new mode 160000') newGitlink = true;
    else if (line.startsWith('+++ ') && newGitlink) {
      added.push(line.slice(4).replace(/^b\//, ''));
      newGitlink = false;
    }
  }
  return added;
}
