/**
 * Function names and entry addresses from a Go binary's .gopclntab, for binaries built with
 * `-ldflags='-s -w'` (no .symtab). Go 1.18+ layout only (magic 0xfffffff0, 1.20+: 0xfffffff1),
 * as the runtime reads it (Go source runtime/symtab.go, pcHeader / functab / _func):
 *
 *   pcHeader: magic u32 | pad1 u8 | pad2 u8 | minLC u8 | ptrSize u8 | nfunc int | nfiles uint
 *             | textStart uintptr (0 since Go 1.26: "no longer stored", moduledata.text is used)
 *             | funcnameOffset | cuOffset | filetabOffset | pctabOffset | pclnOffset (uintptrs,
 *             offsets from the header)
 *   functab at pclnOffset: nfunc+1 pairs {entryoff u32 (from the text start), funcoff u32 (from
 *             pclnOffset)}; the last pair's entryoff is the end of the last function.
 *   _func at pclnOffset+funcoff: entryOff u32 | nameOff i32 (into funcnametab, NUL-terminated).
 * Older tables (Go 1.2–1.17 magics 0xfffffffb/0xfffffffa) are refused: those Go versions are
 * refused anyway (stack ABI before 1.17, and 1.17 has no .symtab-less probing here).
 */

export const GO118_MAGIC = 0xfffffff0;
export const GO120_MAGIC = 0xfffffff1;

/** One function: entry and end as virtual addresses. */
export interface PclnFunction {
  name: string;
  entry: number;
  end: number;
}

/**
 * The wanted functions found in `tab` (the whole .gopclntab section). `textStart` is the address
 * of runtime.text (the .text section's start), used when the header does not carry it. Throws an
 * Error saying what is wrong when the table is not one this reads.
 */
export function pclntabFunctions(tab: Buffer, textStart: number, wanted: ReadonlySet<string>): PclnFunction[] {
  if (tab.length < 8) throw new Error('.gopclntab is too short');
  const magic = tab.readUInt32LE(0);
  if (magic !== GO118_MAGIC && magic !== GO120_MAGIC) throw new Error(`.gopclntab magic 0x${magic.toString(16)} is not Go 1.18+'s`);
  const ptrSize = tab[7]!;
  if (ptrSize !== 8) throw new Error(`.gopclntab pointer size ${ptrSize}: only 64-bit binaries are read`);
  const word = (i: number) => Number(tab.readBigUInt64LE(8 + i * 8));
  if (tab.length < 8 + 8 * 8) throw new Error('.gopclntab header is truncated');
  const nfunc = word(0);
  const headerText = word(2);
  const funcnameOff = word(3);
  const pclnOff = word(7);
  const text = headerText || textStart;
  if (pclnOff + (nfunc + 1) * 8 > tab.length || funcnameOff >= tab.length) throw new Error('.gopclntab offsets point past the section');
  const out: PclnFunction[] = [];
  for (let i = 0; i < nfunc; i++) {
    const fo = pclnOff + i * 8;
    const funcoff = tab.readUInt32LE(fo + 4);
    const f = pclnOff + funcoff;
    if (f + 8 > tab.length) continue;
    const nameStart = funcnameOff + tab.readInt32LE(f + 4);
    if (nameStart < 0 || nameStart >= tab.length) continue;
    const end = tab.indexOf(0, nameStart);
    const name = tab.toString('latin1', nameStart, end < 0 ? tab.length : end);
    if (!wanted.has(name)) continue;
    out.push({ name, entry: text + tab.readUInt32LE(fo), end: text + tab.readUInt32LE(fo + 8) });
  }
  return out;
}
