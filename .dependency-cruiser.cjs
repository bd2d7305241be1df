/**
 * Dependencies point down the pipeline only (STYLE.md):
 *   common ← capture ← decode ← reassembly ← protocols ← flows ← pipeline ← query ← store ← verify
 *          ← watch ← live ← client ← service ← run ← api ← agent ← mcp ← cli
 * `service/` is the one port the front doors use (a capture file, a store, a remote agent, the hub).
 * `api/` and `mcp/` are two front doors over the same core: they never import each other, and the
 * MCP server never reaches into the agent (it talks to one through `client/`).
 * A lower stage never imports a higher one, and nothing forms a cycle. `npm test` runs this.
 */
const order = ['common', 'capture', 'decode', 'reassembly', 'protocols', 'flows', 'pipeline', 'query', 'store', 'verify', 'watch', 'live', 'client', 'service', 'run', 'api', 'agent', 'mcp', 'cli'];

const forbidden = [
  {
    name: 'no-circular',
    severity: 'error',
    comment: 'Import cycles make the pipeline order meaningless.',
    from: {},
    to: { circular: true },
  },
  {
    name: 'protocols-use-reassembly-types-only',
    severity: 'error',
    comment: 'Protocol analyzers see reassembly only through its public types (src/reassembly/types.ts).',
    from: { path: '^src/protocols/' },
    to: { path: '^src/reassembly/', pathNot: '^src/reassembly/types\\.ts$' },
  },
  {
    name: 'front-doors-apart',
    severity: 'error',
    comment: 'The MCP server is a front door like the HTTP API: it uses the core and client/, never api/ or agent/.',
    from: { path: '^src/mcp/' },
    to: { path: '^src/(api|agent)/' },
  },
];

// For each stage, forbid importing any stage that comes after it.
order.forEach((stage, i) => {
  const later = order.slice(i + 1);
  if (later.length === 0) return;
  forbidden.push({
    name: `${stage}-not-upward`,
    severity: 'error',
    comment: `${stage}/ may not import ${later.join(', ')}: dependencies point down the pipeline.`,
    from: { path: `^src/${stage}/` },
    to: { path: `^src/(${later.join('|')})/` },
  });
});

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
