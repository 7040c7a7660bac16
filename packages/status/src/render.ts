import { escapeForDisplay, type QueueView, type RunView, type TokenTotals } from '@prompt-valet/core';

/** The porcelain: a short table per section, for a terminal; every line escaped. */
function age(seconds: number): string {
  if (seconds < 90) return `${seconds}s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

function target(r: RunView): string {
  return r.repo ? `${r.owner}/${r.repo}@${r.branch}` : r.prompt_rel;
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function tokenCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function renderQueue(q: QueueView, tokens?: TokenTotals, now = Date.parse(q.generated_at)): string {
  const out: string[] = [];
  out.push(`Pending (${q.pending.length})`);
  for (const p of q.pending) out.push(`  ${p.rel}  waiting ${age(Math.round((now - Date.parse(p.mtime)) / 1000))}`);
  out.push('', `Running (${q.running.length})`);
  for (const r of q.running) {
    const on = r.worker ? `  on ${r.worker}` : '';
    out.push(`  ${r.run_id}  ${r.state.padEnd(9)} ${age(r.age_seconds).padStart(4)}  ${target(r)}  ${r.prompt_rel}${on}`);
    if (r.last_log_line) out.push(`      ${clip(r.last_log_line, 100)}`);
  }
  out.push('', `Recent (${q.recent.length})`);
  for (const r of q.recent) {
    const what = r.state === 'done' ? (r.pr_url ?? r.outcome ?? 'done') : clip(r.reason ?? 'error', 90);
    const used = r.tokens === undefined ? '' : `  ${tokenCount(r.tokens)} tokens`;
    const on = r.worker ? `  (ran on ${r.worker})` : '';
    out.push(`  ${r.run_id}  ${r.state.padEnd(5)} ${target(r)}  ${what}${used}${on}`);
  }
  if (tokens) {
    out.push('', `Tokens per day${tokens.truncated ? ' (the oldest runs not counted: too many)' : ''}`);
    for (const d of tokens.days) out.push(`  ${d.day}  ${tokenCount(d.tokens).padStart(13)} tokens  ${d.runs} run(s)`);
  }
  // Names, log lines and reasons come from outside (file names, the agent's
  // output): escaped, so none can move the cursor, retitle or clear the terminal.
  return out.map(escapeForDisplay).join('\n') + '\n';
}
