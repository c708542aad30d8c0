/* h2load_bodies.c: an LD_PRELOAD shim that gives every h2load request a fresh body.
 *
 * h2load posts the same `-d FILE` for every request: it reads the file with
 * pread(fd, buf, 16384, 0) once per request. A Decide with a repeated
 * request_id is an idempotent replay, not a decision, so a benchmark needs a
 * new request id per call (and a customer drawn from a population). Loaded
 * with LD_PRELOAD, this shim answers those reads instead:
 *
 *   H2LOAD_BODIES=PATH   N gRPC-framed requests, all of the same length L,
 *                        back to back (the `-d` file is the first of them, so
 *                        h2load's content-length is L)
 *   H2LOAD_BODY_LEN=L    the length of each
 *   H2LOAD_SEQ_AT=K      offset of 16 bytes in every body that the shim
 *                        overwrites with a hex sequence number (inside the
 *                        request_id), so no request id repeats in a run
 *   H2LOAD_SEQ_START=S   the first sequence number (decimal; default 0): each
 *                        run starts at a fresh one, or a run would replay the
 *                        request ids of the run before it on the same server
 *                        (idempotent replays, far cheaper than decisions)
 *
 * A read at offset 0 of the `-d` file takes the next body (round robin over
 * the N, an atomic counter across h2load's threads) and stamps the sequence
 * number into its copy. Every other read goes to the real pread.
 * benchmarks/grpc_bench.py builds it (gcc -shared) and writes the bodies.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static ssize_t (*real_pread)(int, void *, size_t, off_t);
static const unsigned char *bodies;
static size_t body_len, body_count, seq_at;
static int data_fd = -2; /* -2: not identified yet; -1: this is not a run with bodies */
static uint64_t next_body;

static int is_data_fd(int fd) {
    if (data_fd != -2)
        return fd == data_fd;
    const char *path = getenv("H2LOAD_BODIES");
    const char *len = getenv("H2LOAD_BODY_LEN");
    const char *at = getenv("H2LOAD_SEQ_AT");
    struct stat st, fst;
    if (!path || !len || !at || fstat(fd, &fst) != 0 || (size_t)fst.st_size != strtoul(len, 0, 10))
        return 0; /* not the data file (or no bodies): look again on the next read */
    int bfd = open(path, O_RDONLY);
    if (bfd < 0 || fstat(bfd, &st) != 0) {
        perror("h2load_bodies: H2LOAD_BODIES");
        exit(2);
    }
    body_len = strtoul(len, 0, 10);
    seq_at = strtoul(at, 0, 10);
    const char *start = getenv("H2LOAD_SEQ_START");
    if (start)
        next_body = strtoull(start, 0, 10);
    body_count = (size_t)st.st_size / body_len;
    if (body_count == 0 || seq_at + 16 > body_len || body_len > 16384) {
        fprintf(stderr, "h2load_bodies: bad H2LOAD_BODY_LEN / H2LOAD_SEQ_AT\n");
        exit(2);
    }
    bodies = mmap(0, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, bfd, 0);
    if (bodies == MAP_FAILED) {
        perror("h2load_bodies: mmap");
        exit(2);
    }
    data_fd = fd;
    return 1;
}

ssize_t pread64(int fd, void *buf, size_t count, off_t offset) {
    if (!real_pread)
        real_pread = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread64");
    if (offset != 0 || count < 16 || !is_data_fd(fd))
        return real_pread(fd, buf, count, offset);
    if (count < body_len) {
        fprintf(stderr, "h2load_bodies: short read of a body\n");
        exit(2);
    }
    uint64_t seq = __atomic_fetch_add(&next_body, 1, __ATOMIC_RELAXED);
    memcpy(buf, bodies + (seq % body_count) * body_len, body_len);
    static const char hex[] = "0123456789abcdef";
    unsigned char *stamp = (unsigned char *)buf + seq_at;
    for (int i = 15; i >= 0; i--, seq >>= 4)
        stamp[i] = (unsigned char)hex[seq & 15];
    return (ssize_t)body_len;
}

ssize_t pread(int fd, void *buf, size_t count, off_t offset) { return pread64(fd, buf, count, offset); }
