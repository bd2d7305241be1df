/**
 * Dependencies point down the pipeline only (../shared/STYLE.md, "Shape"):
 *   common ← capture ← decode ← stream ← reassembly ← protocols ← flows ← enrich ← pipeline ← query
 *   ← store ← verify ← watch ← live ← client ← service ← requests ← run ← api ← agent ← hub ← mcp ← cli
 * `stream/` is the byte-stream contract shared by reassembly and by sources of streams without
 * packets; `enrich/` adds identities to records; `service/` is the one port the front doors use
 * (a capture file, a store, a remote agent, the hub); `requests/` holds the zod schemas of what
 * the front doors take, so that only they load zod. `api/` and `mcp/` are two front doors over
 * the same core: they never import each other, and the MCP server never reaches into the agent.
 * `npm test` runs this check; test/meta/boundaries.test.ts plants each kind of bad import in a
 * scratch copy and expects it to fail here.
 */
const order = ['common', 'capture', 'decode', 'stream', 'reassembly', 'protocols', 'flows', 'enrich', 'pipeline', 'query', 'store', 'verify', 'watch', 'live', 'client', 'service', 'requests', 'run', 'api', 'agent', 'hub', 'mcp', 'cli'];

const forbidden = [
  {
    name: 'no-circular',
    severity: 'error',
    comment: 'Import cycles make the pipeline order meaningless.',
    from: {},
    to: { circular: true },
  },
  {
    name: 'through-index',
    severity: 'error',
    comment: 'A stage is imported only through its index.ts: what it exports there is its public face, the rest may change.',
    from: { path: '^src/([^/]+)/' },
    to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
  },
  {
    name: 'no-protocol-imports-another',
    severity: 'error',
    comment: 'A protocol folder stands alone: what protocols share lives in src/protocols/*.ts (types, pairing), and HTTP/2 finds gRPC by name through the registry.',
    from: { path: '^src/protocols/([^/]+)/' },
    to: { path: '^src/protocols/[^/]+/', pathNot: '^src/protocols/$1/' },
  },
  {
    name: 'no-io-in-decoders',
    severity: 'error',
    comment: 'Decoding is pure: no files, sockets or processes below the pipeline (the caller reads .proto files, identities, captures).',
    from: { path: '^src/(decode|stream|reassembly|protocols|flows)/' },
    to: { dependencyTypes: ['core'], path: '^(node:)?(fs|fs/promises|net|child_process)$' },
  },
  {
    name: 'front-doors-use-the-core',
    severity: 'error',
    comment: 'The CLI, the API and the MCP server never import protocol, reassembly or decode internals: they go through pipeline/, service/ and the stages above.',
    from: { path: '^src/(cli|api|mcp)/' },
    to: { path: '^src/(decode|stream|reassembly|protocols)/' },
  },
  {
    name: 'front-doors-apart',
    severity: 'error',
    comment: 'The MCP server is a front door like the HTTP API: it uses the core and client/, never api/, agent/ or hub/.',
    from: { path: '^src/mcp/' },
    to: { path: '^src/(api|agent|hub)/' },
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
