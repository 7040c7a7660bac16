import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { readJsonIfExists, writeJsonAtomic } from './files.js';
import { readRunStatus, updateRunStatus } from './run-folder.js';

/**
 * A run resumes; it is never redone (docs/lifecycle.md). Each step records
 * its completion in `processed/<run id>/steps/<step>.json`, holding the
 * section it added, before it emits its record; a step that finds its file
 * re-emits that section and does nothing else.
 */
export type ResumableStep = 'resolve' | 'clone' | 'run-codex' | 'run-codex-stopped';

export const STEPS_DIR = 'steps';

export interface StepDone<S> {
  step: ResumableStep;
  run_id: string;
  at: string;
  section: S;
}

export function stepDoneFile(runRoot: string, step: ResumableStep): string {
  return path.join(runRoot, STEPS_DIR, `${step}.json`);
}

/** The section a completed step recorded, or undefined when the step has not completed. */
export async function readStepDone<S>(runRoot: string, step: ResumableStep): Promise<S | undefined> {
  const done = await readJsonIfExists<StepDone<S>>(stepDoneFile(runRoot, step));
  return done?.section;
}

/** Record a step's completion (atomic, durable) with the section it emits. */
export async function markStepDone<S>(runRoot: string, step: ResumableStep, section: S, now = new Date()): Promise<void> {
  const done: StepDone<S> = { step, run_id: path.basename(runRoot), at: now.toISOString(), section };
  await fsp.mkdir(path.join(runRoot, STEPS_DIR), { recursive: true });
  await writeJsonAtomic(stepDoneFile(runRoot, step), done);
}

/**
 * Whether the agent is done with this run: it finished (`run-codex`) or was
 * stopped for good (`run-codex-stopped`: its time, idle or token limit, or
 * an abort; the work is kept, not redone). Either way a resumed run does
 * not start it again, and its checkout holds its work.
 */
export async function agentStepDone(runRoot: string): Promise<boolean> {
  return (await readStepDone(runRoot, 'run-codex')) !== undefined || (await readStepDone(runRoot, 'run-codex-stopped')) !== undefined;
}

/**
 * Count one start of the agent in `status.json` `agent_runs`, just before it
 * starts: a try that finds the agent step complete never gets here, so the
 * count shows how often the agent really ran for this run.
 */
export async function countAgentRun(runRoot: string): Promise<number> {
  const prev = await readRunStatus(runRoot);
  const runs = (typeof prev?.agent_runs === 'number' ? prev.agent_runs : 0) + 1;
  await updateRunStatus(runRoot, { agent_runs: runs });
  return runs;
}
