/**
 * stream_guest.ts - the test plays qemu on passt mode's UNIX socket: frames
 * go both ways with qemu's stream framing (each after its length, 4 bytes
 * big-endian, tap/stream.ts). The frames themselves come from the other
 * helpers (tcp_frames.ts segment(), arpRequest() here) and are parsed by
 * them (parseTcp(frame, 0)).
 *
 * @module
 */

/** The MAC address of the guest in the frames built here and by tcp_frames.ts segment(). */
export const GUEST_MAC = [0x02, 0, 0, 0, 0, 0x15];

/**
 * An ARP request, as an Ethernet frame (broadcast).
 * @param mac the sender's MAC
 * @param senderIp the sender's IPv4 address
 * @param targetIp the address asked about
 * @returns the frame, 42 bytes
 */
export function arpRequest(
  mac: number[],
  senderIp: number[],
  targetIp: number[],
): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(42);
  const dv = new DataView(f.buffer);
  f.fill(0xff, 0, 6);
  f.set(mac, 6);
  dv.setUint16(12, 0x0806);
  dv.setUint16(14, 1); /* Ethernet */
  dv.setUint16(16, 0x0800);
  f[18] = 6;
  f[19] = 4;
  dv.setUint16(20, 1); /* request */
  f.set(mac, 22);
  f.set(senderIp, 28);
  f.set(targetIp, 38);
  return f;
}

/**
 * Frames a frame for the stream: its length, then the frame.
 * @param frame an Ethernet frame
 * @returns the framed bytes
 */
export function streamFrame(frame: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4 + frame.length);
  new DataView(out.buffer).setUint32(0, frame.length);
  out.set(frame, 4);
  return out;
}

/** A client of passt mode's socket, as qemu: sends and receives framed Ethernet frames. */
export class StreamGuest {
  readonly #conn: Deno.UnixConn;
  readonly #frames: Uint8Array<ArrayBuffer>[] = [];
  #waiter: (() => void) | null = null;
  #ended = false;
  /** frames sent so far */
  sent = 0;
  /** frames received so far */
  received = 0;

  private constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
    this.#pump();
  }

  /**
   * Connects to the socket.
   * @param path the socket's path
   * @returns the client; call close() in a finally block
   */
  static async connect(path: string): Promise<StreamGuest> {
    return new StreamGuest(await Deno.connect({ transport: "unix", path }));
  }

  /** Reads the stream and splits it into frames, until it ends. */
  async #pump(): Promise<void> {
    let pending = new Uint8Array(0);
    const buf = new Uint8Array(1 << 17);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        const all = new Uint8Array(pending.length + n);
        all.set(pending);
        all.set(buf.subarray(0, n), pending.length);
        let off = 0;
        while (all.length - off >= 4) {
          const len = new DataView(all.buffer, off).getUint32(0);
          if (all.length - off < 4 + len) break;
          this.#frames.push(all.slice(off + 4, off + 4 + len));
          this.received++;
          off += 4 + len;
        }
        pending = all.slice(off);
        this.#waiter?.();
      }
    } catch { /* closed */ }
    this.#ended = true;
    this.#waiter?.();
  }

  /**
   * Sends one frame, framed.
   * @param frame an Ethernet frame
   */
  async send(frame: Uint8Array): Promise<void> {
    const b = streamFrame(frame);
    for (let off = 0; off < b.length;) off += await this.#conn.write(b.subarray(off));
    this.sent++;
  }

  /**
   * The next frame from orzo (without its length), waiting at most `timeoutMs`.
   * @param timeoutMs longest wait
   * @returns the Ethernet frame, or null when none came in time or the stream ended
   */
  async recv(timeoutMs = 5000): Promise<Uint8Array<ArrayBuffer> | null> {
    const deadline = performance.now() + timeoutMs;
    while (this.#frames.length === 0 && !this.#ended) {
      const left = deadline - performance.now();
      if (left <= 0) return null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((res) => {
        this.#waiter = res;
        timer = setTimeout(res, left);
      });
      clearTimeout(timer);
      this.#waiter = null;
    }
    return this.#frames.shift() ?? null;
  }

  /** Closes the connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}
