import { execa } from 'execa';
import * as fsp from 'node:fs/promises';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { expectSyntaxError } from '@prompt-valet/core';

/**
 * A local fake of GitHub's API over TLS, for driving the real `gh` (2.23).
 *
 *     const gh = await startFakeGitHub({ dir });   // dir: a temp folder of the test
 *     const env = gh.ghEnv();                      // GH_HOST, GH_ENTERPRISE_TOKEN, GH_CONFIG_DIR,
 *                                                  // SSL_CERT_FILE, GH_PROMPT_DISABLED, GH_NO_UPDATE_NOTIFIER
 *     // gh pr create --repo ${gh.host}/acme/widget --base main --head codex/x --title T --body-file F
 *     gh.pullRequests      // every PR created: {owner, repo, base, head, title, body, draft, labels, url, number}
 *     gh.seedPullRequest({ owner: 'acme', repo: 'widget', head: 'codex/x', base: 'main' })
 *     gh.addRepository({ owner: 'acme', name: 'gadget', archived: false })  // for gh repo list
 *     gh.failNext('PullRequestCreate', 502)        // the next such call answers 502
 *     gh.requests          // every GraphQL call: {operation, variables, token}
 *     await gh.close();
 *
 * The certificate is self-signed for 127.0.0.1, made by `openssl` at start
 * (gh speaks only HTTPS to a non-github.com host; SSL_CERT_FILE makes it
 * trust the fake). `host` is `127.0.0.1:PORT`; with a port in the host gh
 * cannot match git remotes, so callers pass `--repo HOST/owner/repo`.
 *
 * Answered: the GraphQL operations gh sends for `pr create` (RepositoryInfo,
 * PullRequestForBranch, PullRequestCreate, and for labels
 * RepositoryResolveMetadataIDs and PullRequestCreateMetadata; every label
 * exists)
 * and for `pr list --head … --json …` (PullRequestList), for `pr view N
 * --json …` and `pr comment N` (PullRequestByNumber, CommentCreate: the
 * comments are kept on the PR, `pullRequest.comments`), and for
 * `repo list OWNER --json …` (Repository_fields, then RepositoryList, paged;
 * the repositories are those given to addRepository). Any repository
 * exists (the fake does not know which do); anything else answers 404 and is
 * recorded in `unhandled`, so a test can see what gh asked that the fake
 * does not know.
 */
export interface RecordedPullRequest {
  owner: string;
  repo: string;
  base: string;
  head: string;
  title: string;
  body: string;
  draft: boolean;
  labels: string[];
  url: string;
  number: number;
  state: 'OPEN' | 'CLOSED' | 'MERGED';
  /** false for a PR put there by seedPullRequest */
  created: boolean;
  /** comments posted on it (`gh pr comment`), in order */
  comments: RecordedComment[];
}

export interface RecordedComment {
  body: string;
  url: string;
}

export interface GraphQLCall {
  operation: string;
  variables: Record<string, unknown>;
  /** the token gh sent (Authorization header), to check which one it used */
  token: string | undefined;
}

export interface FakeGitHub {
  /** `127.0.0.1:PORT`: GH_HOST, and the host part of `--repo` */
  host: string;
  port: number;
  /** PEM file of the self-signed certificate (SSL_CERT_FILE) */
  certFile: string;
  /** PRs created through the API, in order (seeded ones are not listed here) */
  readonly pullRequests: RecordedPullRequest[];
  readonly requests: GraphQLCall[];
  /** requests the fake did not understand: `METHOD path operation` */
  readonly unhandled: string[];
  /** put an existing PR in place, as if opened earlier */
  seedPullRequest(pr: { owner: string; repo: string; head: string; base?: string; title?: string; state?: 'OPEN' | 'CLOSED' | 'MERGED' }): RecordedPullRequest;
  /** a repository `gh repo list OWNER` lists (in the order added) */
  addRepository(repo: { owner: string; name: string; archived?: boolean }): void;
  /** make the next call of `operation` answer with HTTP `status` */
  failNext(operation: string, status: number, message?: string): void;
  /** environment for gh: set these (and `--repo ${host}/owner/repo`) */
  ghEnv(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export interface FakeGitHubOptions {
  /** a folder of the test's own; the certificate and gh's config dir go here */
  dir: string;
  /** the token ghEnv() hands to gh (default `fake-token`) */
  token?: string;
  /** largest page RepositoryList answers (GitHub's is 100), to test gh's pagination with a few repositories */
  maxPageSize?: number;
}

interface GraphQLBody {
  query?: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

/** Make a self-signed certificate for 127.0.0.1 with openssl. */
export async function makeSelfSignedCert(dir: string): Promise<{ certFile: string; keyFile: string }> {
  await fsp.mkdir(dir, { recursive: true });
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  await execa('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-keyout', keyFile, '-out', certFile,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { timeout: 60_000, stdin: 'ignore' });
  return { certFile, keyFile };
}

function operationOf(body: GraphQLBody): string {
  if (body.operationName) return body.operationName;
  const m = /\b(?:query|mutation)\s+([A-Za-z0-9_]+)/.exec(body.query ?? '');
  return m?.[1] ?? '(anonymous)';
}

/** Fields this fake says its Repository type has (gh's feature detection). */
const REPOSITORY_FIELDS = [
  'id', 'name', 'nameWithOwner', 'owner', 'description', 'url', 'sshUrl', 'isArchived', 'isPrivate', 'isFork',
  'visibility', 'defaultBranchRef', 'pushedAt', 'updatedAt', 'createdAt', 'isTemplate', 'isMirror', 'isEmpty',
];

function repoId(owner: string, repo: string): string {
  return `R_${Buffer.from(`${owner}/${repo}`).toString('base64url')}`;
}

function repoFromId(id: string): { owner: string; repo: string } | undefined {
  if (!id.startsWith('R_')) return undefined;
  const [owner, repo] = Buffer.from(id.slice(2), 'base64url').toString().split('/');
  return owner && repo ? { owner, repo } : undefined;
}

export async function startFakeGitHub(opts: FakeGitHubOptions): Promise<FakeGitHub> {
  const { certFile, keyFile } = await makeSelfSignedCert(path.join(opts.dir, 'tls'));
  const configDir = path.join(opts.dir, 'gh-config');
  await fsp.mkdir(configDir, { recursive: true });
  const token = opts.token ?? 'fake-token';
  const all: RecordedPullRequest[] = [];
  const pullRequests: RecordedPullRequest[] = [];
  const requests: GraphQLCall[] = [];
  const unhandled: string[] = [];
  const failures = new Map<string, { status: number; message: string }>();
  const labelsById = new Map<string, string>();
  const repositories: { owner: string; name: string; archived: boolean }[] = [];
  let nextNumber = 1;
  let host = '';

  const prNode = (pr: RecordedPullRequest) => ({
    id: `PR_${pr.number}`,
    number: pr.number,
    title: pr.title,
    body: pr.body,
    url: pr.url,
    state: pr.state,
    isDraft: pr.draft,
    headRefName: pr.head,
    baseRefName: pr.base,
    isCrossRepository: false,
    maintainerCanModify: false,
    createdAt: '2026-01-01T00:00:00Z',
    headRepositoryOwner: { id: 'U_1', login: pr.owner },
    headRepository: { id: repoId(pr.owner, pr.repo), name: pr.repo },
    author: { login: 'valet' },
    labels: { nodes: pr.labels.map((name) => ({ name })), totalCount: pr.labels.length },
    comments: {
      nodes: pr.comments.map((c, i) => ({ id: `IC_${pr.number}_${i + 1}`, body: c.body, url: c.url, author: { login: 'valet' }, createdAt: '2026-01-01T00:00:00Z' })),
      pageInfo: { hasNextPage: false, endCursor: '' },
      totalCount: pr.comments.length,
    },
  });

  const addPr = (fields: Omit<RecordedPullRequest, 'url' | 'number'>): RecordedPullRequest => {
    const number = nextNumber++;
    const pr: RecordedPullRequest = { ...fields, number, url: `https://${host}/${fields.owner}/${fields.repo}/pull/${number}` };
    all.push(pr);
    if (pr.created) pullRequests.push(pr);
    return pr;
  };

  const findOpen = (owner: string, repo: string, head: string | undefined, states: string[]) =>
    all.filter((p) => p.owner === owner && p.repo === repo && (head === undefined || p.head === head) && states.includes(p.state));

  const answer = (operation: string, v: Record<string, unknown>, query: string): unknown => {
    const owner = String(v.owner ?? '');
    const repo = String(v.repo ?? v.name ?? '');
    switch (operation) {
      case 'RepositoryInfo':
        return {
          repository: {
            id: repoId(owner, repo), name: repo, owner: { login: owner }, hasIssuesEnabled: true,
            description: '', hasWikiEnabled: false, viewerPermission: 'WRITE', defaultBranchRef: { name: 'main' },
            parent: null, mergeCommitAllowed: true, rebaseMergeAllowed: true, squashMergeAllowed: true,
            isPrivate: false, isArchived: false,
          },
        };
      case 'PullRequestForBranch': {
        const head = String(v.headRefName ?? '');
        const states = Array.isArray(v.states) ? v.states.map(String) : ['OPEN'];
        return { repository: { pullRequests: { nodes: findOpen(owner, repo, head, states).map(prNode) } } };
      }
      case 'PullRequestList': {
        const head = v.headBranch === undefined ? undefined : String(v.headBranch);
        const states = Array.isArray(v.state) ? v.state.map(String) : ['OPEN'];
        const nodes = findOpen(owner, repo, head, states).map(prNode);
        return { repository: { pullRequests: { totalCount: nodes.length, nodes, pageInfo: { hasNextPage: false, endCursor: '' } } } };
      }
      case 'PullRequestCreate': {
        const input = (v.input ?? {}) as Record<string, unknown>;
        const target = repoFromId(String(input.repositoryId ?? '')) ?? { owner: '', repo: '' };
        const pr = addPr({
          ...target, base: String(input.baseRefName ?? ''), head: String(input.headRefName ?? ''),
          title: String(input.title ?? ''), body: String(input.body ?? ''), draft: input.draft === true,
          labels: [], state: 'OPEN', created: true, comments: [],
        });
        return { createPullRequest: { pullRequest: prNode(pr) } };
      }
      case 'PullRequestByNumber': {
        const pr = all.find((p) => p.owner === owner && p.repo === repo && p.number === Number(v.pr_number));
        return pr ? { repository: { pullRequest: prNode(pr) } } : undefined;
      }
      case 'CommentCreate': {
        // gh pr comment: input {subjectId, body}
        const input = (v.input ?? {}) as Record<string, unknown>;
        const pr = all.find((p) => `PR_${p.number}` === String(input.subjectId ?? ''));
        if (!pr) return undefined;
        const url = `${pr.url}#issuecomment-${pr.number * 1000 + pr.comments.length + 1}`;
        pr.comments.push({ body: String(input.body ?? ''), url });
        return { addComment: { commentEdge: { node: { url } } } };
      }
      case 'RepositoryResolveMetadataIDs': {
        // gh asks for each label by an alias: `l000: label(name:"bug"){id,name}`.
        // Every label exists here, so a test can use any name.
        const repository: Record<string, unknown> = {};
        for (const m of query.matchAll(/(\w+):\s*label\(name:\s*("(?:[^"\\]|\\.)*")\)/g)) {
          const name = JSON.parse(m[2]!) as string;
          const id = `L_${Buffer.from(name).toString('base64url')}`;
          labelsById.set(id, name);
          repository[m[1]!] = { id, name };
        }
        return { repository };
      }
      case 'PullRequestCreateMetadata': {
        // input: {pullRequestId, labelIds, assigneeIds, …}
        const input = (v.input ?? {}) as Record<string, unknown>;
        const pr = all.find((p) => `PR_${p.number}` === String(input.pullRequestId ?? ''));
        const ids = Array.isArray(input.labelIds) ? input.labelIds.map(String) : [];
        if (pr) for (const id of ids) pr.labels.push(labelsById.get(id) ?? id);
        return { updatePullRequest: { clientMutationId: null } };
      }
      case 'RepositoryList': {
        // gh pages with $perPage (at most 100) and $endCursor; the fake may
        // cap pages lower so a test sees several pages with a few repositories.
        const list = repositories.filter((r) => r.owner === owner);
        const start = v.endCursor ? Number(v.endCursor) : 0;
        const size = Math.min(Number(v.perPage ?? 100), opts.maxPageSize ?? 100);
        const page = list.slice(start, start + size);
        const end = start + page.length;
        return {
          repositoryOwner: {
            login: owner,
            repositories: {
              nodes: page.map((r) => ({
                id: repoId(r.owner, r.name), name: r.name, nameWithOwner: `${r.owner}/${r.name}`, owner: { login: r.owner },
                isArchived: r.archived, isPrivate: false, isFork: false, visibility: 'PUBLIC',
                url: `https://${host}/${r.owner}/${r.name}`, sshUrl: `git@${host}:${r.owner}/${r.name}.git`, defaultBranchRef: { name: 'main' },
              })),
              totalCount: list.length,
              pageInfo: { hasNextPage: end < list.length, endCursor: String(end) },
            },
          },
        };
      }
      case 'Repository_fields':
        // gh 2.23 asks which Repository fields the server knows before `repo list`.
        return { Repository: { fields: REPOSITORY_FIELDS.map((name) => ({ name })) } };
      default:
        return undefined;
    }
  };

  const server = https.createServer({ cert: await fsp.readFile(certFile), key: await fsp.readFile(keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-oauth-scopes': 'repo, read:org' });
        res.end(JSON.stringify(value));
      };
      const url = new URL(req.url ?? '/', `https://${host}`);
      if (req.method === 'POST' && /^(\/api)?\/graphql$/.test(url.pathname)) {
        let body: GraphQLBody;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as GraphQLBody;
        } catch (err) {
          expectSyntaxError(err);
          send(400, { message: 'bad JSON' });
          return;
        }
        const operation = operationOf(body);
        const variables = body.variables ?? {};
        const auth = req.headers.authorization;
        requests.push({ operation, variables, token: auth?.replace(/^(token|bearer)\s+/i, '') });
        if (process.env.FAKE_GITHUB_DEBUG) process.stderr.write(`fake-github: ${body.query}\n`);
        const failure = failures.get(operation);
        if (failure) {
          failures.delete(operation);
          send(failure.status, { message: failure.message });
          return;
        }
        const data = answer(operation, variables, body.query ?? '');
        if (data === undefined) {
          unhandled.push(`POST ${url.pathname} ${operation}`);
          send(200, { errors: [{ message: `fake GitHub does not know operation ${operation}` }] });
          return;
        }
        send(200, { data });
        return;
      }
      // gh checks the token's scopes with a REST call on some paths.
      if (req.method === 'GET' && /^\/api\/v3\/?$/.test(url.pathname)) {
        send(200, {});
        return;
      }
      if (req.method === 'GET' && url.pathname === '/api/v3/user') {
        send(200, { login: 'valet' });
        return;
      }
      unhandled.push(`${req.method} ${url.pathname}`);
      send(404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  host = `127.0.0.1:${port}`;

  return {
    host,
    port,
    certFile,
    pullRequests,
    requests,
    unhandled,
    seedPullRequest(pr) {
      return addPr({
        owner: pr.owner, repo: pr.repo, head: pr.head, base: pr.base ?? 'main', title: pr.title ?? `existing PR for ${pr.head}`,
        body: '', draft: false, labels: [], state: pr.state ?? 'OPEN', created: false, comments: [],
      });
    },
    addRepository(repo) {
      repositories.push({ owner: repo.owner, name: repo.name, archived: repo.archived ?? false });
    },
    failNext(operation, status, message = `fake GitHub: ${operation} failed`) {
      failures.set(operation, { status, message });
    },
    ghEnv(extra = {}) {
      return {
        GH_HOST: host,
        GH_ENTERPRISE_TOKEN: token,
        GH_CONFIG_DIR: configDir,
        SSL_CERT_FILE: certFile,
        GH_PROMPT_DISABLED: '1',
        GH_NO_UPDATE_NOTIFIER: '1',
        NO_COLOR: '1',
        ...extra,
      };
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
