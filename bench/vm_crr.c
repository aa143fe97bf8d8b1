/*
 * vm_crr.c - TCP connection rate for bench/vm.ts: one process that opens many
 * short connections (a shell loop of nc under TCG would measure fork and exec
 * inside the VM, not the network). Built at run time with `gcc -static` and
 * copied into the VM's initramfs; the same binary runs in the remote namespace.
 *
 *   vm_crr client ADDR PORT COUNT MAX_MS [stop]
 *     up to COUNT times, at most MAX_MS: connect, send 1 byte, read 1 byte,
 *     close. Every call has a 1 s deadline; a connection that fails is counted
 *     and the loop goes on, up to MAX_FAILED failures. Prints "crr DONE SECONDS
 *     FAILED LAST_ERROR" (CLOCK_MONOTONIC). With "stop", then sends 'q', which
 *     ends the server.
 *   vm_crr server ADDR PORT MAX_S
 *     answers each connection's byte with one byte and closes; exits on 'q'
 *     or after MAX_S seconds (alarm).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_FAILED 20

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int addr_of(const char *host, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void deadline(int s)
{
	struct timeval tv = { 1, 0 };

	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* one connection: connect, send c, read one byte (unless c is 'q'), close */
static int once(const struct sockaddr_in *sa, char c)
{
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);
	char r;

	if (s < 0)
		return -1;
	deadline(s);
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    write(s, &c, 1) != 1 || (c != 'q' && read(s, &r, 1) != 1)) {
		int e = errno;

		close(s);
		errno = e ? e : EPIPE;
		return -1;
	}
	close(s);
	return 0;
}

static int client(const struct sockaddr_in *sa, long count, long max_ms, int stop)
{
	double t0 = now(), end = t0 + max_ms / 1000.0;
	long n = 0, failed = 0;
	const char *last = "-";

	while (n < count && now() < end && failed < MAX_FAILED) {
		if (once(sa, 'x') < 0) {
			last = strerror(errno);
			failed++;
			continue;
		}
		n++;
	}
	printf("crr %ld %.6f %ld %s\n", n, now() - t0, failed, last);
	fflush(stdout);
	if (stop && once(sa, 'q') < 0) {
		printf("crr-error stop %s\n", strerror(errno));
		return 2;
	}
	return 0;
}

static int server(const struct sockaddr_in *sa, unsigned max_s)
{
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	alarm(max_s);
	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(s, 128) < 0) {
		printf("crr-error listen %s\n", strerror(errno));
		return 2;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int c = accept(s, NULL, NULL);
		char b;

		if (c < 0)
			continue;
		deadline(c);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (read(c, &b, 1) == 1) {
			if (b == 'q')
				return 0;
			(void)!write(c, &b, 1);
		}
		close(c);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;

	if (argc >= 6 && !strcmp(argv[1], "client") && !addr_of(argv[2], argv[3], &sa))
		return client(&sa, atol(argv[4]), atol(argv[5]),
			      argc > 6 && !strcmp(argv[6], "stop"));
	if (argc == 5 && !strcmp(argv[1], "server") && !addr_of(argv[2], argv[3], &sa))
		return server(&sa, (unsigned)atoi(argv[4]));
	fprintf(stderr, "usage: vm_crr client ADDR PORT COUNT MAX_MS [stop] | "
			"vm_crr server ADDR PORT MAX_S\n");
	return 1;
}
