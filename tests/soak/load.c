/*
 * load.c - the soak test's load: a client that runs in the guest and an echo
 * server that runs in the remote namespace, both one thread around epoll, so
 * that the 2,000 new connections a second come from a few per cent of a CPU
 * and orzo, not the load generator, is what gets measured. soak.ts builds it
 * with gcc at run time.
 *
 *   load server ADDR PORT MAX_S
 *     PORT echoes until the peer closes; PORT+1 echoes CHURN_BYTES and then
 *     closes first (so that TIME_WAIT stays on the server, not on the guest's
 *     ports). Prints "listening"; exits after MAX_S seconds.
 *   load client ADDR PORT POOL RATE SECONDS BULK_MIB_S
 *     opens POOL connections and holds them (one checked byte each); then for
 *     SECONDS opens RATE connections a second to PORT+1 (CHURN_BYTES each way,
 *     checked, then the server's close awaited), streams a checked bulk
 *     transfer at BULK_MIB_S each way on one connection, and exchanges 64
 *     checked bytes on 100 held connections a second; then every held
 *     connection exchanges 16 checked bytes and closes. Prints a line a second
 *     and "result {...}"; exits 1 if a byte differed or a connection failed.
 *
 * Every byte sent is pattern(seed, offset), so every byte received can be
 * checked without keeping what was sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHURN_BYTES 1024
#define MAX_INFLIGHT 4000
#define CONN_TIMEOUT_S 10.0
#define MAX_FDS 65536

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint8_t pattern(uint32_t seed, uint64_t off)
{
	uint32_t x = seed * 2654435761u + (uint32_t)off * 40503u + (uint32_t)(off >> 32);

	x ^= x >> 15;
	x *= 2246822519u;
	return (uint8_t)(x >> 24);
}

static void raise_nofile(void)
{
	struct rlimit r;

	if (!getrlimit(RLIMIT_NOFILE, &r)) {
		r.rlim_cur = r.rlim_max > MAX_FDS ? MAX_FDS : r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

static int epfd;

static void watch(int fd, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };

	epoll_ctl(epfd, op, fd, &ev);
}

/* ---------------------------------------------------------------- server */

struct echo {
	int closing_after; /* bytes to echo before closing, 0: until EOF */
	uint64_t echoed;
	int plen, poff; /* unsent part of the last read */
	char pend[16384];
};

static struct echo *echoes[MAX_FDS];

static void echo_close(int fd)
{
	free(echoes[fd]);
	echoes[fd] = NULL;
	close(fd);
}

/* writes what is pending; 1 when all of it went */
static int echo_flush(int fd, struct echo *e)
{
	while (e->poff < e->plen) {
		ssize_t n = write(fd, e->pend + e->poff, e->plen - e->poff);

		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		e->poff += n;
		e->echoed += n;
	}
	e->plen = e->poff = 0;
	return 1;
}

static void echo_event(int fd)
{
	struct echo *e = echoes[fd];

	for (int rounds = 0; rounds < 16; rounds++) {
		int f = echo_flush(fd, e);

		if (f < 0) {
			echo_close(fd);
			return;
		}
		if (!f) {
			watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
			return;
		}
		if (e->closing_after && e->echoed >= (uint64_t)e->closing_after) {
			echo_close(fd);
			return;
		}
		ssize_t n = read(fd, e->pend, sizeof(e->pend));

		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			echo_close(fd);
			return;
		}
		if (n < 0) {
			watch(fd, EPOLLIN, EPOLL_CTL_MOD);
			return;
		}
		e->plen = n;
	}
	watch(fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
}

static int listen_on(const char *addr, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (s < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 4096))
		return -1;
	return s;
}

static int server(const char *addr, int port, int max_s)
{
	int l0 = listen_on(addr, port), l1 = listen_on(addr, port + 1);
	struct epoll_event evs[256];

	if (l0 < 0 || l1 < 0) {
		perror("load server: listen");
		return 1;
	}
	watch(l0, EPOLLIN, EPOLL_CTL_ADD);
	watch(l1, EPOLLIN, EPOLL_CTL_ADD);
	alarm(max_s);
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(epfd, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd != l0 && fd != l1) {
				if (echoes[fd])
					echo_event(fd);
				continue;
			}
			for (int k = 0; k < 64; k++) {
				int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);

				if (c < 0)
					break;
				if (c >= MAX_FDS || !(echoes[c] = calloc(1, sizeof(struct echo)))) {
					close(c);
					continue;
				}
				echoes[c]->closing_after = fd == l1 ? CHURN_BYTES : 0;
				watch(c, EPOLLIN, EPOLL_CTL_ADD);
			}
		}
	}
}

/* ---------------------------------------------------------------- client */

enum kind { POOL = 1, CHURN, BULK };

struct conn {
	enum kind kind;
	int connected;
	int idle; /* a held connection between exchanges */
	uint32_t seed;
	uint64_t sent, recvd, want; /* bytes of the current exchange */
	double started;
};

static struct conn conns[MAX_FDS];
static struct sockaddr_in echo_addr, churn_addr;
static uint32_t next_seed = 1;
static int pool_fds[MAX_FDS], pool_open, pool_target, inflight, pool_pending;
static int bulk_fd = -1, bulk_running, bulk_paused;
static double bulk_t0, bulk_rate;
static uint64_t churn_started, churn_ok, churn_fail, behind, pool_checks, bulk_checked;
static uint64_t mismatches, failures;
static char first_error[160];

static void fail(const char *what, int err)
{
	failures++;
	if (!first_error[0])
		snprintf(first_error, sizeof(first_error), "%s: %s", what, strerror(err));
}

static void conn_close(int fd)
{
	if (conns[fd].kind == CHURN || (conns[fd].kind == POOL && !conns[fd].idle))
		inflight--;
	if (conns[fd].kind == POOL && !conns[fd].connected)
		pool_pending--;
	memset(&conns[fd], 0, sizeof(conns[fd]));
	close(fd);
}

static void exchange(int fd, uint64_t bytes)
{
	struct conn *c = &conns[fd];

	c->seed = next_seed++;
	c->sent = c->recvd = 0;
	c->want = bytes;
	c->idle = 0;
	c->started = now();
	watch(fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
}

static int open_conn(enum kind kind, const struct sockaddr_in *sa)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0) {
		fail("socket", errno);
		return -1;
	}
	if (fd >= MAX_FDS) {
		close(fd);
		fail("socket", EMFILE);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) && errno != EINPROGRESS) {
		fail("connect", errno);
		close(fd);
		return -1;
	}
	conns[fd] = (struct conn){ .kind = kind, .started = now() };
	watch(fd, EPOLLOUT, EPOLL_CTL_ADD);
	return fd;
}

/* an exchange has all its bytes back */
static void exchange_done(int fd)
{
	struct conn *c = &conns[fd];

	if (c->kind == POOL) {
		c->idle = 1;
		inflight--;
		pool_checks += c->want > 1;
		watch(fd, EPOLLIN, EPOLL_CTL_MOD);
		return;
	}
	if (c->kind == CHURN) {
		/* the server closes: wait for EOF */
		c->want = 0;
		watch(fd, EPOLLIN, EPOLL_CTL_MOD);
	}
}

static void client_event(int fd, uint32_t events)
{
	struct conn *c = &conns[fd];
	uint8_t buf[65536];

	if (!c->kind)
		return;
	if (!c->connected) {
		int err = 0;
		socklen_t sl = sizeof(err);

		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		if (err) {
			if (c->kind == CHURN)
				churn_fail++;
			fail(c->kind == CHURN ? "churn connect" : "connect", err);
			conn_close(fd);
			return;
		}
		c->connected = 1;
		if (c->kind == POOL) {
			pool_pending--;
			pool_fds[pool_open++] = fd;
			exchange(fd, 1);
		} else if (c->kind == CHURN) {
			exchange(fd, CHURN_BYTES);
		} else {
			exchange(fd, UINT64_MAX);
			bulk_t0 = now();
		}
		return;
	}
	if (events & EPOLLOUT) {
		uint64_t limit = c->want;

		if (c->kind == BULK) {
			limit = bulk_running ? (uint64_t)((now() - bulk_t0) * bulk_rate) : c->sent;
			if (limit > c->recvd + (4 << 20))
				limit = c->recvd + (4 << 20);
		}
		while (c->sent < limit) {
			size_t n = limit - c->sent > sizeof(buf) ? sizeof(buf) : limit - c->sent;

			for (size_t i = 0; i < n; i++)
				buf[i] = pattern(c->seed, c->sent + i);
			ssize_t w = write(fd, buf, n);

			if (w < 0) {
				if (errno == EAGAIN)
					break;
				if (c->kind == CHURN)
					churn_fail++;
				fail(c->kind == CHURN ? "churn write" : "write", errno);
				conn_close(fd);
				return;
			}
			c->sent += w;
		}
		if (c->sent >= c->want && c->kind != BULK)
			watch(fd, EPOLLIN, EPOLL_CTL_MOD);
		if (c->kind == BULK && c->sent >= limit) {
			/* ahead of the rate or of the window: churn_tick wakes it */
			bulk_paused = 1;
			watch(fd, EPOLLIN, EPOLL_CTL_MOD);
		}
	}
	for (int rounds = 0; rounds < 8; rounds++) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r < 0) {
			if (errno == EAGAIN)
				return;
			if (c->kind == CHURN)
				churn_fail++;
			fail(c->kind == CHURN ? "churn read" : "read", errno);
			conn_close(fd);
			return;
		}
		if (r == 0) {
			if (c->kind == CHURN && c->want == 0) {
				churn_ok++;
			} else {
				if (c->kind == CHURN)
					churn_fail++;
				fail(c->kind == CHURN ? "churn early close" : "early close", EPIPE);
			}
			conn_close(fd);
			return;
		}
		if (c->recvd + r > c->sent) {
			mismatches++;
			fail("more bytes back than sent", EPROTO);
			conn_close(fd);
			return;
		}
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != pattern(c->seed, c->recvd + i)) {
				mismatches++;
				if (c->kind == CHURN)
					churn_fail++;
				fail("echo differs", EPROTO);
				conn_close(fd);
				return;
			}
		}
		c->recvd += r;
		if (c->kind == BULK)
			bulk_checked += r;
		if (c->kind != BULK && c->want && c->recvd == c->want) {
			exchange_done(fd);
			return;
		}
	}
}

/* connections that took longer than CONN_TIMEOUT_S fail */
static void sweep(double t)
{
	for (int fd = 0; fd < MAX_FDS; fd++) {
		struct conn *c = &conns[fd];

		if (!c->kind || c->idle || c->kind == BULK || t - c->started < CONN_TIMEOUT_S)
			continue;
		if (c->kind == CHURN)
			churn_fail++;
		fail(c->kind == CHURN ? "churn" : "pool", ETIMEDOUT);
		conn_close(fd);
	}
}

static void loop_for(double until, int (*done)(void), void (*tick)(double))
{
	struct epoll_event evs[512];
	double last_sweep = now();

	for (;;) {
		double t = now();

		if (t >= until || (done && done()))
			return;
		if (tick)
			tick(t);
		if (t - last_sweep >= 1.0) {
			sweep(t);
			last_sweep = t;
		}
		int n = epoll_wait(epfd, evs, 512, 1);

		for (int i = 0; i < n; i++)
			client_event(evs[i].data.fd, evs[i].events);
	}
}

static int pool_done(void)
{
	return pool_open + failures >= (uint64_t)pool_target && inflight == 0 && !pool_pending;
}

static uint64_t pool_started;
static void pool_tick(double t)
{
	(void)t;
	while (pool_started < (uint64_t)pool_target && inflight < 256) {
		if (open_conn(POOL, &echo_addr) >= 0) {
			inflight++;
			pool_pending++;
		}
		pool_started++;
	}
}

static double churn_t0, churn_rate, last_print;
static void churn_tick(double t)
{
	uint64_t target = (uint64_t)((t - churn_t0) * churn_rate);
	static double next_check;

	while (churn_started < target) {
		churn_started++;
		if (inflight >= MAX_INFLIGHT) {
			behind++;
			continue;
		}
		if (open_conn(CHURN, &churn_addr) >= 0)
			inflight++;
		else
			churn_fail++;
	}
	if (bulk_paused && bulk_running && conns[bulk_fd].kind == BULK) {
		struct conn *b = &conns[bulk_fd];

		if ((t - bulk_t0) * bulk_rate > b->sent + 65536 && b->sent < b->recvd + (4 << 20)) {
			bulk_paused = 0;
			watch(bulk_fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
		}
	}
	if (t >= next_check && pool_open > 0) {
		/* 100 held connections a second, one every 10 ms */
		int fd = pool_fds[rand() % pool_open];

		if (conns[fd].kind == POOL && conns[fd].idle) {
			inflight++;
			exchange(fd, 64);
		}
		next_check = t + 0.01;
	}
	if (t - last_print >= 1.0) {
		printf("t=%.0fs churn ok %lu failed %lu behind %lu inflight %d, bulk %lu MiB, "
		       "pool checks %lu\n", t - churn_t0, churn_ok, churn_fail, behind, inflight,
		       bulk_checked >> 20, pool_checks);
		fflush(stdout);
		last_print = t;
	}
}

static int drained(void)
{
	int bulk_idle = bulk_fd < 0 || !conns[bulk_fd].kind ||
			conns[bulk_fd].recvd == conns[bulk_fd].sent;

	return inflight == 0 && bulk_idle;
}

static int all_closed(void)
{
	return inflight == 0;
}

static int client(const char *host, int port, int pool, int rate, int secs, double bulk_mib)
{
	double t0 = now();
	int held;

	echo_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, host, &echo_addr.sin_addr) != 1)
		return 2;
	churn_addr = echo_addr;
	churn_addr.sin_port = htons(port + 1);

	/* phase 1: the pool */
	pool_target = pool;
	loop_for(t0 + 120, pool_done, pool_tick);
	printf("pool %d open in %.1f s\n", pool_open, now() - t0);
	fflush(stdout);

	/* phase 2: churn, bulk, pool checks */
	bulk_rate = bulk_mib * 1048576;
	if (bulk_rate > 0) {
		bulk_fd = open_conn(BULK, &echo_addr);
		bulk_running = 1;
	}
	churn_t0 = last_print = now();
	churn_rate = rate;
	loop_for(churn_t0 + secs, NULL, churn_tick);
	bulk_running = 0;
	if (bulk_fd >= 0 && conns[bulk_fd].kind)
		watch(bulk_fd, EPOLLIN, EPOLL_CTL_MOD);
	loop_for(now() + 30, drained, NULL);

	/* phase 3: every held connection checked once more, then closed */
	held = 0;
	for (int i = 0; i < pool_open; i++) {
		int fd = pool_fds[i];

		if (conns[fd].kind == POOL && conns[fd].idle) {
			inflight++;
			exchange(fd, 16);
			held++;
		}
	}
	loop_for(now() + 60, all_closed, NULL);
	for (int i = 0; i < pool_open; i++) {
		int fd = pool_fds[i];

		if (conns[fd].kind == POOL) {
			if (!conns[fd].idle)
				fail("pool close", ETIMEDOUT);
			conn_close(fd);
		}
	}
	if (bulk_fd >= 0 && conns[bulk_fd].kind)
		conn_close(bulk_fd);
	printf("result {\"pool\":%d,\"held_at_end\":%d,\"churnOk\":%lu,\"churnFail\":%lu,"
	       "\"behind\":%lu,\"churnPerSecond\":%.0f,\"poolChecks\":%lu,\"bulkMiB\":%lu,"
	       "\"mismatches\":%lu,\"failures\":%lu,\"firstError\":\"%s\"}\n",
	       pool_open, held, churn_ok, churn_fail, behind, churn_ok / (double)secs, pool_checks,
	       bulk_checked >> 20, mismatches, failures, first_error);
	return failures || mismatches || pool_open != pool || held != pool || behind ? 1 : 0;
}

int main(int argc, char **argv)
{
	raise_nofile();
	epfd = epoll_create1(0);
	if (argc == 5 && !strcmp(argv[1], "server"))
		return server(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 8 && !strcmp(argv[1], "client"))
		return client(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]),
			      atof(argv[7]));
	fprintf(stderr, "usage: load server ADDR PORT MAX_S | "
			"load client ADDR PORT POOL RATE SECONDS BULK_MIB_S\n");
	return 2;
}
