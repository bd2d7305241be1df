import { createRequire } from 'node:module';
import type * as Cel from '@bufbuild/cel';
import type * as CelExt from '@bufbuild/cel/ext';
import type * as Re2 from '@bufbuild/re2';

/**
 * Buf's CEL evaluator, loaded the first time a filter is compiled. It is the costliest module
 * tapwire uses (about 80 ms to load, with its protobuf runtime and RE2), and most runs never
 * filter: `tapwire run`, `verify` and `analyze` without --filter start without it. The package's
 * CommonJS build loads synchronously, so compileFilter stays synchronous; every value of it comes
 * from here, so one instance serves the filter and the checker alike.
 */
export interface CelModules {
  cel: typeof Cel;
  ext: typeof CelExt;
  re2: typeof Re2;
}

let loaded: CelModules | undefined;

export function celModules(): CelModules {
  if (!loaded) {
    const require = createRequire(import.meta.url);
    loaded = { cel: require('@bufbuild/cel'), ext: require('@bufbuild/cel/ext'), re2: require('@bufbuild/re2') };
  }
  return loaded;
}
