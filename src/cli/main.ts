#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { ANALYZE_DEFAULTS, runAnalyze } from './analyze.js';
import { runDiff } from './diff.js';
import { runVerify } from './verify.js';

function positiveInt(name: string, unit = '') {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a whole number${unit}, got "${v}"`);
    return Number(v);
  };
}

const program = new Command();
program
  .name('tapwire')
  .description('Checks what code actually did on the network.')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('analyze')
  .description('Decode a pcap or pcapng file ("-" for stdin) into flow records')
  .argument('<file>', 'capture file, or - for standard input')
  .addOption(new Option('--format <format>', 'output format').choices(['table', 'jsonl', 'har']).default('table'))
  .option('--body-limit <bytes>', 'body bytes kept per message', positiveInt('--body-limit', ' of bytes'), ANALYZE_DEFAULTS.bodyLimit)
  .option('--no-redact', 'keep secrets (Authorization, cookies, keys, tokens) in the output')
  .option('--redact-header <name...>', 'more header names to redact', [])
  .option('--no-progress', 'no progress bar, even on a terminal')
  .option('--stats <file>', 'write a JSON summary of the run (counts, violations, seconds, peak RSS)')
  .option('--proto <path>', '.proto file or directory for decoding gRPC messages (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
  .option('--max-messages <n>', 'gRPC messages kept per direction of a call', positiveInt('--max-messages'), 100)
  .option('--redact-params', 'replace PostgreSQL bind parameters with keyed-hash tokens')
  .action(async (file: string, o: { format: 'table' | 'jsonl' | 'har'; bodyLimit: number; redact: boolean; redactHeader: string[]; progress: boolean; stats?: string; proto: string[]; maxMessages: number; redactParams?: boolean }) => {
    process.exitCode = await runAnalyze(file, { ...o, progress: o.progress ? undefined : false });
  });

program
  .command('verify')
  .description('Check a capture with the built-in detectors (retries without backoff, redundant calls): pass, fail or inconclusive')
  .argument('<file>', 'capture file, or - for standard input')
  .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
  .action(async (file: string, o: { format: 'text' | 'json' }) => {
    process.exitCode = await runVerify(file, o);
  });

program
  .command('diff')
  .description('Compare two captures: endpoints, calls per request, statuses, latency, payload shapes and findings; exit 1 on a regression')
  .argument('<before>', 'the capture before the change, or - for standard input')
  .argument('<after>', 'the capture after the change, or - for standard input')
  .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
  .action(async (before: string, after: string, o: { format: 'text' | 'json' }) => {
    process.exitCode = await runDiff(before, after, o);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as { code?: string; exitCode?: number };
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exitCode = 0;
  else if (e.code?.startsWith('commander.')) process.exitCode = 2;
  else {
    process.stderr.write(`tapwire: internal error: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 70;
  }
}
