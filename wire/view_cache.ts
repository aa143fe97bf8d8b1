/**
 * view_cache.ts - a DataView and a Uint8Array over a whole buffer, rebuilt
 * only when the buffer changes.
 *
 * Handlers receive frames as `(Uint8Array, off, len)`; the wire accessors
 * want a DataView. Building one per frame is an allocation, so each handler
 * keeps a ViewCache per argument and asks it for views over the array's
 * underlying buffer: they are rebuilt only when a different buffer comes in,
 * which in orzo happens a handful of times per run (one packet buffer per
 * pool). Offsets into the views are `array.byteOffset + off`.
 *
 * @module
 */

/** Cached whole-buffer views for one argument of a handler. */
export class ViewCache {
  /** DataView over the whole current buffer */
  dv: DataView = new DataView(new ArrayBuffer(0));
  /** Uint8Array over the whole current buffer */
  u8: Uint8Array = new Uint8Array(0);
  #buf: ArrayBufferLike | null = null;

  /**
   * Points the views at the buffer underlying `a`, rebuilding them only when
   * it is not the buffer seen last (or a view went stale, as after a
   * WebAssembly memory grow).
   * @param a the array whose buffer the views should cover
   * @returns the byte offset of `a` within the views
   */
  use(a: Uint8Array): number {
    const buf = a.buffer;
    if (buf !== this.#buf || this.u8.byteLength !== buf.byteLength) {
      this.#buf = buf;
      this.dv = new DataView(buf);
      this.u8 = new Uint8Array(buf);
    }
    return a.byteOffset;
  }
}
