import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CaptureFormatError } from '../capture/index.js';
import type { FlowRecord, Redactor } from '../flows/index.js';
import { CaptureSource } from '../service/index.js';
import { ArgError } from './errors.js';

/** A capture file given to a tool, decoded: the path as resolved (absolute), and its flows as a FlowSource. */
export interface Capture {
  path: string;
  source: CaptureSource;
  /** The source's flows, in start order. */
  flows: readonly FlowRecord[];
}

/** Captures kept decoded; a tool call on one of them costs no decode. */
const KEEP = 4;

/**
 * Capture files given to tools (`capture`), decoded once and kept by path, mtime and size, so the
 * calls of one investigation (analyze, list, get, verify) decode the file once and a rewritten
 * file is decoded again. Redacted as `tapwire analyze` and `verify` redact: evidence shown to an
 * agent carries tokens, not secrets.
 */
export class CaptureCache {
  /** Least recently used first (Map order, re-inserted on use). */
  private readonly kept = new Map<string, Promise<Capture>>();

  constructor(private readonly redactor: Redactor, private readonly keep = KEEP) {}

  /**
   * The capture `file` names, relative to `cwd` when not absolute. A file that is missing,
   * unreadable or not a capture is an ArgError naming `argument`.
   */
  async load(file: string, cwd: string, argument = 'capture'): Promise<Capture> {
    const path = resolve(cwd, file);
    let key: string;
    try {
      const s = await stat(path);
      if (s.isDirectory()) throw new ArgError(argument, `"${file}" is a directory, not a capture file`);
      key = `${path}\u0000${s.mtimeMs}\u0000${s.size}`;
    } catch (e) {
      if (e instanceof ArgError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new ArgError(argument, `"${file}": ${code === 'ENOENT' ? `no such file (looked for ${path})` : `cannot read it (${code ?? (e as Error).message})`}`);
    }
    let p = this.kept.get(key);
    if (p) this.kept.delete(key);
    else p = this.decode(path, file, argument);
    this.kept.set(key, p);
    // A failed decode is not kept: the next call tries again (the file may have been fixed).
    p.catch(() => this.kept.delete(key));
    while (this.kept.size > this.keep) this.kept.delete(this.kept.keys().next().value!);
    return p;
  }

  private async decode(path: string, given: string, argument: string): Promise<Capture> {
    try {
      const source = await CaptureSource.open(path, { redactor: this.redactor }, path);
      return { path, source, flows: source.flows };
    } catch (e) {
      if (e instanceof CaptureFormatError) throw new ArgError(argument, `"${given}": ${e.message.slice(e.file.length + 2)}`);
      if ((e as NodeJS.ErrnoException).code) throw new ArgError(argument, `"${given}": cannot read it (${(e as NodeJS.ErrnoException).code})`);
      throw e;
    }
  }
}
