import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What the log needs of a run; the run record itself is defined by run/ (above the store). */
export interface LoggedRun {
  id: string;
  startedAt: number;
}

export interface RunLogOptions {
  /** Runs kept: past this (plus a tenth, so compaction is rare) the oldest are dropped. Default 5 000. */
  maxRuns?: number;
  /** Why a parsed line is not a run (undefined when it is): such lines are skipped and reported. */
  check?: (v: unknown) => string | undefined;
}

export interface RunLogRead<T> {
  /** Oldest first, as appended. */
  runs: T[];
  /** Lines that were skipped: "runs.jsonl line 12: cut short (…)". Reported, never thrown. */
  problems: string[];
}

export const DEFAULT_MAX_RUNS = 5000;

/**
 * The run log: one JSON line per test run (`tapwire run`, run_and_verify) in `runs.jsonl`,
 * appended with a single write (O_APPEND), so runs from several processes interleave by line.
 * A crash mid-write leaves a torn last line: reading skips it and says so, and the next append
 * starts on a fresh line. When the log grows past maxRuns it is rewritten (to a temporary file,
 * then renamed) with the newest maxRuns; an append racing that rewrite from another process can
 * be lost — the rewrite is rare (every maxRuns / 10 appends) and is retried if the file changed.
 */
export class RunLog<T extends LoggedRun> {
  readonly file: string;
  private count: number;
  private readonly ids = new Set<string>();

  private constructor(dir: string, private readonly o: RunLogOptions) {
    this.file = join(dir, 'runs.jsonl');
    // Opening only counts the runs and learns their ids (for compaction and has()): the full
    // check of every field waits for read(), so keeping one more run stays cheap.
    const { runs } = this.scan(false);
    this.count = runs.length;
    for (const r of runs) this.ids.add(r.id);
  }

  /** Creates the directory if missing; a missing log is an empty one. */
  static open<T extends LoggedRun>(dir: string, o: RunLogOptions = {}): RunLog<T> {
    mkdirSync(dir, { recursive: true });
    return new RunLog<T>(dir, o);
  }

  private get max(): number {
    return this.o.maxRuns ?? DEFAULT_MAX_RUNS;
  }

  /** Whether this process has seen a run with this id (appended here, or read at open or since). */
  has(id: string): boolean {
    return this.ids.has(id);
  }

  append(run: T): void {
    const line = `${JSON.stringify(run)}\n`;
    // A torn last line (a crash mid-write) must not swallow this run: start a fresh line.
    appendFileSync(this.file, endsMidLine(this.file) ? `\n${line}` : line);
    this.ids.add(run.id);
    if (++this.count > this.max + Math.ceil(this.max / 10)) this.compact();
  }

  /** Every run on disk, oldest first, with the lines that could not be read. */
  read(): RunLogRead<T> {
    return this.scan(true);
  }

  /** The log's lines as runs; `check` applies the options' field check as well as the shape one. */
  private scan(check: boolean): RunLogRead<T> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { runs: [], problems: [] };
      throw e;
    }
    const runs: T[] = [];
    const problems: string[] = [];
    const lines = text.split('\n');
    const last = lines.length - 1;
    for (const [i, line] of lines.entries()) {
      if (line.trim() === '') continue;
      const where = `runs.jsonl line ${i + 1}`;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        problems.push(`${where}: ${i === last ? 'cut short (the writer stopped mid-line)' : `not JSON (${(e as Error).message})`}; skipped`);
        continue;
      }
      const why = (check ? this.o.check?.(v) : undefined) ?? (isLogged(v) ? undefined : 'not a run (no id or startedAt)');
      if (why) problems.push(`${where}: ${why}; skipped`);
      else {
        runs.push(v as T);
        this.ids.add((v as T).id);
      }
    }
    return { runs, problems };
  }

  /** The newest `limit` runs (by start time), newest first. */
  list(limit = this.max): RunLogRead<T> {
    const r = this.read();
    const runs = r.runs.sort((a, b) => b.startedAt - a.startedAt).slice(0, Math.max(0, limit));
    return { runs, problems: r.problems };
  }

  private compact(): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = statSync(this.file);
      const keep = this.read().runs.sort((a, b) => a.startedAt - b.startedAt).slice(-this.max);
      writeFileSync(tmp, keep.map((r) => `${JSON.stringify(r)}\n`).join(''));
      // Another process appended meanwhile: read again rather than drop its run.
      const now = statSync(this.file);
      if (now.size !== before.size || now.mtimeMs !== before.mtimeMs) continue;
      renameSync(tmp, this.file);
      this.count = keep.length;
      return;
    }
    // Still changing after three tries: leave the log long; the next append tries again.
    rmSync(tmp, { force: true });
  }
}

function isLogged(v: unknown): boolean {
  const r = v as Partial<LoggedRun> | null;
  return typeof r === 'object' && r !== null && typeof r.id === 'string' && typeof r.startedAt === 'number';
}

function endsMidLine(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return false;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return false;
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, size - 1);
    return b[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}
