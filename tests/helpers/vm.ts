/**
 * vm.ts - a small virtual machine for passt-mode tests: qemu-system-x86_64
 * under TCG (no KVM here), Debian's linux-image-cloud-amd64 kernel, and an
 * initramfs built at run time from busybox-static and the kernel's own
 * virtio-net modules.
 *
 * The initramfs is written by this file as an uncompressed cpio (newc) archive
 * (the kernel takes one as it is; nothing to decompress under emulation): the
 * static busybox, the modules virtio-net needs (taken from
 * /lib/modules/VERSION, decompressed when shipped as .ko.xz), the init script
 * below and the test's script. init loads the modules, brings eth0 up, runs
 * the test's script with a deadline and powers off. Everything the script
 * reports goes to the serial console, which qemu (-nographic) writes to its
 * standard output: lines `@@KEY VALUE` are results, read with Vm.waitFor().
 *
 * The VM's only network device is virtio-net on a `-netdev stream` socket
 * (qemu >= 7.2), exactly as passt's documentation and libvirt start it.
 *
 * @module
 */

/** One file or directory of the initramfs. */
export interface CpioEntry {
  /** path without the leading slash */
  name: string;
  /** st_mode (type and permissions) */
  mode: number;
  /** contents (files and symlink targets) */
  data?: Uint8Array;
  /** device numbers of a character device */
  rdev?: [number, number];
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

/**
 * Writes a cpio archive in the "newc" format the kernel unpacks.
 * @param entries files, directories and device nodes, parents first
 * @returns the archive
 */
export function cpioNewc(entries: CpioEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    size += b.length;
    const pad = (4 - (size & 3)) & 3;
    if (pad) {
      parts.push(new Uint8Array(pad));
      size += pad;
    }
  };
  const hex = (n: number) => n.toString(16).padStart(8, "0");
  const all = [...entries, { name: "TRAILER!!!", mode: 0 }];
  all.forEach((e, i) => {
    const data = e.data ?? new Uint8Array(0);
    const [maj, min] = e.rdev ?? [0, 0];
    const fields = [i + 1, e.mode, 0, 0, 1, 0, data.length, 0, 0, maj, min, e.name.length + 1, 0];
    push(enc.encode("070701" + fields.map(hex).join("") + e.name + "\0"));
    if (data.length > 0) push(data);
  });
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The kernel and its module directory, found on this machine. */
export interface Kernel {
  /** path of the bzImage */
  image: string;
  /** /lib/modules/VERSION */
  modules: string;
}

/**
 * Finds Debian's cloud kernel (package linux-image-cloud-amd64).
 * @returns the kernel, or null when not installed (or qemu / busybox-static missing)
 */
export function findKernel(): Kernel | null {
  let image: string | null = null;
  try {
    for (const e of Deno.readDirSync("/boot")) {
      if (/^vmlinuz-.*-cloud-amd64$/.test(e.name)) image = `/boot/${e.name}`;
    }
  } catch {
    return null;
  }
  if (image === null) return null;
  const version = image.slice("/boot/vmlinuz-".length);
  const modules = `/lib/modules/${version}`;
  for (const need of [modules, "/usr/bin/qemu-system-x86_64", BUSYBOX]) {
    try {
      Deno.statSync(need);
    } catch {
      return null;
    }
  }
  return { image, modules };
}

/** busybox-static's binary (Debian installs the static one as /bin/busybox). */
const BUSYBOX = "/bin/busybox";

/** Modules for virtio-net over PCI, in load order (each after its dependencies). */
const MODULES = [
  "kernel/net/core/failover",
  "kernel/drivers/net/net_failover",
  "kernel/drivers/virtio/virtio_ring",
  "kernel/drivers/virtio/virtio",
  "kernel/drivers/virtio/virtio_pci_legacy_dev",
  "kernel/drivers/virtio/virtio_pci_modern_dev",
  "kernel/drivers/virtio/virtio_pci",
  "kernel/drivers/net/virtio_net",
];

/** Reads a module, decompressing .ko.xz with xz(1) when that is what is shipped. */
async function readModule(dir: string, path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(`${dir}/${path}.ko`);
  } catch {
    const out = await new Deno.Command("xz", {
      args: ["-dc", `${dir}/${path}.ko.xz`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`cannot read module ${path}`);
    return out.stdout;
  }
}

/**
 * The VM's /init. It prints `@@booted` once eth0 exists, runs /test.sh with
 * a deadline, prints `@@done STATUS`, and powers off (the kernel's panic=-1
 * and qemu's -no-reboot end the VM as well if anything goes wrong).
 */
const INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${MODULES.map((m) => m.slice(m.lastIndexOf("/") + 1)).join(" ")}; do
  insmod /lib/$m.ko || echo "@@error insmod $m"
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
ip link set lo up
ip link set eth0 up
echo "@@booted $(cut -d' ' -f1 /proc/uptime)"
timeout $TEST_TIMEOUT sh /test.sh
echo "@@done $?"
sync
poweroff -f
`;

/**
 * The udhcpc event script: configures eth0 from the lease and reports every
 * value on the console.
 */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
bound|renew)
  echo "@@dhcp ip=$ip subnet=$subnet router=$router dns=$dns mtu=$mtu domain=$domain search=$search hostname=$hostname lease=$lease serverid=$serverid"
  ifconfig $interface $ip netmask $subnet
  [ -n "$mtu" ] && ip link set dev $interface mtu $mtu
  for r in $router; do ip route add default via $r dev $interface; done
  : > /etc/resolv.conf
  for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
  ;;
esac
exit 0
`;

/**
 * Builds the initramfs for one test.
 * @param kernel the kernel (for its modules)
 * @param script the test's shell script, run as /test.sh
 * @param timeoutS deadline of the script inside the VM
 * @param extra more files and directories (parents first, none under an existing path)
 * @returns the cpio archive
 */
export async function buildInitramfs(
  kernel: Kernel,
  script: string,
  timeoutS: number,
  extra: CpioEntry[] = [],
): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const entries: CpioEntry[] = [];
  for (const d of ["bin", "dev", "etc", "etc/udhcpc", "lib", "proc", "sys", "tmp", "root"]) {
    entries.push({ name: d, mode: S_IFDIR | 0o755 });
  }
  entries.push({ name: "dev/console", mode: S_IFCHR | 0o600, rdev: [5, 1] });
  entries.push({ name: "bin/busybox", mode: S_IFREG | 0o755, data: await Deno.readFile(BUSYBOX) });
  for (const m of MODULES) {
    const name = `lib/${m.slice(m.lastIndexOf("/") + 1)}.ko`;
    entries.push({ name, mode: S_IFREG | 0o644, data: await readModule(kernel.modules, m) });
  }
  const init = INIT.replace("$TEST_TIMEOUT", String(timeoutS));
  entries.push({ name: "init", mode: S_IFREG | 0o755, data: enc.encode(init) });
  entries.push({
    name: "etc/udhcpc/default.script",
    mode: S_IFREG | 0o755,
    data: enc.encode(UDHCPC_SCRIPT),
  });
  entries.push({ name: "test.sh", mode: S_IFREG | 0o755, data: enc.encode(script) });
  return cpioNewc([...entries, ...extra]);
}

/** Options of a VM. */
export interface VmOptions {
  /** the UNIX socket of passt (or orzo in passt mode) */
  socket: string;
  /** the test's shell script, run inside the VM as /test.sh (busybox sh) */
  script: string;
  /** the VM's MAC address (default 52:54:00:12:34:56, qemu's) */
  mac?: string;
  /** network namespace to run qemu in (ip netns exec), none by default */
  netns?: string;
  /** deadline of the whole VM in ms (default 150 s) */
  timeoutMs?: number;
  /** the netdev and device as libvirt passes them (-netdev JSON); default the plain argv form */
  libvirtJson?: boolean;
  /** more files for the initramfs (see buildInitramfs) */
  files?: CpioEntry[];
}

/** Carriage returns and terminal escapes (the firmware clears the screen). */
// deno-lint-ignore no-control-regex
const TERMINAL_NOISE = /\r|\x1b\[[0-9;?]*[a-zA-Z]/g;

/** A running VM. */
export class Vm {
  /** everything the VM printed so far */
  text = "";
  private child: Deno.ChildProcess;
  private waiters: (() => void)[] = [];
  private exited = false;
  private timer: ReturnType<typeof setTimeout>;
  private tmp: string;
  /** resolves when qemu has exited */
  readonly status: Promise<Deno.CommandStatus>;

  private constructor(child: Deno.ChildProcess, tmp: string, timeoutMs: number) {
    this.child = child;
    this.tmp = tmp;
    this.timer = setTimeout(() => this.kill(), timeoutMs);
    this.status = child.status.then((s) => {
      this.exited = true;
      clearTimeout(this.timer);
      this.wake();
      return s;
    });
    const dec = new TextDecoder();
    const drain = async (s: ReadableStream<Uint8Array>) => {
      try {
        for await (const b of s) {
          /* no carriage returns, no terminal escapes (the firmware clears the screen) */
          this.text += dec.decode(b, { stream: true }).replace(TERMINAL_NOISE, "");
          this.wake();
        }
      } catch { /* closed */ }
    };
    drain(child.stdout);
    drain(child.stderr);
  }

  /** qemu's PID (for its CPU time) */
  get pid(): number {
    return this.child.pid;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Boots a VM connected to the given socket.
   * @param kernel the kernel (findKernel())
   * @param opts see VmOptions
   * @returns the VM; call stop() in a finally block
   */
  static async boot(kernel: Kernel, opts: VmOptions): Promise<Vm> {
    const timeoutMs = opts.timeoutMs ?? 150_000;
    const tmp = await Deno.makeTempDir({ prefix: "orzo-vm-" });
    const initrd = `${tmp}/initrd.cpio`;
    await Deno.writeFile(
      initrd,
      await buildInitramfs(kernel, opts.script, Math.floor(timeoutMs / 1000) - 10, opts.files),
    );
    const mac = opts.mac ?? "52:54:00:12:34:56";
    const netdev = opts.libvirtJson
      ? [
        "-netdev",
        JSON.stringify({
          type: "stream",
          addr: { type: "unix", path: opts.socket },
          server: false,
          id: "hostnet0",
        }),
        "-device",
        JSON.stringify({
          driver: "virtio-net-pci",
          netdev: "hostnet0",
          id: "net0",
          mac,
          romfile: "",
        }),
      ]
      : [
        "-device",
        `virtio-net-pci,netdev=s,mac=${mac},romfile=`,
        "-netdev",
        `stream,id=s,server=off,addr.type=unix,addr.path=${opts.socket}`,
      ];
    const qemu = [
      "qemu-system-x86_64",
      "-accel",
      "tcg",
      "-m",
      "256",
      "-nographic",
      "-no-reboot",
      "-nodefaults",
      "-serial",
      "stdio",
      "-kernel",
      kernel.image,
      "-initrd",
      initrd,
      "-append",
      "console=ttyS0 panic=-1 quiet loglevel=3 ipv6.disable=0 net.ifnames=0",
      ...netdev,
    ];
    const argv = opts.netns !== undefined ? ["ip", "netns", "exec", opts.netns, ...qemu] : qemu;
    const child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new Vm(child, tmp, timeoutMs);
  }

  /**
   * Waits until the VM prints a whole line with the marker `@@KEY`.
   * @param key the marker's key
   * @param timeoutMs deadline
   * @returns the rest of the first such line (its value)
   */
  async waitFor(key: string, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const re = new RegExp(`@@${key}(?: ([^\\n]*))?\\n`);
    while (true) {
      const m = re.exec(this.text);
      if (m !== null) return m[1] ?? "";
      if (this.exited) throw new Error(`VM exited before @@${key}:\n${this.text}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no @@${key} from the VM in ${timeoutMs} ms:\n${this.text}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /**
   * Every value of the marker `@@KEY` printed so far.
   * @param key the marker's key
   * @returns the values, in order
   */
  values(key: string): string[] {
    const re = new RegExp(`@@${key}(?: ([^\\n]*))?\\n`, "g");
    return [...this.text.matchAll(re)].map((m) => m[1] ?? "");
  }

  private kill(): void {
    if (this.exited) return;
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
  }

  /**
   * Waits for the VM to power off (by its script's end) and cleans up.
   * @param timeoutMs how long to wait before killing qemu
   * @returns qemu's exit status
   */
  async stop(timeoutMs = 0): Promise<Deno.CommandStatus> {
    if (timeoutMs > 0 && !this.exited) {
      const t = setTimeout(() => this.kill(), timeoutMs);
      await this.status;
      clearTimeout(t);
    }
    this.kill();
    const s = await this.status;
    /* ORZO_VM_LOG=1: the console, to see what a failing test's VM did */
    if (Deno.env.get("ORZO_VM_LOG")) console.error(this.text);
    await Deno.remove(this.tmp, { recursive: true }).catch(() => {});
    return s;
  }
}

/**
 * Parses `k=v k=v` (as the udhcpc script prints them).
 * @param s the text
 * @returns the values by key
 */
export function kv(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/(\w+)=(\S*)/g)) out[m[1]!] = m[2]!;
  return out;
}
