/*
 * Benchmarks: Tern beside the Linux kernel (and lwIP where it builds),
 * measured in one run and printed as Markdown tables. Not tests: nothing
 * here asserts a speed. Everything Tern is reached through the public API
 * (the headers under include/tern) only.
 */
#ifndef TERN_BENCH_H
#define TERN_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <tern/tern.h>

/* The sizes and bounds of one run (main.c fills them from the command
 * line). Every loop in the benchmarks stops at its count or its time. */
struct bench_opts {
    uint64_t bulk_bytes;      /* per bulk run */
    double bulk_seconds;      /* cap per bulk run */
    uint32_t conns;           /* connections per conn/s run */
    double conn_seconds;      /* cap per conn/s run */
    uint32_t idle;            /* idle connection pairs in the memory benchmark */
    double idle_seconds;      /* cap on opening them */
};

/* A measured number, or why there is none. */
struct bench_val {
    bool ok;
    double v;
    char why[96]; /* when !ok: the reason; when ok: an optional remark */
};

void bval_set(struct bench_val *b, double v);
void bval_fail(struct bench_val *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Monotonic wall-clock time in nanoseconds. */
uint64_t bench_now_ns(void);
/* Seconds to nanoseconds. */
uint64_t bench_ns(double seconds);

/* ---- Tables: printed as Markdown so docs/bench.md can hold them as they are. */
#define TABLE_MAX_COLS 8
#define TABLE_MAX_ROWS 16
#define TABLE_MAX_NOTES 12
#define TABLE_CELL 64
#define TABLE_NOTE 640

struct table {
    const char *title;
    int ncols, nrows, nnotes;
    const char *head[TABLE_MAX_COLS];
    char cell[TABLE_MAX_ROWS][TABLE_MAX_COLS][TABLE_CELL];
    char note[TABLE_MAX_NOTES][TABLE_NOTE];
};

void table_init(struct table *t, const char *title, int ncols, const char *const *head);
/* A new row; returns its index. Cells are filled with table_set. */
int table_row(struct table *t);
void table_set(struct table *t, int row, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A value formatted with fmt, or "n/a (reason)". */
void table_val(struct table *t, int row, int col, const struct bench_val *b, const char *fmt);
/* a / b formatted as "0.52x", or "-" when either is missing. */
void table_ratio(struct table *t, int row, int col, const struct bench_val *a,
                 const struct bench_val *b);
void table_note(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void table_print(const struct table *t, FILE *f);

/* ---- Two Tern stacks for one benchmark ----
 * Stack 0 is 192.0.2.1, stack 1 is 192.0.2.2 (documentation range; the
 * frames never leave the process). Each is attached to one link. */
struct tern_pair {
    struct tern_stack *st[2];
    struct tern_link *link[2];
    struct tern_wire *wire; /* when on the in-memory wire */
    void *qlink;            /* when on the bench's threaded link (qlink.h) */
};

/* Default configs, changed by `tweak` when not NULL (its seed is set per
 * stack afterwards). Returns 0, or -1 with errno. */
int pair_new_wire(struct tern_pair *p, uint32_t mtu, bool offload,
                  void (*tweak)(struct tern_stack_config *, void *), void *arg);
int pair_new_qlink(struct tern_pair *p, uint32_t mtu, bool offload,
                   void (*tweak)(struct tern_stack_config *, void *), void *arg);
void pair_free(struct tern_pair *p);
struct sockaddr_in pair_addr(int i, uint16_t port);
/* Poll both stacks at the real clock until `cond` holds or `max_ns` passes.
 * One thread. Returns whether cond held. */
bool pair_run_until(struct tern_pair *p, bool (*cond)(struct tern_pair *, void *), void *arg,
                    uint64_t max_ns);
/* Poll both at the real clock until a round moves no frame (bounded). */
void pair_settle(struct tern_pair *p);
/* Each stack's nonzero counters on stderr, under the names given (stack
 * 0's last): what BENCH_DEBUG=1 in the environment asks of a Tern run. */
void pair_debug_counters(const struct tern_pair *p, const char *name1, const char *name0);

/* An established connection: client on stack 0, server (accepted) on
 * stack 1, listener on stack 1 port `port`. Returns 0 or -1. */
struct tern_conn {
    int listener, client, server;
};
int pair_connect(struct tern_pair *p, uint16_t port, struct tern_conn *c);

/* ---- The benchmarks ---- */
struct bulk_result {
    struct bench_val tern_1t, tern_2t, kernel, lwip; /* MB/s */
    char kernel_how[160];
};
void bench_bulk_tern_1t(const struct bench_opts *o, uint32_t mtu, bool offload,
                        struct bench_val *out);
void bench_bulk_tern_2t(const struct bench_opts *o, uint32_t mtu, bool offload,
                        struct bench_val *out);
void bench_bulk_kernel(const struct bench_opts *o, uint32_t mtu, bool offload,
                       struct bench_val *out, char *how, size_t howlen);

enum conn_close { CLOSE_ABORT, CLOSE_ORDERLY };
void bench_conn_tern(const struct bench_opts *o, enum conn_close how, struct bench_val *out);
void bench_conn_kernel(const struct bench_opts *o, enum conn_close how, struct bench_val *out);
/* The same with one thread per stack (Tern, on the qlink) or per side
 * (kernel: a client thread and a server thread). */
void bench_conn_tern_2t(const struct bench_opts *o, enum conn_close how, struct bench_val *out);
void bench_conn_kernel_2t(const struct bench_opts *o, enum conn_close how, struct bench_val *out);

/* Bytes per idle established endpoint: average over all pairs from before
 * the first, and marginal (between half and all of them). */
struct mem_result {
    struct bench_val avg, marginal;
};
void bench_mem_tern(const struct bench_opts *o, struct mem_result *out);
void bench_mem_kernel(const struct bench_opts *o, struct mem_result *out);

/* lwIP (lwip.c when Debian's liblwip-dev was found at build time, or
 * lwip_none.c, whose results all say why not). Each measurement runs in a
 * process of its own; bench_lwip_start() must come before any thread is
 * made, bench_lwip_stop() at the end. */
void bench_lwip_start(void);
void bench_lwip_bulk(const struct bench_opts *o, struct bench_val *out); /* MTU 1500 */
void bench_lwip_conn(const struct bench_opts *o, struct bench_val *out); /* orderly */
void bench_lwip_mem(const struct bench_opts *o, struct mem_result *out);
void bench_lwip_stop(void);
/* Whether lwIP was built in; what is measured, or why it is not built. */
bool bench_lwip_available(void);
const char *bench_lwip_what(void);

/* Raise RLIMIT_NOFILE to at least n if allowed; returns the soft limit. */
uint64_t bench_raise_nofile(uint64_t n);

#endif
