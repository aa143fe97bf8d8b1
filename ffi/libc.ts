/**
 * libc.ts - the one libc symbol table of orzo.
 *
 * Every system call orzo makes goes through these bindings (FFI-NOTES.md):
 * hot signatures use only i32/u32/pointer/buffer so that they stay on V8's
 * fast path; `size_t` lengths are declared `u32` and `ssize_t` results `i32`.
 * Setup-only calls (ioctl, syscall) may use 64-bit types.
 *
 * @module
 */

/** The symbol table, with the C prototype beside each entry. */
export const LIBC_SYMBOLS = {
  /* int *__errno_location(void) */
  __errno_location: { parameters: [], result: "pointer" },

  /* int socket(int domain, int type, int protocol) */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /* int socketpair(int domain, int type, int protocol, int sv[2]) */
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  /* int bind(int fd, const struct sockaddr *addr, socklen_t len) */
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /* int listen(int fd, int backlog) */
  listen: { parameters: ["i32", "i32"], result: "i32" },
  /* int connect(int fd, const struct sockaddr *addr, socklen_t len) */
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /* int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) */
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  /* int getsockname(int fd, struct sockaddr *addr, socklen_t *len) */
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  /* int getpeername(int fd, struct sockaddr *addr, socklen_t *len) */
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  /* int setsockopt(int fd, int level, int name, const void *val, socklen_t len) */
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  /* int getsockopt(int fd, int level, int name, void *val, socklen_t *len) */
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  /* int shutdown(int fd, int how) */
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  /* int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },

  /* ssize_t read(int fd, void *buf, size_t n) */
  read: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /* ssize_t write(int fd, const void *buf, size_t n) */
  write: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /* ssize_t readv(int fd, const struct iovec *iov, int cnt) */
  readv: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /* ssize_t writev(int fd, const struct iovec *iov, int cnt) */
  writev: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /* ssize_t recv(int fd, void *buf, size_t n, int flags) */
  recv: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  /* ssize_t send(int fd, const void *buf, size_t n, int flags) */
  send: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  /* ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *l) */
  recvfrom: {
    parameters: ["i32", "buffer", "u32", "i32", "buffer", "buffer"],
    result: "i32",
  },
  /* ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t l) */
  sendto: { parameters: ["i32", "buffer", "u32", "i32", "buffer", "u32"], result: "i32" },
  /* ssize_t recvmsg(int fd, struct msghdr *msg, int flags) */
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /* ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) */
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /* int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *t) */
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  /* int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags) */
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },

  /* int open(const char *path, int flags, mode_t mode) */
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  /* int fcntl(int fd, int cmd, int arg) */
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /* int ioctl(int fd, unsigned long req, void *arg) */
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /* int ioctl(int fd, unsigned int req, void *arg): hot path, request below 2^32 */
  ioctl_u32: { name: "ioctl", parameters: ["i32", "u32", "buffer"], result: "i32" },
  /* int ioctl(int fd, unsigned long req, unsigned long arg) */
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  /* int pipe2(int fds[2], int flags) */
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  /* ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t n, unsigned flags) */
  splice: { parameters: ["i32", "pointer", "i32", "pointer", "u32", "u32"], result: "i32" },
  /* int getrlimit(int resource, struct rlimit *rl) */
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  /* int dup(int fd) */
  dup: { parameters: ["i32"], result: "i32" },
  /* int dup2(int fd, int fd2) */
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  /* int unlink(const char *path) */
  unlink: { parameters: ["buffer"], result: "i32" },
  /* int chown(const char *path, uid_t owner, gid_t group) */
  chown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  /* mode_t umask(mode_t mask) */
  umask: { parameters: ["u32"], result: "u32" },
  /* int eventfd(unsigned int initval, int flags) */
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /* int fchown(int fd, uid_t owner, gid_t group) */
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  /* off_t lseek(int fd, off_t off, int whence) */
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  /* int ftruncate(int fd, off_t len) */
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  /* ssize_t readlink(const char *path, char *buf, size_t n) */
  readlink: { parameters: ["buffer", "buffer", "u32"], result: "i32" },
  /* int access(const char *path, int mode) */
  access: { parameters: ["buffer", "i32"], result: "i32" },

  /* int epoll_create1(int flags) */
  epoll_create1: { parameters: ["i32"], result: "i32" },
  /* int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev) */
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  /* int epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout) */
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  /* int timerfd_create(int clock, int flags) */
  timerfd_create: { parameters: ["i32", "i32"], result: "i32" },
  /* int timerfd_settime(int fd, int flags, const struct itimerspec *n, struct itimerspec *o) */
  timerfd_settime: { parameters: ["i32", "i32", "buffer", "buffer"], result: "i32" },
  /* int timerfd_gettime(int fd, struct itimerspec *cur) */
  timerfd_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  /* int inotify_init1(int flags) */
  inotify_init1: { parameters: ["i32"], result: "i32" },
  /* int inotify_add_watch(int fd, const char *path, uint32_t mask) */
  inotify_add_watch: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /* int clock_gettime(clockid_t clk, struct timespec *ts) */
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },

  /* int setns(int fd, int nstype) */
  setns: { parameters: ["i32", "i32"], result: "i32" },
  /* int unshare(int flags) */
  unshare: { parameters: ["i32"], result: "i32" },
  /* pid_t getpid(void) */
  getpid: { parameters: [], result: "i32" },
  /* getpid() on one of Deno's blocking threads: awaiting it parks the main
   * thread's runtime, which then takes pending signals (loop.ts) */
  getpid_async: { name: "getpid", parameters: [], result: "i32", nonblocking: true },
  /* int setpriority(int which, id_t who, int prio): a thread's nice value (set-up only) */
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
  /* pid_t gettid(void) */
  gettid: { parameters: [], result: "i32" },
  /* uid_t getuid(void) */
  getuid: { parameters: [], result: "u32" },
  /* uid_t geteuid(void) */
  geteuid: { parameters: [], result: "u32" },
  /* gid_t getgid(void) */
  getgid: { parameters: [], result: "u32" },
  /* gid_t getegid(void) */
  getegid: { parameters: [], result: "u32" },
  /* int kill(pid_t pid, int sig) */
  kill: { parameters: ["i32", "i32"], result: "i32" },
  /* pid_t waitpid(pid_t pid, int *status, int options) */
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  /* int setenv(const char *name, const char *value, int overwrite) */
  setenv: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  /* int execvp(const char *file, char *const argv[]) */
  execvp: { parameters: ["buffer", "buffer"], result: "i32" },
  /* pid_t setsid(void) */
  setsid: { parameters: [], result: "i32" },
  /* char *getenv(const char *name) */
  getenv: { parameters: ["buffer"], result: "pointer" },
  /* int gethostname(char *name, size_t len) */
  gethostname: { parameters: ["buffer", "u32"], result: "i32" },
  /* unsigned if_nametoindex(const char *name) */
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  /* char *if_indextoname(unsigned idx, char *buf) */
  if_indextoname: { parameters: ["u32", "buffer"], result: "pointer" },
  /* long syscall(long nr, long a, long b) : pidfd_open, pidfd_send_signal */
  syscall: { parameters: ["i64", "i64", "i64"], result: "i64" },
  /* long syscall(long nr, long a, long b, long c) : seccomp, getdents64 (set-up only) */
  syscall4: { name: "syscall", parameters: ["i64", "i64", "i64", "i64"], result: "i64" },

  /* int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) */
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  /* int capget(cap_user_header_t hdr, cap_user_data_t data) */
  capget: { parameters: ["buffer", "buffer"], result: "i32" },
  /* int capset(cap_user_header_t hdr, const cap_user_data_t data) */
  capset: { parameters: ["buffer", "buffer"], result: "i32" },
  /* int setgroups(size_t n, const gid_t *list): every thread (glibc's SIGSETXID) */
  setgroups: { parameters: ["u32", "pointer"], result: "i32" },
  /* int setgid(gid_t gid): every thread (glibc's SIGSETXID) */
  setgid: { parameters: ["u32"], result: "i32" },
  /* int setuid(uid_t uid): every thread (glibc's SIGSETXID) */
  setuid: { parameters: ["u32"], result: "i32" },
  /* struct passwd *getpwnam(const char *name) */
  getpwnam: { parameters: ["buffer"], result: "pointer" },
  /* struct group *getgrnam(const char *name) */
  getgrnam: { parameters: ["buffer"], result: "pointer" },

  /* int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
   *                  const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) */
  posix_spawnp: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"], /* envp: environ */
    result: "i32",
  },
  /* int posix_spawn_file_actions_init(posix_spawn_file_actions_t *fa) */
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  /* int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *fa, int fd, int newfd) */
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  /* int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *fa, int from) */
  posix_spawn_file_actions_addclosefrom_np: { parameters: ["buffer", "i32"], result: "i32" },
  /* int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa) */
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  /* int posix_spawnattr_init(posix_spawnattr_t *a) */
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  /* int posix_spawnattr_setflags(posix_spawnattr_t *a, short flags) */
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  /* int posix_spawnattr_setsigdefault(posix_spawnattr_t *a, const sigset_t *s) */
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  /* int posix_spawnattr_setsigmask(posix_spawnattr_t *a, const sigset_t *s) */
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  /* int posix_spawnattr_destroy(posix_spawnattr_t *a) */
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened libc: `libc.symbols.read(...)`. */
export const libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> = Deno.dlopen(
  "libc.so.6",
  LIBC_SYMBOLS,
);
