import { CaptureFormatError, CaptureOpenError } from '../capture/index.js';
import { AgentClientError } from '../client/index.js';
import { FilterError } from '../query/index.js';
import { CommandInputError } from '../run/index.js';
import { SourceError } from '../service/index.js';
import { SpecError } from '../verify/index.js';

/**
 * A tool argument that cannot be used. The tool answers with an `isError` result whose text names
 * the argument and says why, so an agent can fix its call instead of guessing.
 */
export class ArgError extends Error {
  constructor(readonly argument: string, why: string) {
    super(`${argument}: ${why}`);
    this.name = 'ArgError';
  }
}

/**
 * The text of an error result: what went wrong, naming the argument. Undefined for anything else
 * (a bug), which the caller reports as an internal error.
 */
export function errorText(e: unknown): string | undefined {
  // FilterError's message starts "filter: …" and points at the position; SpecError's starts with
  // the spec's source, which the tools name "spec" (or "spec file <path>"), then field and line.
  // CommandInputError's starts with "command:" or "cwd:".
  // A SourceError's message starts with the argument too ("cursor: …", "since: …").
  if (e instanceof ArgError || e instanceof FilterError || e instanceof SpecError || e instanceof CommandInputError || e instanceof SourceError) return e.message;
  if (e instanceof CaptureOpenError) return `interface: ${e.message}`;
  if (e instanceof CaptureFormatError) return `capture: ${e.message}`;
  if (e instanceof AgentClientError) return `agent: ${e.message}`;
  return undefined;
}
