/*
 * ninep-bench: small-operation latency and 1 MiB read throughput on a
 * mounted 9p file system, run inside an L2 Linux guest by
 * `coco-nested bench` (see docs/benchmarks.md).
 *
 *   ninep-bench LABEL SMALL APPEND BIG BIG_BYTES ITERS
 *
 * (a) ITERS preads of 64 bytes at offset 0 of SMALL (one open fd),
 * (b) ITERS appends of a 32-byte heartbeat line to APPEND (O_APPEND),
 * (c) 8 passes of BIG_BYTES read from BIG in 64 KiB preads.
 * Each line printed starts with "BENCH LABEL"; a failure prints
 * "BENCH LABEL FAIL <what>: <errno text>" and exits 1.
 * Built static with the host's gcc (no libc needed in the guest).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *label;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void fail(const char *what)
{
	printf("BENCH %s FAIL %s: %s\n", label, what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Prints median, mean, min and max of n samples (µs), sorting them. */
static void report(const char *what, double *s, long n)
{
	double sum = 0;
	for (long i = 0; i < n; i++)
		sum += s[i];
	qsort(s, n, sizeof *s, cmp);
	printf("BENCH %s %s us median=%.1f mean=%.1f min=%.1f max=%.1f n=%ld\n",
	       label, what, s[n / 2], sum / n, s[0], s[n - 1], n);
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: ninep-bench LABEL SMALL APPEND BIG BIG_BYTES ITERS\n");
		return 2;
	}
	label = argv[1];
	long big_bytes = atol(argv[5]), iters = atol(argv[6]);
	if (big_bytes <= 0 || iters <= 0) {
		fprintf(stderr, "BIG_BYTES and ITERS must be positive\n");
		return 2;
	}
	double *s = malloc(sizeof(double) * iters);
	/* Page-aligned, so that each of the one-page Treads Linux 6.12 sends for
	 * a direct read (both servers see the same) is a whole 4 KiB. */
	static char buf[65536] __attribute__((aligned(4096)));
	if (!s)
		fail("malloc");

	int fd = open(argv[2], O_RDONLY);
	if (fd < 0)
		fail("open small");
	for (long i = 0; i < iters; i++) {
		double t = now_us();
		if (pread(fd, buf, 64, 0) <= 0)
			fail("pread small");
		s[i] = now_us() - t;
	}
	close(fd);
	report("small-read", s, iters);

	fd = open(argv[3], O_WRONLY | O_APPEND);
	if (fd < 0)
		fail("open append");
	for (long i = 0; i < iters; i++) {
		char line[40];
		/* exactly 32 bytes: {"tick":NNNNNN,"ts_ms":NNNNNNN}\n */
		snprintf(line, sizeof line, "{\"tick\":%06ld,\"ts_ms\":%07ld}\n", i % 1000000,
			 (long)(now_us() / 1000) % 10000000);
		double t = now_us();
		if (write(fd, line, 32) != 32)
			fail("append");
		s[i] = now_us() - t;
	}
	close(fd);
	report("small-append", s, iters);

	fd = open(argv[4], O_RDONLY);
	if (fd < 0)
		fail("open big");
	double best = 0, total_us = 0;
	const int passes = 8;
	for (int p = 0; p < passes; p++) {
		double t = now_us();
		for (long off = 0; off < big_bytes;) {
			size_t want = big_bytes - off < (long)sizeof buf ? (size_t)(big_bytes - off) : sizeof buf;
			ssize_t n = pread(fd, buf, want, off);
			if (n <= 0) {
				if (n == 0)
					errno = ENODATA;
				fail("pread big");
			}
			off += n;
		}
		double us = now_us() - t;
		double mibps = (big_bytes / 1048576.0) / (us / 1e6);
		total_us += us;
		if (mibps > best)
			best = mibps;
	}
	close(fd);
	printf("BENCH %s read-%ldKiB MiB/s best=%.1f mean=%.1f passes=%d\n", label,
	       big_bytes / 1024, best, (passes * big_bytes / 1048576.0) / (total_us / 1e6), passes);
	printf("BENCH %s done\n", label);
	fflush(stdout);
	return 0;
}
