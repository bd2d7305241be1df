import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { ProtoLoadError, ProtoSchemas } from '../protocols/index.js';

export { ProtoLoadError, ProtoSchemas };

/**
 * The schemas given with --proto: every .proto in the given files and directories (directories
 * walked, files sorted), read here so that protocols/grpc/protobuf.ts only parses. Imports
 * resolve relative to the importing file. Throws ProtoLoadError naming the file and what was wrong.
 */
export function loadProtos(paths: string[]): ProtoSchemas {
  const files = paths.flatMap(protoFiles);
  if (files.length === 0) throw new ProtoLoadError(paths.join(', '), 'no .proto files found');
  return ProtoSchemas.load({
    files,
    read: (file) => readFileSync(file, 'utf8'),
    resolve: (from, target) => (isAbsolute(target) ? target : join(dirname(from), target)),
  });
}

function protoFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new ProtoLoadError(path, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : `cannot read (${(err as NodeJS.ErrnoException).code})`);
  }
  if (st.isFile()) return [path];
  const out: string[] = [];
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) out.push(...protoFiles(p));
    else if (e.name.endsWith('.proto')) out.push(p);
  }
  return out.sort();
}
