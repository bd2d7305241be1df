/**
 * Where a Go function returns. Go moves goroutine stacks (copying them to grow), so a uretprobe's
 * rewritten return address on the stack breaks the program: the probes sit on each RET instead
 * (the approach of the eBPF tools that read Go's crypto/tls). A RET must be found as an
 * instruction start, not a C3 byte inside another instruction, so x86-64 code is decoded with
 * iced-x86 (loaded only when a Go binary is found: most hosts never need it). arm64 instructions
 * are fixed 4-byte words and RET (to x30) is 0xd65f03c0.
 */
import { createRequire } from 'node:module';

type Iced = typeof import('iced-x86');
let iced: Iced | undefined;

function loadIced(): Iced {
  iced ??= createRequire(import.meta.url)('iced-x86') as Iced;
  return iced;
}

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
const ARM64_RET = 0xd65f03c0;

/** The offsets within `code` (a function's bytes) at which a RET instruction starts. */
export function retOffsets(code: Buffer, machine: number): number[] {
  const out: number[] = [];
  if (machine === EM_AARCH64) {
    for (let o = 0; o + 4 <= code.length; o += 4) if (code.readUInt32LE(o) === ARM64_RET) out.push(o);
    return out;
  }
  if (machine !== EM_X86_64) throw new Error(`no RET finder for ELF machine ${machine}`);
  const { Decoder, DecoderOptions, Mnemonic } = loadIced();
  const d = new Decoder(64, code, DecoderOptions.None);
  try {
    d.ip = 0n;
    while (d.canDecode) {
      const ins = d.decode();
      // RET near (C3, C2 iw): far returns (CB/CA) do not occur in Go code.
      if (ins.mnemonic === Mnemonic.Ret) out.push(Number(ins.ip));
      ins.free();
    }
  } finally {
    d.free();
  }
  return out;
}

/**
 * A Go function's prologue `[lea r12, [rsp-N];] cmp rsp|r12, [r14+16]; jbe morestack` (x86-64):
 * the offset of the stack-bound check's conditional jump, and of the instruction after it, or
 * undefined when the function does not start so (a NOSPLIT function) or on arm64.
 */
function stackCheck(code: Buffer, machine: number): { jump: number; body: number } | undefined {
  if (machine !== EM_X86_64) return undefined;
  const { Decoder, DecoderOptions, FlowControl, Mnemonic } = loadIced();
  const d = new Decoder(64, code.subarray(0, 32), DecoderOptions.None);
  try {
    d.ip = 0n;
    for (let i = 0; i < 3 && d.canDecode; i++) {
      const ins = d.decode();
      const { mnemonic, flowControl } = ins;
      const at = Number(ins.ip), next = Number(ins.nextIP);
      ins.free();
      if (flowControl === FlowControl.ConditionalBranch) return i > 0 ? { jump: at, body: next } : undefined;
      if (mnemonic !== Mnemonic.Lea && mnemonic !== Mnemonic.Cmp) return undefined;
    }
    return undefined;
  } finally {
    d.free();
  }
}

/**
 * Where to put a Go function's entry probe: on the stack-bound check's conditional jump when there
 * is one, else at the entry. The kernel emulates a Jcc under a uprobe, where the CMP before it is
 * single-stepped out of line (a second trap); LEA and CMP change no argument register (RAX, RBX,
 * RCX) nor R14. 0 (the entry) on arm64 and whenever the prologue is not that.
 */
export function entryProbeOffset(code: Buffer, machine: number): number {
  return stackCheck(code, machine)?.jump ?? 0;
}

/**
 * Where a Go function's body starts: the instruction after the prologue's stack-bound jump, run
 * exactly once per call (when the stack must grow, the jump goes to morestack, which calls the
 * function again from its entry; the entry and the jump run twice, this instruction once). A probe
 * that emits data at entry must sit here, or a grown stack would copy the data twice. The
 * arguments are still in their registers. 0 (the entry) when there is no such prologue (a
 * NOSPLIT function never grows its stack) and on arm64.
 */
export function bodyProbeOffset(code: Buffer, machine: number): number {
  return stackCheck(code, machine)?.body ?? 0;
}
