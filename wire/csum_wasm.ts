/**
 * csum_wasm.ts - the assembled bytes of csum.wat (RFC 1071 sum, WebAssembly SIMD).
 *
 * orzo runs with --allow-ffi only and cannot read a .wasm file at run time, so
 * the module is embedded here. Produced from `wire/csum.wat` with npm wabt
 * 1.0.39 (outside the repository), then base64-encoded:
 *
 * ```sh
 * mkdir -p /tmp/wabt && cd /tmp/wabt && npm i wabt@1.0.39
 * node_modules/.bin/wat2wasm /path/to/orzo/wire/csum.wat -o csum.wasm
 * base64 -w0 csum.wasm   # paste below, split into lines
 * ```
 *
 * `checksum_test.ts` checks that these bytes validate and export `memory` and
 * `sum`; when the `WAT2WASM` environment variable names a wat2wasm binary it
 * also re-assembles csum.wat and compares the result with these bytes.
 *
 * @module
 */

/** csum.wasm (555 bytes) as base64. */
export const CSUM_WASM_BASE64: string =
  "AGFzbQEAAAABDAJgAXsBfmACf38BfwMDAgABBQMBAAIHEAIGbWVtb3J5AgADc3VtAAEK9gMCHgEBeyAA/ckBIAD9" +
  "ygH9zgEhASAB/R0AIAH9HQF8C9QDAwR7An8BfgJAA0AgAUHAAEkNASABQUBxIQYgBkGAgMAASwRAQYCAwAAhBgsg" +
  "ACAGaiEHIAEgBmshAf0MAAAAAAAAAAAAAAAAAAAAACEC/QwAAAAAAAAAAAAAAAAAAAAAIQP9DAAAAAAAAAAAAAAA" +
  "AAAAAAAhBP0MAAAAAAAAAAAAAAAAAAAAACEFA0AgAiAA/QAAAP1//a4BIQIgAyAA/QAAEP1//a4BIQMgBCAA/QAA" +
  "IP1//a4BIQQgBSAA/QAAMP1//a4BIQUgAEHAAGohACAAIAdJDQALIAggAhAAIAMQAHwgBBAAIAUQAHx8fCEIDAAL" +
  "C/0MAAAAAAAAAAAAAAAAAAAAACECAkADQCABQRBJDQEgAiAA/QAAAP1//a4BIQIgAEEQaiEAIAFBEGshAQwACwsg" +
  "CCACEAB8IQgCQANAIAFBAkkNASAIIAAzAAB8IQggAEECaiEAIAFBAmshAQwACwsgAQRAIAggADEAAHwhCAsgCEL/" +
  "////D4MgCEIgiHwhCCAIQv////8PgyAIQiCIfCEIIAhC//8DgyAIQhCIfCEIIAhC//8DgyAIQhCIfCEIIAhC//8D" +
  "gyAIQhCIfCEIIAinQf8BcUEIdCAIp0EIdnIL";

/**
 * Decodes the embedded module.
 * @returns the bytes of csum.wasm
 */
export function csumWasmBytes(): Uint8Array<ArrayBuffer> {
  const s = atob(CSUM_WASM_BASE64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
