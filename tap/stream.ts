/**
 * stream.ts - the passt-mode backend: frames over qemu's UNIX stream socket.
 *
 * Theory of operation: qemu (`-netdev stream,addr.type=unix`, libvirt's
 * `"type":"stream"`) connects to our listening socket; each frame on the
 * stream, both ways, is preceded by its length as 4 bytes in network order.
 * One client at a time: another one is accepted and closed right away (as
 * passt). When the client leaves, orzo quits with --one-off (or --fd),
 * otherwise waits for the next one on the same socket.
 *
 * Input: one readv() per round into a preallocated buffer behind what is
 * left of a frame that arrived split; every complete frame is handed over in
 * place (no copy) and what remains moves to the front. The stream is the
 * guest's: a length below an Ethernet header drops that frame, a length above
 * STREAM_FRAME_MAX cannot be resynchronised and closes the client; both are
 * counted, nothing throws.
 *
 * Output ({@linkcode StreamTap.send}): the backend writes the length into the
 * frame's 4 bytes of header room and sends the whole with one send(). A full
 * socket (EAGAIN) refuses the frame whole (TCP rewinds and resends, UDP and
 * ICMP count a drop). A short write keeps the frame's tail in a
 * preallocated buffer: it goes out first, on EPOLLOUT, and until it has gone
 * every new frame is refused, so no frame is ever cut. Once the socket drains
 * after a refusal, `onWritable` lets TCP resume at once.
 *
 * Batches ({@linkcode StreamTap.sendFrames}, TCP's data frames of one socket
 * read): one sendmsg() with an iovec per frame (at most STREAM_BATCH_MAX), as
 * passt does, instead of one send() each: fewer system calls and fewer
 * wake-ups of qemu. A short write commits the frames it covers, keeps the
 * tail of the one it cut (as above) and refuses the rest, which the caller
 * resends once the socket drains.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { check, errno, SysError } from "../ffi/errno.ts";
import { ConfError } from "../conf/errors.ts";
import { addressOf, cString } from "../ffi/mem.ts";
import { sockBufSet } from "../ffi/sockbuf.ts";
import {
  AF_UNIX,
  EPOLLERR,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  MSG_DONTWAIT,
  MSG_NOSIGNAL,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
} from "../ffi/layout.ts";
import type { TapBackend } from "./backend.ts";

/** Bytes before each frame on the stream: its length, big-endian. */
export const STREAM_HDR_LEN = 4;
/** Longest frame accepted from the stream (passt: ETH_MAX_MTU). */
export const STREAM_FRAME_MAX = 65535;
/** Shortest frame: an Ethernet header. */
export const STREAM_FRAME_MIN = 14;
/** Input buffer: many frames per read, plus room for a split one. */
const IN_BUF_SIZE = (1 << 19) + STREAM_HDR_LEN + STREAM_FRAME_MAX;
/** Frames per sendmsg() at most (sendFrames()). */
export const STREAM_BATCH_MAX = 64;
/** Reads per readiness event at most, so that other fds get their turn. */
const READS_PER_EVENT = 16;
/** passt's default socket names: /tmp/passt_1.socket ... /tmp/passt_99.socket. */
export const STREAM_DEFAULT_PATH = (i: number): string => `/tmp/passt_${i}.socket`;
/** How many default names are tried (passt's UNIX_SOCK_MAX is 100, from 1). */
export const STREAM_DEFAULT_COUNT = 99;
/** Socket buffer sizes asked for (the kernel caps them without CAP_NET_ADMIN). */
const SOCK_BUF = 8 << 20;

const EAGAIN = 11;
const EINTR = 4;
const ENOENT = 2;
const EACCES = 13;
const ECONNREFUSED = 111;
const ENOTCONN = 107;
const SO_PEERCRED = 17;

/** Writes a frame's length into the 4 bytes before it, big-endian. */
function lengthWrite(buf: Uint8Array, off: number, frameLen: number): void {
  buf[off] = frameLen >>> 24;
  buf[off + 1] = (frameLen >>> 16) & 0xff;
  buf[off + 2] = (frameLen >>> 8) & 0xff;
  buf[off + 3] = frameLen & 0xff;
}

/** Counters of the stream backend. */
export interface StreamStats {
  /** clients accepted */
  clients: number;
  /** clients refused because one was connected */
  refused: number;
  /** frames received */
  framesIn: number;
  /** frames dropped for a length below an Ethernet header */
  shortFrames: number;
  /** clients closed for a length beyond STREAM_FRAME_MAX */
  badLengthCloses: number;
  /** writes that took only part of a frame (its tail was kept and finished) */
  partialWrites: number;
  /** frames refused because the socket was full */
  refusedFull: number;
}

/** What the stream backend calls back into. */
export interface StreamHooks {
  /**
   * Takes one frame from the guest; `buf` holds it at `off`, `len` bytes.
   * The buffer is reused after the call returns.
   */
  deliver(buf: Uint8Array, view: DataView, off: number, len: number, now: number): void;
  /** the client is gone (end of stream, error or a bad length); `why` for the log */
  closed(why: string): void;
  /** the socket drained after frames were refused: senders may resume */
  writable(now: number): void;
  /** a client connected (fd), for the log and the epoll set */
  connected(fd: number): void;
}

function sockaddrUn(path: string): Uint8Array<ArrayBuffer> {
  const sa = new Uint8Array(110);
  const p = new TextEncoder().encode(path);
  if (p.length > 107) throw new ConfError(`Socket path too long: ${path}`);
  sa[0] = AF_UNIX;
  sa.set(p, 2);
  return sa;
}

/** Whether something already listens at `path` (connect succeeds, or fails otherwise than "nobody"). */
function inUse(path: string): boolean {
  const fd = libc.symbols.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const sa = sockaddrUn(path);
  const r = libc.symbols.connect(fd, sa, sa.length);
  const e = r < 0 ? errno() : 0;
  libc.symbols.close(fd);
  return r === 0 || (e !== ENOENT && e !== ECONNREFUSED && e !== EACCES);
}

/**
 * Creates the listening socket, as passt: the given path (an error if in
 * use), or the first default name nobody listens on. A stale socket file is
 * replaced.
 * @param path -s/--socket, or undefined for the default sequence
 * @returns the listening fd (non-blocking) and its path
 */
export function streamListen(path: string | undefined): { fd: number; path: string } {
  const fd = check(
    libc.symbols.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
    "socket(AF_UNIX)",
  );
  try {
    const names = path !== undefined
      ? [path]
      : Array.from({ length: STREAM_DEFAULT_COUNT }, (_, i) => STREAM_DEFAULT_PATH(i + 1));
    for (const name of names) {
      if (inUse(name)) {
        if (path !== undefined) throw new ConfError(`Socket path ${name} already in use`);
        continue;
      }
      libc.symbols.unlink(cString(name));
      const sa = sockaddrUn(name);
      if (libc.symbols.bind(fd, sa, sa.length) < 0) {
        if (path !== undefined) throw new SysError(`bind ${name}`, errno());
        continue;
      }
      check(libc.symbols.listen(fd, 0), `listen ${name}`);
      return { fd, path: name };
    }
    throw new ConfError("No free UNIX domain socket name in /tmp/passt_1..99.socket");
  } catch (e) {
    libc.symbols.close(fd);
    throw e;
  }
}

/** The client's PID (SO_PEERCRED), or 0 when unknown. */
function peerPid(fd: number): number {
  const cred = new Int32Array(3);
  const len = new Uint32Array([12]);
  const r = libc.symbols.getsockopt(
    fd,
    SOL_SOCKET,
    SO_PEERCRED,
    new Uint8Array(cred.buffer),
    new Uint8Array(len.buffer),
  );
  return r < 0 ? 0 : cred[0]!;
}

/** The stream socket backend: one client at a time on a listening socket, or one given fd. */
export class StreamTap implements TapBackend {
  /** always "stream" */
  readonly kind = "stream" as const;
  /** the listening socket, -1 with --fd */
  readonly listenFd: number;
  /** the socket path, "" with --fd */
  readonly path: string;
  /** the connected client, -1 when none */
  fd = -1;
  /** counters */
  readonly stats: StreamStats = {
    clients: 0,
    refused: 0,
    framesIn: 0,
    shortFrames: 0,
    badLengthCloses: 0,
    partialWrites: 0,
    refusedFull: 0,
  };

  readonly #hooks: StreamHooks;
  readonly #in = new Uint8Array(IN_BUF_SIZE);
  readonly #inView = new DataView(this.#in.buffer);
  /** bytes of a split frame kept at the start of #in */
  #inLen = 0;
  readonly #inAddr = Number(addressOf(this.#in));
  readonly #iov = new Uint8Array(16);
  readonly #iovView = new DataView(this.#iov.buffer);
  /** the tail of a frame whose write was short */
  readonly #pend = new Uint8Array(STREAM_HDR_LEN + STREAM_FRAME_MAX + 64);
  #pendLen = 0;
  /** sendFrames(): one iovec per frame, and the msghdr pointing at them */
  readonly #outIov = new Uint8Array(STREAM_BATCH_MAX * 16);
  readonly #outIovView = new DataView(this.#outIov.buffer);
  readonly #outMsg = new Uint8Array(56);
  readonly #outMsgView = new DataView(this.#outMsg.buffer);
  /** the buffer of the last batch, and its address (cached by identity) */
  #outBuf: Uint8Array | null = null;
  #outBufAddr = 0;
  /** EPOLLOUT is armed (a tail is pending or a frame was refused) */
  #wantOut = false;
  readonly #epollMod: (fd: number, events: number) => void;

  /**
   * Creates the backend.
   * @param listenFd the listening socket, or -1 when `fd` is given
   * @param path the socket path, for messages
   * @param hooks where frames and events go
   * @param epollMod changes the events the loop watches on the client
   */
  constructor(
    listenFd: number,
    path: string,
    hooks: StreamHooks,
    epollMod: (fd: number, events: number) => void,
  ) {
    this.listenFd = listenFd;
    this.path = path;
    this.#hooks = hooks;
    this.#epollMod = epollMod;
    const addr = Number(addressOf(this.#outIov));
    const msg = this.#outMsgView;
    msg.setUint32(16, addr % 4294967296, true);
    msg.setUint32(20, Math.floor(addr / 4294967296), true);
  }

  /**
   * Takes a connected socket as the client (--fd, or one just accepted).
   * @param fd the socket
   */
  attach(fd: number): void {
    const fl = libc.symbols.fcntl(fd, 3, /* F_GETFL */ 0);
    if (fl >= 0) libc.symbols.fcntl(fd, 4, /* F_SETFL */ fl | 0o4000 /* O_NONBLOCK */);
    sockBufSet(fd, "snd", SOCK_BUF);
    sockBufSet(fd, "rcv", SOCK_BUF);
    this.fd = fd;
    this.#inLen = 0;
    this.#pendLen = 0;
    this.#wantOut = false;
    this.stats.clients++;
    this.#hooks.connected(fd);
  }

  /**
   * Accepts a client on the listening socket (its EPOLLIN handler); one
   * arriving while another is connected is closed at once.
   * @returns the PID of the accepted client (0 when unknown), -1 when none
   */
  accept(): number {
    const fd = libc.symbols.accept4(this.listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return -1;
    if (this.fd >= 0) {
      this.stats.refused++;
      libc.symbols.close(fd);
      return -1;
    }
    this.attach(fd);
    return peerPid(fd);
  }

  /** Closes the client (the listening socket stays). */
  close(why: string): void {
    if (this.fd < 0) return;
    libc.symbols.close(this.fd);
    this.fd = -1;
    this.#inLen = 0;
    this.#pendLen = 0;
    this.#hooks.closed(why);
  }

  /**
   * Handles events on the client: input frames, the pending tail, hang-ups.
   * @param events EPOLL* mask
   * @param now monotonic time in ms
   */
  handler(events: number, now: number): void {
    if (this.fd < 0) return;
    if (events & EPOLLOUT) this.#drained(now);
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) this.#input(now);
  }

  #input(now: number): void {
    const buf = this.#in;
    const dv = this.#inView;
    const hooks = this.#hooks;
    for (let r = 0; r < READS_PER_EVENT && this.fd >= 0; r++) {
      /* read behind the split frame kept at the front */
      const at = this.#inAddr + this.#inLen;
      this.#iovView.setUint32(0, at % 4294967296, true);
      this.#iovView.setUint32(4, Math.floor(at / 4294967296), true);
      this.#iovView.setUint32(8, IN_BUF_SIZE - this.#inLen, true);
      const n = libc.symbols.readv(this.fd, this.#iov, 1);
      if (n < 0) {
        const e = errno();
        if (e === EAGAIN || e === EINTR) return;
        this.close(`read error ${e}`);
        return;
      }
      if (n === 0) {
        this.close("client closed connection");
        return;
      }
      const end = this.#inLen + n;
      let off = 0;
      while (end - off >= STREAM_HDR_LEN) {
        const len = dv.getUint32(off);
        if (len > STREAM_FRAME_MAX) {
          /* the stream cannot be resynchronised */
          this.stats.badLengthCloses++;
          this.close(`bad frame length ${len}`);
          return;
        }
        if (end - off - STREAM_HDR_LEN < len) break;
        if (len < STREAM_FRAME_MIN) {
          this.stats.shortFrames++;
        } else {
          this.stats.framesIn++;
          hooks.deliver(buf, dv, off + STREAM_HDR_LEN, len, now);
          if (this.fd < 0) return;
        }
        off += STREAM_HDR_LEN + len;
      }
      if (off < end && off > 0) buf.copyWithin(0, off, end);
      this.#inLen = end - off;
      if (end < IN_BUF_SIZE) return; /* short read: the socket is empty */
    }
  }

  /**
   * Sends one frame: `buf[0, 4)` is the header room, the Ethernet frame
   * follows (see TapBackend.send).
   * @param buf header room and frame
   * @param len 4 plus the frame length
   * @returns len, or -errno (-EAGAIN: nothing sent, try later)
   */
  send(buf: Uint8Array<ArrayBuffer>, len: number): number {
    const fd = this.fd;
    if (fd < 0) return -ENOTCONN;
    if (!this.#pendFlushed()) return -EAGAIN;
    lengthWrite(buf, 0, len - STREAM_HDR_LEN);
    const n = libc.symbols.send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n === len) return len;
    if (n < 0) return this.#sendFailed();
    /* short write: the tail goes out before anything else */
    this.#pend.set(buf.subarray(n, len), 0);
    this.#pendLen = len - n;
    this.stats.partialWrites++;
    this.#armOut();
    return len;
  }

  /**
   * Sends the tail of a cut frame that is still pending, if any.
   * @returns true when nothing is pending any more; false (counted as
   *   refused) when the socket is still full
   */
  #pendFlushed(): boolean {
    if (this.#pendLen === 0 || this.#flush()) return true;
    this.stats.refusedFull++;
    return false;
  }

  /**
   * After a failed send: a full socket is counted and waited for (EPOLLOUT).
   * @returns -errno
   */
  #sendFailed(): number {
    const e = errno();
    if (e === EAGAIN) {
      this.stats.refusedFull++;
      this.#armOut();
    }
    return -e;
  }

  /**
   * Sends several frames with one sendmsg(): frame `i` is
   * `buf[offs[i], offs[i] + lens[i])`, its first 4 bytes the header room
   * (see TapBackend.sendFrames).
   * @param buf the buffer holding every frame
   * @param offs where each frame's header room starts
   * @param lens 4 plus the frame length, per frame
   * @param count how many frames (at most STREAM_BATCH_MAX are taken)
   * @returns how many frames, from the first, are sent or committed (a cut
   *   one's tail is kept), or -errno when none is (-EAGAIN: full, try later)
   */
  sendFrames(
    buf: Uint8Array<ArrayBuffer>,
    offs: Int32Array,
    lens: Int32Array,
    count: number,
  ): number {
    const fd = this.fd;
    if (fd < 0) return -ENOTCONN;
    if (count <= 0) return 0;
    if (!this.#pendFlushed()) return -EAGAIN;
    if (count > STREAM_BATCH_MAX) count = STREAM_BATCH_MAX;
    if (buf !== this.#outBuf) {
      this.#outBuf = buf;
      this.#outBufAddr = Number(addressOf(buf));
    }
    const iov = this.#outIovView;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const off = offs[i]!;
      const len = lens[i]!;
      lengthWrite(buf, off, len - STREAM_HDR_LEN);
      const at = this.#outBufAddr + off;
      iov.setUint32(i * 16, at % 4294967296, true);
      iov.setUint32(i * 16 + 4, Math.floor(at / 4294967296), true);
      iov.setUint32(i * 16 + 8, len, true);
      total += len;
    }
    this.#outMsgView.setUint32(24, count, true);
    const n = libc.symbols.sendmsg(fd, this.#outMsg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n === total) return count;
    if (n < 0) return this.#sendFailed();
    /* short write: the frames it covers went, the one it cut is committed */
    let done = 0;
    let k = 0;
    while (k < count && done + lens[k]! <= n) done += lens[k++]!;
    if (done < n) {
      const off = offs[k]!;
      this.#pend.set(buf.subarray(off + n - done, off + lens[k]!), 0);
      this.#pendLen = lens[k]! - (n - done);
      this.stats.partialWrites++;
      k++;
    }
    if (k < count) this.stats.refusedFull++;
    this.#armOut();
    return k > 0 ? k : -EAGAIN;
  }

  /** Writes what is left of a cut frame; true when nothing is left. */
  #flush(): boolean {
    while (this.#pendLen > 0) {
      const n = libc.symbols.send(this.fd, this.#pend, this.#pendLen, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) return false;
      this.#pend.copyWithin(0, n, this.#pendLen);
      this.#pendLen -= n;
    }
    return true;
  }

  #armOut(): void {
    if (this.#wantOut) return;
    this.#wantOut = true;
    this.#epollMod(this.fd, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
  }

  #drained(now: number): void {
    if (!this.#flush()) return;
    if (this.#wantOut) {
      this.#wantOut = false;
      this.#epollMod(this.fd, EPOLLIN | EPOLLRDHUP);
    }
    this.#hooks.writable(now);
  }
}
