// The Prompt Valet page: plain DOM, no build step. Everything is read from
// the JSON API; text from the server is only ever set as textContent.
'use strict';

const FINAL = new Set(['done', 'error', 'retry']);
// Outcomes that pushed an agent branch: such a run can be followed up.
const PUSHED = new Set(['pr_opened', 'pr_exists', 'pr_commented', 'pushed']);
const app = document.getElementById('app');
const conn = document.getElementById('conn');
let cleanup = [];
let needToken = false;
// Each route() starts a new generation; an answer that arrives for an older
// one is dropped, so a slow fetch never paints over the page now shown.
let generation = 0;

function mount(gen, ...children) {
  if (gen !== generation) return false;
  app.replaceChildren(...children.filter(Boolean));
  return true;
}

function token() { return localStorage.getItem('pv-web-token') || ''; }

async function api(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  if (token()) headers.set('authorization', `Bearer ${token()}`);
  let res;
  try {
    res = await fetch(path, { ...opts, headers });
  } catch (err) {
    conn.className = 'conn bad';
    throw err;
  }
  conn.className = 'conn ok';
  if (res.status === 401) { needToken = true; route(); throw new Error('a token is required'); }
  const type = res.headers.get('content-type') || '';
  const body = type.includes('json') ? await res.json() : await res.text();
  if (!res.ok) throw new Error((body && body.error && body.error.message) || `HTTP ${res.status}`);
  return body;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== undefined && k !== null && k !== false) e.append(k.nodeType ? k : String(k));
  return e;
}

function age(seconds) {
  if (seconds < 90) return `${seconds}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}
const since = (iso) => age(Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)));
const badge = (state) => el('span', { class: `badge ${state}`, 'data-state': state }, state);
const where = (r) => (r.repo ? `${r.owner}/${r.repo} @ ${r.branch}` : r.prompt_rel.split('/').slice(0, -1).join('/'));
const promptName = (rel) => rel.split('/').pop();
function prLink(url) { return url ? el('a', { class: 'pr', href: url, target: '_blank', rel: 'noopener noreferrer' }, url.replace(/^https?:\/\/[^/]+\//, '')) : null; }

function every(ms, fn) {
  let stopped = false;
  const tick = async () => { if (stopped) return; try { await fn(); } catch { /* shown by conn */ } if (!stopped) t = setTimeout(tick, ms); };
  let t = setTimeout(tick, 0);
  cleanup.push(() => { stopped = true; clearTimeout(t); });
}

// ---- dashboard ------------------------------------------------------------

function runRow(r) {
  const said = r.state === 'error' || r.state === 'retry' ? r.reason : r.last_log_line;
  const sub = [r.worker ? `on ${r.worker}` : undefined, r.tokens !== undefined ? `${r.tokens.toLocaleString()} tokens` : undefined, said].filter(Boolean).join(' · ');
  return el('li', { class: 'row', 'data-run': r.run_id, onclick: () => { location.hash = `#/run/${r.run_id}`; } },
    badge(r.state),
    el('span', { class: 'what where', title: where(r) }, where(r)),
    el('span', { class: 'what link' }, r.pr_url ? prLink(r.pr_url) : el('a', { href: `#/run/${r.run_id}` }, promptName(r.prompt_rel))),
    el('span', { class: 'age', title: r.created_at }, age(r.age_seconds)),
    sub ? el('span', { class: 'sub', title: sub }, sub) : null);
}

function dashboard(gen) {
  const pending = el('ul', { class: 'rows', id: 'pending' });
  const running = el('ul', { class: 'rows', id: 'running' });
  const recent = el('ul', { class: 'rows', id: 'recent' });
  const tokenDays = el('ul', { class: 'rows', id: 'tokens' });
  const counts = { pending: el('span', { class: 'count' }), running: el('span', { class: 'count' }), recent: el('span', { class: 'count' }) };
  const stateSel = el('select', { 'aria-label': 'state', id: 'filter-state' },
    ['', 'done', 'error', 'retry', 'running', 'published', 'claimed'].map((s) => el('option', { value: s }, s || 'any state')));
  const repoIn = el('input', { placeholder: 'repo', 'aria-label': 'repository', id: 'filter-repo', size: 10 });
  const branchIn = el('input', { placeholder: 'branch', 'aria-label': 'branch', id: 'filter-branch', size: 10 });
  mount(gen,
    el('div', { class: 'grid2' },
      el('section', { class: 'card' }, el('h2', {}, 'Running', counts.running), running),
      el('section', { class: 'card' }, el('h2', {}, 'Pending', counts.pending), pending)),
    el('section', { class: 'card' }, el('h2', {}, 'Runs', counts.recent),
      el('div', { class: 'filters' }, stateSel, repoIn, branchIn), recent),
    el('section', { class: 'card' }, el('h2', {}, 'Tokens per day'), tokenDays),
  );
  const load = async () => {
    const q = await api('/api/queue');
    if (gen !== generation) return;
    const params = new URLSearchParams({ limit: '50' });
    if (stateSel.value) params.set('state', stateSel.value);
    if (repoIn.value.trim()) params.set('repo', repoIn.value.trim());
    if (branchIn.value.trim()) params.set('branch', branchIn.value.trim());
    const { runs } = await api(`/api/runs?${params}`);
    const now = Date.parse(q.generated_at);
    running.replaceChildren(...(q.running.length ? q.running.map(runRow) : [el('li', { class: 'muted' }, 'Nothing running.')]));
    pending.replaceChildren(...(q.pending.length ? q.pending.map((p) => el('li', { class: 'row', 'data-pending': p.rel },
      badge('pending'), el('span', { class: 'what where' }, p.rel.split('/').slice(0, -1).join('/')), el('span', { class: 'what link' }, promptName(p.rel)),
      el('span', { class: 'age' }, age(Math.max(0, Math.round((now - Date.parse(p.mtime)) / 1000))))))
      : [el('li', { class: 'muted' }, 'Nothing waiting.')]));
    const finished = runs.filter((r) => FINAL.has(r.state) || stateSel.value);
    recent.replaceChildren(...(finished.length ? finished.map(runRow) : [el('li', { class: 'muted' }, 'No runs yet.')]));
    counts.running.textContent = String(q.running.length);
    counts.pending.textContent = String(q.pending.length);
    counts.recent.textContent = String(finished.length);
    const tokens = await api('/api/tokens?days=7');
    if (gen !== generation) return;
    tokenDays.replaceChildren(...tokens.days.map((d) => el('li', { class: 'row', 'data-day': d.day },
      el('span', { class: 'what where' }, d.day), el('span', { class: 'what' }, `${d.tokens.toLocaleString()} tokens`),
      el('span', { class: 'age' }, `${d.runs} run${d.runs === 1 ? '' : 's'}`))));
  };
  for (const c of [stateSel, repoIn, branchIn]) c.addEventListener('change', () => load().catch(() => {}));
  every(3000, load);
}

// ---- submit ---------------------------------------------------------------

async function submitPage(gen) {
  const targetSel = el('select', { name: 'target', id: 'target', required: true });
  const name = el('input', { name: 'name', id: 'name', placeholder: 'fix-login (optional: title or first heading)' });
  const text = el('textarea', { name: 'text', id: 'text', placeholder: '---\ntitle: Fix the login page\n---\n# Fix the login page\n\nWhat the agent should do…' });
  const files = el('input', { type: 'file', id: 'files', accept: '.md,text/markdown', multiple: true });
  const msg = el('p', { class: 'msg', hidden: true, id: 'submit-msg' });
  const button = el('button', { type: 'submit', id: 'submit' }, 'Submit');
  const form = el('form', { class: 'submit', id: 'submit-form' },
    el('label', {}, 'Target (repository @ branch)', targetSel),
    el('label', {}, 'Name', name),
    el('label', {}, 'Prompt (Markdown, front matter kept)', text),
    el('label', {}, '…or upload .md files', files),
    el('div', { class: 'actions' }, button), msg);
  if (!mount(gen, el('section', { class: 'card' }, el('h2', {}, 'Submit a prompt'), form))) return;
  const { targets } = await api('/api/targets');
  if (gen !== generation) return;
  targetSel.replaceChildren(...targets.map((t) => el('option', { value: t.id }, `${t.owner}/${t.repo} @ ${t.branch}`)));
  if (!targets.length) targetSel.append(el('option', { value: '' }, 'no targets: run pv-tree first'));
  const last = localStorage.getItem('pv-web-target');
  if (last && targets.some((t) => t.id === last)) targetSel.value = last;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    msg.hidden = true;
    try {
      let body;
      if (files.files.length) {
        const fd = new FormData();
        fd.append('target', targetSel.value);
        for (const f of files.files) fd.append('file', f, f.name);
        body = await api('/api/prompts', { method: 'POST', body: fd });
      } else {
        const payload = { target: targetSel.value, text: text.value };
        if (name.value.trim()) payload.name = name.value.trim();
        body = await api('/api/prompts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
      }
      localStorage.setItem('pv-web-target', targetSel.value);
      location.hash = body.jobs.length === 1 ? `#/job/${body.jobs[0].job_id}` : '#/';
    } catch (err) {
      msg.className = 'msg err';
      msg.textContent = err.message;
      msg.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}

// ---- one run --------------------------------------------------------------

function followLog(runId, pre, onState) {
  const ctrl = new AbortController();
  cleanup.push(() => ctrl.abort());
  (async () => {
    const headers = token() ? { authorization: `Bearer ${token()}` } : {};
    const res = await fetch(`/api/runs/${encodeURIComponent(runId)}/log/stream`, { headers, signal: ctrl.signal });
    if (!res.ok || !res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) name = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (name === 'log') {
          const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
          pre.append(data.join('\n') + '\n');
          if (stick) pre.scrollTop = pre.scrollHeight;
        } else if (name === 'state' || name === 'end') {
          onState(JSON.parse(data.join('\n')).state, name === 'end');
        }
      }
    }
  })().catch(() => {});
}

async function runPage(gen, runId, job) {
  const d = await api(`/api/runs/${encodeURIComponent(runId)}`);
  if (gen !== generation) return;
  const r = d.run;
  const st = d.status;
  const stateBox = el('span', { id: 'run-state' }, badge(r.state));
  const pre = el('pre', { class: 'log', id: 'log' });
  const logState = el('span', { class: 'count', id: 'log-state' }, FINAL.has(r.state) ? 'ended' : 'live');
  const actions = el('div', { class: 'actions' });
  const msg = el('p', { class: 'msg', hidden: true, id: 'run-msg' });
  const kv = (k, v) => (v ? [el('dt', {}, k), el('dd', {}, v)] : []);
  const info = el('dl', { class: 'kv' },
    kv('Target', where(r)), kv('Prompt', r.prompt_rel), kv('Run', r.run_id), kv('Attempt', String(r.attempt)),
    kv('Started', `${since(r.created_at)} ago`), kv('Agent branch', st.agent_branch),
    kv('Pull request', prLink(r.pr_url)), kv('Outcome', r.outcome), kv('Reason', r.reason),
    kv('Worker', r.worker),
    kv('Tokens', r.tokens !== undefined ? `${r.tokens.toLocaleString()}${st.agent?.max_tokens ? ` of ${st.agent.max_tokens.toLocaleString()}` : ''}` : undefined),
    kv('Follow-up of', st.follow_up_of ? el('a', { href: `#/run/${st.follow_up_of}`, id: 'follow-up-of' }, st.follow_up_of) : null));
  const show = (text, err) => { msg.textContent = text; msg.className = err ? 'msg err' : 'msg'; msg.hidden = false; };
  const renderActions = (state) => {
    actions.replaceChildren();
    if (!FINAL.has(state)) {
      actions.append(el('button', { class: 'danger', id: 'abort', onclick: async (ev) => {
        if (!confirm(`Abort run ${runId}? The agent is stopped and the prompt settles as error; its work so far goes to a draft pull request (watcher.keep_incomplete_work).`)) return;
        ev.target.disabled = true;
        try { await api(`/api/runs/${encodeURIComponent(runId)}/abort`, { method: 'POST' }); show('Abort requested: the agent stops within a second or two.'); }
        catch (err) { show(err.message, true); ev.target.disabled = false; }
      } }, 'Abort'));
    }
    if (state === 'error') {
      actions.append(el('button', { id: 'retry', onclick: async (ev) => {
        ev.target.disabled = true;
        try { const b = await api(`/api/runs/${encodeURIComponent(runId)}/retry`, { method: 'POST' }); location.hash = `#/job/${b.job_id}`; }
        catch (err) { show(err.message, true); ev.target.disabled = false; }
      } }, 'Retry'));
    }
  };
  renderActions(r.state);
  mount(gen,
    el('section', { class: 'card', id: 'run', 'data-run': runId },
      job ? el('p', { class: 'muted', id: 'job-banner' }, `Following ${job.prompt_rel}`, job.run_ids.length > 1 ? ` (attempt ${job.run_ids.length})` : '') : null,
      el('h2', {}, stateBox, promptName(r.prompt_rel)), info, actions, msg),
    el('section', { class: 'card' }, el('h2', {}, 'Agent log', logState), pre),
    d.last_message ? el('section', { class: 'card' }, el('h2', {}, 'Last message'), el('pre', { class: 'text', id: 'last-message' }, d.last_message)) : null,
    d.follow_ups && d.follow_ups.length ? el('section', { class: 'card' }, el('h2', {}, 'Follow-ups', el('span', { class: 'count' }, String(d.follow_ups.length))),
      el('ul', { class: 'rows', id: 'follow-ups' }, d.follow_ups.map(runRow))) : null,
    r.state === 'done' && PUSHED.has(r.outcome) ? followUpForm(runId) : null,
    d.prompt ? el('section', { class: 'card' }, el('details', {}, el('summary', {}, 'Prompt'), el('pre', { class: 'text' }, d.prompt))) : null,
  );
  followLog(runId, pre, (state, ended) => {
    stateBox.replaceChildren(badge(state));
    renderActions(state);
    if (ended) {
      logState.textContent = 'ended';
      // Settled while shown: reload once for the PR link, outcome and reason. A run that had
      // settled already is not reloaded (that would wipe a follow-up being typed).
      if (!FINAL.has(r.state)) setTimeout(() => { if (gen === generation) route(); }, 300);
    }
  });
}

// A follow-up goes on with this run's branch and PR (pv-web's POST /api/runs/:id/follow-up).
function followUpForm(runId) {
  const text = el('textarea', { name: 'text', id: 'follow-up-text', required: true, placeholder: 'What the agent should do next on this branch…' });
  const msg = el('p', { class: 'msg', hidden: true, id: 'follow-up-msg' });
  const button = el('button', { type: 'submit', id: 'follow-up-submit' }, 'Follow up');
  const form = el('form', { class: 'submit', id: 'follow-up-form' },
    el('label', {}, 'Prompt (Markdown): continues this run\'s branch and pull request', text), el('div', { class: 'actions' }, button), msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    msg.hidden = true;
    try {
      const body = await api(`/api/runs/${encodeURIComponent(runId)}/follow-up`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: text.value }) });
      location.hash = `#/job/${body.jobs[0].job_id}`;
    } catch (err) {
      msg.className = 'msg err';
      msg.textContent = err.message;
      msg.hidden = false;
      button.disabled = false;
    }
  });
  return el('section', { class: 'card', id: 'follow-up' }, el('h2', {}, 'Follow up'), form);
}

async function jobPage(gen, jobId) {
  let shown;
  const wait = el('section', { class: 'card', id: 'job' }, el('h2', {}, badge('pending'), 'Waiting for the watcher'),
    el('p', { class: 'muted', id: 'job-prompt' }));
  mount(gen, wait);
  every(1000, async () => {
    const j = await api(`/api/jobs/${encodeURIComponent(jobId)}`);
    if (gen !== generation) return;
    wait.querySelector('#job-prompt').textContent = `${j.prompt_rel} is ${j.state}.`;
    if (j.run_id && j.run_id !== shown && j.state !== 'pending') {
      shown = j.run_id;
      const keep = cleanup;
      cleanup = [keep[0]];
      for (const fn of keep.slice(1)) fn();
      await runPage(gen, j.run_id, j);
    }
  });
}

// ---- routing --------------------------------------------------------------

async function route() {
  const gen = ++generation;
  for (const fn of cleanup.splice(0)) fn();
  if (needToken) {
    app.replaceChildren(document.getElementById('token-form').content.cloneNode(true));
    app.querySelector('#token').addEventListener('submit', (ev) => {
      ev.preventDefault();
      localStorage.setItem('pv-web-token', new FormData(ev.target).get('token'));
      needToken = false;
      route();
    });
    return;
  }
  const [, page, id] = location.hash.split('/');
  try {
    if (page === 'run' && id) await runPage(gen, decodeURIComponent(id));
    else if (page === 'job' && id) await jobPage(gen, decodeURIComponent(id));
    else if (page === 'submit') await submitPage(gen);
    else dashboard(gen);
  } catch (err) {
    mount(gen,el('section', { class: 'card' }, el('p', { class: 'msg err' }, err.message), el('a', { href: '#/' }, 'Back to the dashboard')));
  }
}

window.addEventListener('hashchange', route);
route();
