/**
 * layout.ts - x86_64 struct layouts and kernel constants used through FFI.
 *
 * Offsets are in bytes; every multi-byte field is little-endian unless the
 * name says network order (NBO).
 *
 * @module
 */

/** Address families and socket types. */
export const AF_UNSPEC = 0;
/** AF_UNIX */
export const AF_UNIX = 1;
/** AF_INET */
export const AF_INET = 2;
/** AF_INET6 */
export const AF_INET6 = 10;
/** AF_NETLINK */
export const AF_NETLINK = 16;
/** SOCK_STREAM */
export const SOCK_STREAM = 1;
/** SOCK_DGRAM */
export const SOCK_DGRAM = 2;
/** SOCK_RAW */
export const SOCK_RAW = 3;
/** SOCK_NONBLOCK */
export const SOCK_NONBLOCK = 0o4000;
/** SOCK_CLOEXEC */
export const SOCK_CLOEXEC = 0o2000000;

/** open(2) flags. */
export const O_RDONLY = 0;
/** O_WRONLY */
export const O_WRONLY = 1;
/** O_RDWR */
export const O_RDWR = 2;
/** O_CREAT */
export const O_CREAT = 0o100;
/** O_EXCL */
export const O_EXCL = 0o200;
/** O_TRUNC */
export const O_TRUNC = 0o1000;
/** O_APPEND */
export const O_APPEND = 0o2000;
/** O_NONBLOCK */
export const O_NONBLOCK = 0o4000;
/** O_CLOEXEC */
export const O_CLOEXEC = 0o2000000;

/** fcntl(2) commands. */
export const F_GETFD = 1;
/** F_SETFD */
export const F_SETFD = 2;
/** F_GETFL */
export const F_GETFL = 3;
/** F_SETFL */
export const F_SETFL = 4;
/** FD_CLOEXEC */
export const FD_CLOEXEC = 1;

/** Namespace clone flags. */
export const CLONE_NEWNS = 0x00020000;
/** CLONE_NEWUSER */
export const CLONE_NEWUSER = 0x10000000;
/** CLONE_NEWNET */
export const CLONE_NEWNET = 0x40000000;

/** epoll. */
export const EPOLL_CTL_ADD = 1;
/** EPOLL_CTL_DEL */
export const EPOLL_CTL_DEL = 2;
/** EPOLL_CTL_MOD */
export const EPOLL_CTL_MOD = 3;
/** EPOLLIN */
export const EPOLLIN = 0x001;
/** EPOLLPRI */
export const EPOLLPRI = 0x002;
/** EPOLLOUT */
export const EPOLLOUT = 0x004;
/** EPOLLERR */
export const EPOLLERR = 0x008;
/** EPOLLHUP */
export const EPOLLHUP = 0x010;
/** EPOLLRDHUP */
export const EPOLLRDHUP = 0x2000;
/** EPOLLET */
export const EPOLLET = 0x80000000;
/** EPOLL_CLOEXEC */
export const EPOLL_CLOEXEC = 0o2000000;
/** struct epoll_event is packed on x86_64: u32 events @0, u64 data @4. */
export const EPOLL_EVENT_SIZE = 12;

/** timerfd. */
export const CLOCK_MONOTONIC = 1;
/** TFD_NONBLOCK */
export const TFD_NONBLOCK = 0o4000;
/** TFD_CLOEXEC */
export const TFD_CLOEXEC = 0o2000000;
/** struct itimerspec: interval {sec, nsec} @0, value {sec, nsec} @16. */
export const ITIMERSPEC_SIZE = 32;

/** struct sockaddr_in: family u16 @0, port NBO @2, addr[4] @4. */
export const SOCKADDR_IN_SIZE = 16;
/** struct sockaddr_in6: family @0, port NBO @2, flowinfo @4, addr[16] @8, scope_id @24. */
export const SOCKADDR_IN6_SIZE = 28;
/** struct sockaddr_storage */
export const SOCKADDR_STORAGE_SIZE = 128;
/** struct sockaddr_un: family @0, path[108] @2. */
export const SOCKADDR_UN_SIZE = 110;
/** struct iovec: base ptr @0, len @8. */
export const IOVEC_SIZE = 16;
/** struct msghdr: name @0, namelen @8, iov @16, iovlen @24, control @32, controllen @40, flags @48. */
export const MSGHDR_SIZE = 56;
/** struct mmsghdr: msghdr @0, msg_len u32 @56, padded to 64. */
export const MMSGHDR_SIZE = 64;
/** struct ifreq: name[16] @0, union @16. */
export const IFREQ_SIZE = 40;
/** IFNAMSIZ */
export const IFNAMSIZ = 16;

/** tun/tap ioctls and flags. */
export const TUNSETIFF = 0x400454ca;
/** TUNSETVNETHDRSZ */
export const TUNSETVNETHDRSZ = 0x400454d8;
/** TUNSETOFFLOAD */
export const TUNSETOFFLOAD = 0x400454d0;
/** IFF_TAP */
export const IFF_TAP = 0x0002;
/** IFF_NO_PI */
export const IFF_NO_PI = 0x1000;
/** IFF_VNET_HDR */
export const IFF_VNET_HDR = 0x4000;
/** SIOCGIFHWADDR */
export const SIOCGIFHWADDR = 0x8927;
/** SIOCSIFHWADDR */
export const SIOCSIFHWADDR = 0x8924;

/** Socket options. */
export const SOL_SOCKET = 1;
/** SO_REUSEADDR */
export const SO_REUSEADDR = 2;
/** SO_ERROR */
export const SO_ERROR = 4;
/** SO_SNDBUF */
export const SO_SNDBUF = 7;
/** SO_RCVBUF */
export const SO_RCVBUF = 8;
/** SO_SNDBUFFORCE: SO_SNDBUF beyond wmem_max (CAP_NET_ADMIN) */
export const SO_SNDBUFFORCE = 32;
/** SO_RCVBUFFORCE: SO_RCVBUF beyond rmem_max (CAP_NET_ADMIN) */
export const SO_RCVBUFFORCE = 33;
/** SO_BINDTODEVICE */
export const SO_BINDTODEVICE = 25;
export {
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from "../wire/ip_proto.ts";
/** IPV6_V6ONLY */
export const IPV6_V6ONLY = 26;
/** IP_FREEBIND */
export const IP_FREEBIND = 15;
/** TCP_NODELAY */
export const TCP_NODELAY = 1;
/** TCP_MAXSEG */
export const TCP_MAXSEG = 2;
/** TCP_INFO */
export const TCP_INFO = 11;
/** TCP_QUICKACK */
export const TCP_QUICKACK = 12;
/** MSG_PEEK */
export const MSG_PEEK = 0x2;
/** MSG_TRUNC */
export const MSG_TRUNC = 0x20;
/** MSG_DONTWAIT */
export const MSG_DONTWAIT = 0x40;
/** MSG_NOSIGNAL */
export const MSG_NOSIGNAL = 0x4000;
/** SHUT_RD */
export const SHUT_RD = 0;
/** SHUT_WR */
export const SHUT_WR = 1;
/** SHUT_RDWR */
export const SHUT_RDWR = 2;

/** struct tcp_info offsets used by orzo. */
export const TCP_INFO_SIZE = 232;
/** tcpi_state u8 */
export const TCPI_STATE = 0;
/** tcpi_snd_wscale:4 | tcpi_rcv_wscale:4 */
export const TCPI_WSCALE = 6;
/** tcpi_snd_mss u32 */
export const TCPI_SND_MSS = 16;
/** tcpi_rcv_mss u32 */
export const TCPI_RCV_MSS = 20;
/** tcpi_rtt u32 (us) */
export const TCPI_RTT = 68;
/** tcpi_snd_cwnd u32 */
export const TCPI_SND_CWND = 80;
/** tcpi_bytes_acked u64 */
export const TCPI_BYTES_ACKED = 120;
/** tcpi_min_rtt u32 */
export const TCPI_MIN_RTT = 152;
/** tcpi_snd_wnd u32 (Linux 6.2+) */
export const TCPI_SND_WND = 228;

/** Signals. */
export const SIGKILL = 9;
/** SIGUSR1 */
export const SIGUSR1 = 10;
/** SIGTERM */
export const SIGTERM = 15;
/** SIGINT */
export const SIGINT = 2;
/** SIGHUP */
export const SIGHUP = 1;
/** SIGCHLD */
export const SIGCHLD = 17;

/** Syscall numbers (x86_64). */
export const SYS_PIDFD_OPEN = 434;
/** pidfd_send_signal */
export const SYS_PIDFD_SEND_SIGNAL = 424;

/** inotify. */
export const IN_DELETE = 0x200;
/** IN_DELETE_SELF */
export const IN_DELETE_SELF = 0x400;
/** IN_MOVED_FROM */
export const IN_MOVED_FROM = 0x40;
/** IN_NONBLOCK */
export const IN_NONBLOCK = 0o4000;
/** IN_CLOEXEC */
export const IN_CLOEXEC = 0o2000000;

/** SO_PEEK_OFF: offset for MSG_PEEK reads (TCP since Linux 6.10). */
export const SO_PEEK_OFF = 42;
/** SO_COOKIE: a socket's 64-bit identity, unique while the system runs */
export const SO_COOKIE = 57;
/** SO_LINGER */
export const SO_LINGER = 13;
/** SIOCOUTQ (TIOCOUTQ): bytes not yet acknowledged by the peer. */
export const SIOCOUTQ = 0x5411;
/** SIOCINQ (FIONREAD): bytes readable. */
export const SIOCINQ = 0x541b;
