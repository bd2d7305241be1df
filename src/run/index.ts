/**
 * run/: the run-and-verify loop: a command bracketed by a snapshot (an agent's, or a local
 * capture), drained at its exit, verified, and kept in the run history with flakiness and the
 * services and paths it touched.
 */
export { AgentBackend } from './backend-agent.js';
export { LocalBackend } from './backend-local.js';
export type { Backend, RunRecord } from './backend.js';
export { CommandInputError } from './command.js';
export { runHistory, runsTouching, type History, type TouchingCommand } from './history.js';
export { defaultDataDir, snapshotsDir } from './local-snapshots.js';
export { RunRecordError, openRunLog, parseRunRecord } from './record.js';
export { RUN_EXIT, exitText, runAndVerify, runExitCode, type RunProgress, type RunResult } from './run.js';
export { collectWithPartial, windowContext, type WindowSource } from './window.js';
