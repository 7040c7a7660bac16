import { EX, EXIT_STATUS_HELP, defineTool, mapRecords } from '@prompt-valet/core';
import { AgentSlots } from './agent-slot.js';
import { findRunner } from './runner.js';
import { runPrompt, STEP } from './run-prompt.js';

const EPILOGUE = `
Runs the Codex CLI on each record's prompt, in the run's checkout:
  <runner_cmd> exec --skip-git-repo-check --cd <checkout> --output-last-message /run/pv/out/last-message.md
               --model <model> --sandbox <sandbox> [--json] <runner_extra_args…> -
with the prompt text (without its front matter) on stdin, then stdin closed,
inside the agent jail (watcher.agent_isolation: bwrap; docs/security.md):
its own PID namespace and /proc, the root read-only, config/, /run, /tmp,
the inbox, processed/, finished/, repos_root and HOME hidden; writable only
the checkout and the run's own HOME, TMPDIR and CODEX_HOME
(processed/<run>/jail/). Limits per run: watcher.agent_max_processes and
agent_max_memory_bytes (the run's cgroup, when one can be made),
agent_max_file_bytes (RLIMIT_FSIZE: a file git status names as changed or
untracked, written by the run and cut at that size, settles it as resource_limit).
Front matter "model", "sandbox", "timeout" (seconds) and "max_tokens" override the
config, only ever narrowing it.

Token cap: watcher.runner_max_tokens (0: none), or front matter max_tokens (at most
the operator's cap when one is set). codex writes its running total to the
session files in the run's CODEX_HOME after each model response (once that
response's tool calls are done); pv-run-codex follows them and stops the agent
at the first response past the cap: error budget_exceeded, agent.max_tokens and
agent.tokens_over_budget (the overshoot) recorded. A run that ends past its
cap on its own is budget_exceeded too. The agent can write those files: the
cap stops a runaway agent, not one set on hiding its use.

Input: records from pv-clone (run_id, target, target.front_matter). The run folder
(<processed>/<run id>) and the checkout (<repos_root>/.worktrees/<owner>/<repo>/<run id>)
come from the configuration; a record whose claim.run_root, checkout.dir or claim.path
names another place fails with foreign_path before anything runs.

Sessions and follow-ups: each run's codex session (its conversation in its own
CODEX_HOME, sessions/…/rollout-…-<id>.jsonl) is recorded in agent.session_id and
<run folder>/session.json ({session_id, file}). A follow-up (target.follow_up, pv-resolve) copies
the session file of target.follow_up.previous_run (a run of the same agent branch; the
earlier run folder is only read) into its own CODEX_HOME and runs
  <runner_cmd> exec … <runner_extra_args…> resume <session id> -
so the agent has the earlier conversation (agent.continued "resumed"). When that session
is not known (an older run, files gone) it runs a new session with the earlier PR title
and last message quoted before the prompt, and says so in agent.log ("fresh").

Resume: when the agent finishes without error its section is recorded in
<run folder>/steps/run-codex.json; a resumed run that has it gets that section back and the
agent is not started again. An agent stopped for good (time, idle or token limit,
ABORT) is recorded in steps/run-codex-stopped.json with its error: a resumed run
re-emits both, so its work is published, not redone. Each start is counted in status.json "agent_runs".
Records that already carry "error" pass through untouched.

Output: each record plus an "agent" section: exit_code, duration_ms, timed_out,
idle_timed_out, aborted, abort_reason, log, last_message, agent_runs_file,
events (--json), usage, max_tokens, tokens_over_budget, model, sandbox, limits,
limits_tripped, session_id, continued. A failed run also gets "error" (step
run-codex) with one of these codes; a run stopped before the agent finished (the
four marked *) carries error.incomplete.reason (timeout, idle_timeout, aborted,
budget_exceeded), and pv-publish keeps its work in a draft PR
(watcher.keep_incomplete_work):
  runner_missing      the runner is not installed / not on PATH      not retryable
  agent_failed        non-zero exit; retryable only when codex reports a
                      network, rate-limit or 5xx problem of the model API
  agent_timeout *     ran past runner_timeout_seconds (or front matter timeout)
  agent_idle_timeout * printed nothing for runner_idle_timeout_seconds
  aborted *           an ABORT file appeared in the run folder       not retryable
  budget_exceeded *   used more tokens than its cap                  not retryable
  aborted_shutdown    pv-run-codex got SIGTERM/SIGINT                retryable
  resource_limit      the run hit a watcher.agent_max_* limit         not retryable
  jail_failed         bwrap could not set the jail up; the agent did not run   retryable
  foreign_path, bad_run_id, missing_target, checkout_missing, prompt_missing,
  bad_front_matter, empty_prompt

Files in the run folder (PV_RUN_ROOT): agent.log (stdout and stderr, written
as they arrive: tail -f it), last-message.md, events.jsonl (--json), session.json,
status.json (state running; durations_ms and usage at the end). The last
message is also written to <checkout>/<agent_runs_dir>/codex-run-<run id>.md
unless watcher.agent_runs_dir is empty.

Environment of the agent: ours without watcher.runner_secret_env (GH_TOKEN,
GITHUB_TOKEN, …), GH_CONFIG_DIR, CREDENTIALS_DIRECTORY, PV_CLAIM_LOCK,
PV_AGENT_GATE_FD and session sockets; plus HOME, TMPDIR, CODEX_HOME (the
run's own), PV_RUN_ID, PV_PROMPT_FILE (/run/pv/prompt.md) and, without the
jail, PV_RUN_ROOT. Descriptors above 2 (fd 9, the claim lock; fd 4, the agent
gate) are /dev/null in the jail; fd 4 without it too.

Agent slots: in pv-watcher's pipelines (PV_AGENT_GATE_FD set, fd 4 a socket:
the agent gate) an agent starts only once pv-watcher grants it one of its
watcher.max_parallel slots: after every check of the record, pv-run-codex
writes {"gate":"wait","run_id":…} and waits for "go"; when the agent has
ended it writes {"gate":"done",…} before the rest of its work. The time and
idle limits start with the agent. The gate closing before go (pv-watcher
stopping) ends the run as aborted_shutdown without starting the agent. The
agent never gets the gate (fd 4 is /dev/null for it, jailed or not).
Without PV_AGENT_GATE_FD the agent starts at once.

Stopping: on the time limit, the idle limit, ABORT, the token cap or SIGTERM the agent's
process group and every process it started get SIGTERM, then SIGKILL after
runner_kill_grace_seconds. On SIGTERM/SIGINT pv-run-codex emits the current
record with aborted_shutdown, fails the records still coming the same way,
and exits 0.

${EXIT_STATUS_HELP}
When the runner is not installed nothing can run at all: every record that
needed it gets runner_missing, and pv-run-codex exits 69 (also on empty
input, so "pv-run-codex < /dev/null" checks the installation).

Example:
  echo '{"v":1,"run_id":"R","claim":{"run_root":"/srv/prompt-valet/processed/R"},
        "checkout":{"dir":"/srv/prompt-valet/repos/.runs/R"}}' | pv-run-codex --json | jq .agent`;

export const main = defineTool<{ json?: boolean }>({
  name: 'pv-run-codex',
  summary: 'pv-run-codex: run the Codex CLI on each claimed prompt, with live logs, limits and abort',
  usage: 'pv-run-codex [--config FILE] [--json] < records > records',
  epilogue: EPILOGUE,
  options: (y) => y.option('json', { type: 'boolean', describe: "keep the agent's JSON event stream (events.jsonl) and its token usage" }),
  async run(ctx) {
    const { config, path: configPath } = ctx.config({ allowMissing: true });
    const watcher = config.watcher;
    const runnerPath = findRunner(watcher.runner_cmd, ctx.io.env);
    if (!runnerPath) {
      ctx.log.error(`the agent runner "${watcher.runner_cmd}" is not installed or not on PATH (watcher.runner_cmd): no prompt can run`);
    }

    const stop = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (stop.signal.aborted) return;
      ctx.log.warn(`got ${signal}: stopping the agent; the current prompt goes back to pending`);
      stop.abort();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    const agentSlots = AgentSlots.fromEnv(ctx.io.env, ctx.log);
    try {
      await mapRecords(ctx, STEP, (rec) =>
        runPrompt(rec, {
          watcher,
          config,
          configPath,
          roots: config,
          runnerPath,
          json: Boolean(ctx.args.json),
          env: ctx.io.env,
          shutdown: stop.signal,
          log: ctx.log,
          ...(agentSlots ? { agentSlots } : {}),
        }),
      );
    } finally {
      agentSlots?.close();
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
    return runnerPath ? EX.OK : EX.UNAVAILABLE;
  },
});
