// The project's modules the fuzz cases drive, from the built dist/ (as the other bench scripts
// run it). The sample test passes the same shape from src/ instead.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export async function loadDist(root) {
  const load = (p) => import(pathToFileURL(join(root, 'dist', p)).href);
  const [protocols, registry, flows, pipeline, capture, hpack, huffman] = await Promise.all([
    load('protocols/index.js'), load('protocols/registry.js'), load('flows/index.js'), load('pipeline/index.js'),
    load('capture/index.js'), load('protocols/http2/hpack.js'), load('protocols/http2/huffman.js'),
  ]);
  return {
    ANALYZERS: protocols.ANALYZERS, CARRIED: registry.CARRIED,
    FlowBuilder: flows.FlowBuilder, Redactor: flows.Redactor, harEntry: flows.harEntry,
    decodeCapture: pipeline.decodeCapture, CaptureFormatError: capture.CaptureFormatError,
    protos: pipeline.loadProtos([join(root, 'pcaps', 'grpc', 'shop.proto')]),
    HpackDecoder: hpack.HpackDecoder, HpackError: hpack.HpackError, HUFFMAN_CODES: huffman.HUFFMAN_CODES,
  };
}
