/*
 * tern_bench: Tern beside the Linux kernel and lwIP, in one run.
 *
 *   tern_bench [--quick] [--only bulk,mem,conn] [--reps N] [--bulk-mb N]
 *              [--conns N] [--idle N] [--seconds S]
 *
 * Prints one Markdown table per benchmark. The targets are shown
 * in a column of their own; nothing fails on them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "kernel.h"

#ifndef TERN_BENCH_BUILD
#define TERN_BENCH_BUILD "unknown build"
#endif

#define MAX_REPS 9

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of the repetitions that produced a value; the first failure
 * when none did. A remark of any repetition is kept. */
static struct bench_val median(const struct bench_val *v, int n)
{
    double xs[MAX_REPS];
    int k = 0;
    struct bench_val out = v[0];
    for (int i = 0; i < n; i++)
        if (v[i].ok)
            xs[k++] = v[i].v;
    if (k == 0)
        return out;
    qsort(xs, (size_t)k, sizeof(xs[0]), cmp_double);
    out.ok = true;
    out.v = k % 2 ? xs[k / 2] : (xs[k / 2 - 1] + xs[k / 2]) / 2;
    out.why[0] = 0;
    for (int i = 0; i < n; i++)
        if (v[i].ok && v[i].why[0]) {
            snprintf(out.why, sizeof(out.why), "%s", v[i].why);
            break;
        }
    if (k < n)
        snprintf(out.why + strlen(out.why), sizeof(out.why) - strlen(out.why),
                 "%s%d of %d runs", out.why[0] ? ", " : "", k, n);
    return out;
}

static void ratio_pair(struct table *t, int row, int col, const struct bench_val *a,
                       const struct bench_val *b, const struct bench_val *k)
{
    char x[24] = "-", y[24] = "-";
    if (a->ok && k->ok && k->v > 0)
        snprintf(x, sizeof(x), "%.2fx", a->v / k->v);
    if (b->ok && k->ok && k->v > 0)
        snprintf(y, sizeof(y), "%.2fx", b->v / k->v);
    table_set(t, row, col, "%s / %s", x, y);
}

/* An lwIP cell that is not measured: left out by the user, not built, or
 * `why` (something lwIP cannot do). */
static void lwip_skip(struct bench_val *v, bool lwip, const char *why)
{
    if (!lwip)
        bval_fail(v, "left out (--no-lwip)");
    else if (!bench_lwip_available())
        bval_fail(v, "not built: liblwip-dev not found");
    else
        bval_fail(v, "%s", why);
}

static void run_bulk(const struct bench_opts *o, int reps, bool lwip)
{
    static const char *const head[] = {
        "MB/s (10^6 B/s)", "Tern, one thread", "Tern, thread per stack", "kernel",
        "lwIP", "Tern/kernel (one thread / per stack)", "target"};
    struct table t;
    table_init(&t, "Bulk throughput, one connection, one direction", 7, head);
    /* The kernel's lo keeps TSO and GSO at any MTU, so the first row
     * gives Tern's links the same (super-frames cross whole); the second
     * turns them off on both sides, one frame per MTU-sized packet. */
    static const struct {
        uint32_t mtu;
        bool offload;
        const char *name;
    } rows[3] = {{1500, true, "MTU 1500, segmentation offload"},
                 {1500, false, "MTU 1500, frame by frame"},
                 {65535, false, "MTU 65535"}};
    char how[3][200];
    for (int m = 0; m < 3; m++) {
        uint32_t mtu = rows[m].mtu;
        bool offload = rows[m].offload;
        struct bench_val a[MAX_REPS], b[MAX_REPS], k[MAX_REPS], l[MAX_REPS];
        memset(a, 0, sizeof(a));
        memset(b, 0, sizeof(b));
        memset(k, 0, sizeof(k));
        memset(l, 0, sizeof(l));
        for (int r = 0; r < reps; r++) {
            bench_bulk_tern_1t(o, mtu, offload, &a[r]);
            bench_bulk_tern_2t(o, mtu, offload, &b[r]);
            bench_bulk_kernel(o, mtu, offload, &k[r], how[m], sizeof(how[m]));
            if (lwip && bench_lwip_available() && mtu == 1500 && !offload)
                bench_lwip_bulk(o, &l[r]);
            else
                lwip_skip(&l[r], lwip, offload ? "no offload" : "TCP_MSS 1460 compiled in");
        }
        struct bench_val ma = median(a, reps), mb = median(b, reps), mk = median(k, reps),
                         ml = median(l, reps);
        int row = table_row(&t);
        table_set(&t, row, 0, "%s", rows[m].name);
        table_val(&t, row, 1, &ma, "%.0f");
        table_val(&t, row, 2, &mb, "%.0f");
        table_val(&t, row, 3, &mk, "%.0f");
        table_val(&t, row, 4, &ml, "%.0f");
        ratio_pair(&t, row, 5, &ma, &mb, &mk);
        table_set(&t, row, 6, ">= 1.5x");
    }
    table_note(&t, "%.0f MB per run (or %.0f s, whichever comes first), median of %d runs; "
               "wall-clock time from the first send to the last byte read.",
               (double)o->bulk_bytes / 1e6, o->bulk_seconds, reps);
    table_note(&t, "Tern, one thread: both stacks on the in-memory wire (tern_wire), one loop "
               "that sends, polls the receiver, reads and polls the sender at the real clock.");
    table_note(&t, "Tern, thread per stack: each stack and its side of the application in a "
               "thread of its own, over the bench's link of two SPSC rings (bench/qlink.c); an "
               "idle thread spins 100 us, then sleeps on a futex.");
    table_note(&t, "Tern: default stack config (CUBIC, 256 KiB socket buffers).");
    table_note(&t, "Checksums: both links are memory, so TCP checksums are left unfilled "
                   "and unverified (TERN_FRAME_CSUM_PENDING), as the kernel's lo does.");
    table_note(&t, "Segmentation offload (first row): Tern's links offer TSO and carry a "
                   "super-frame of up to 64 KiB whole (tern_wire_config.offload), which the "
                   "receiver takes as the 1448-byte segments it holds, as lo does the "
                   "kernel's. Frame by frame: every frame within the MTU on both sides.");
    table_note(&t, "%s: %s. %s: %s. %s: %s. Default socket buffers, a sender and a receiver "
               "thread.", rows[0].name, how[0], rows[1].name, how[1], rows[2].name, how[2]);
    if (lwip && bench_lwip_available())
        table_note(&t, "%s: a sender thread, a receiver thread and lwIP's tcpip thread.",
                   bench_lwip_what());
    table_print(&t, stdout);
}

static void run_mem(const struct bench_opts *o, bool lwip)
{
    static const char *const head[] = {"bytes per idle endpoint", "Tern", "kernel", "lwIP",
                                       "Tern/kernel", "target"};
    struct table t;
    table_init(&t, "Memory per idle established connection", 6, head);
    struct mem_result mt, mk, ml;
    memset(&mt, 0, sizeof(mt));
    memset(&mk, 0, sizeof(mk));
    memset(&ml, 0, sizeof(ml));
    bench_mem_tern(o, &mt);
    bench_mem_kernel(o, &mk);
    if (lwip && bench_lwip_available()) {
        bench_lwip_mem(o, &ml);
    } else {
        lwip_skip(&ml.avg, lwip, "");
        ml.marginal = ml.avg;
    }
    const struct bench_val *v[2][3] = {{&mt.avg, &mk.avg, &ml.avg},
                                       {&mt.marginal, &mk.marginal, &ml.marginal}};
    static const char *const what[2] = {"average over all pairs", "marginal (N/2 to N pairs)"};
    for (int i = 0; i < 2; i++) {
        int row = table_row(&t);
        table_set(&t, row, 0, "%s", what[i]);
        table_val(&t, row, 1, v[i][0], "%.0f");
        table_val(&t, row, 2, v[i][1], "%.0f");
        table_val(&t, row, 3, v[i][2], "%.0f");
        table_ratio(&t, row, 4, v[i][0], v[i][1]);
        table_set(&t, row, 5, "<= 0.20x and <= 1024");
    }
    table_note(&t, "N = %u connection pairs, each after a 1-byte request and a 1-byte answer, "
               "then idle; bytes per endpoint = growth / (2 x pairs).", o->idle);
    table_note(&t, "Tern: heap bytes in use (mallinfo2 uordblks + hblkhd) of both stacks, "
               "default config but max_sockets and the ephemeral range sized for N.");
    table_note(&t, "Kernel: /proc/meminfo Slab (sockets, their inodes, dentries and files); the "
               "client side in a child process so that neither holds more than N descriptors. "
               "Slab is machine-wide: other work on the machine shows up in it.");
    if (lwip && bench_lwip_available())
        table_note(&t, "lwIP: heap bytes of a process of its own (every pool is malloc in "
                   "Debian's build), all threads in one malloc arena.");
    table_print(&t, stdout);
}

static void run_conn(const struct bench_opts *o, int reps, bool lwip)
{
    static const char *const head[] = {
        "connections/s", "Tern, one thread", "Tern, thread per stack", "kernel, one thread",
        "kernel, thread per side", "lwIP", "Tern/kernel (one thread / per stack)", "target"};
    struct table t;
    table_init(&t, "Connections per second: connect, 1-byte request, 1-byte response, close",
               8, head);
    static const char *const what[2] = {"abortive close (client SO_LINGER 0)",
                                        "orderly close (FIN, TIME_WAIT 60 s)"};
    for (int how = 0; how < 2; how++) {
        struct bench_val a[MAX_REPS], b[MAX_REPS], k[MAX_REPS], k2[MAX_REPS], l[MAX_REPS];
        memset(a, 0, sizeof(a));
        memset(b, 0, sizeof(b));
        memset(k, 0, sizeof(k));
        memset(k2, 0, sizeof(k2));
        memset(l, 0, sizeof(l));
        for (int r = 0; r < reps; r++) {
            enum conn_close close_how = how ? CLOSE_ORDERLY : CLOSE_ABORT;
            bench_conn_tern(o, close_how, &a[r]);
            bench_conn_tern_2t(o, close_how, &b[r]);
            bench_conn_kernel(o, close_how, &k[r]);
            bench_conn_kernel_2t(o, close_how, &k2[r]);
            if (lwip && bench_lwip_available() && how)
                bench_lwip_conn(o, &l[r]);
            else
                lwip_skip(&l[r], lwip, "SO_LINGER 0 does not abort an idle connection");
        }
        struct bench_val ma = median(a, reps), mb = median(b, reps), mk = median(k, reps),
                         mk2 = median(k2, reps), ml = median(l, reps);
        int row = table_row(&t);
        table_set(&t, row, 0, "%s", what[how]);
        table_val(&t, row, 1, &ma, "%.0f");
        table_val(&t, row, 2, &mb, "%.0f");
        table_val(&t, row, 3, &mk, "%.0f");
        table_val(&t, row, 4, &mk2, "%.0f");
        table_val(&t, row, 5, &ml, "%.0f");
        ratio_pair(&t, row, 6, &ma, &mb, &mk);
        table_set(&t, row, 7, ">= 10x");
    }
    char range[64], reuse[16];
    kernel_sysctl("/proc/sys/net/ipv4/ip_local_port_range", range, sizeof(range));
    kernel_sysctl("/proc/sys/net/ipv4/tcp_tw_reuse", reuse, sizeof(reuse));
    table_note(&t, "%u connections per run (or %.0f s), one after another, median of %d runs.",
               o->conns, o->conn_seconds, reps);
    table_note(&t, "Tern, one thread: two stacks on the in-memory wire, one thread polling both "
               "at the real clock. Kernel, one thread: blocking sockets on 127.0.0.1 (loopback "
               "completes each step inside the call).");
    table_note(&t, "Thread per stack / per side: the client's thread makes the connections, the "
               "server's accepts, answers and closes; every step crosses between them. Tern: "
               "each stack owned by its thread, over the bench's qlink (spin 100 us, then a "
               "futex). Kernel: blocking sockets, a client and a server thread. Both ratios "
               "are against the kernel's one-thread figure, its best.");
    table_note(&t, "Abortive: the client sets SO_LINGER {1, 0}, so its close sends RST and "
               "nobody keeps TIME_WAIT (both stacks).");
    table_note(&t, "Orderly: FIN both ways and a 60 s TIME_WAIT on the client in both stacks; "
               "Tern's ephemeral range is widened to 1024-65535 and max_sockets raised so every "
               "TIME_WAIT of the run fits; the kernel keeps its own (ports %s, tcp_tw_reuse %s).",
               range, reuse);
    if (lwip && bench_lwip_available())
        table_note(&t, "lwIP: orderly only (2.1.3 ignores SO_LINGER 0 when no data is unsent), "
                   "at most 16000 connections (16384 ephemeral ports, TIME_WAIT 2 min); the "
                   "application thread and the tcpip thread hand every call across.");
    table_print(&t, stdout);
}

static void header(void)
{
    char date[64], cpu[128] = "?";
    time_t now = time(NULL);
    strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
    struct utsname u;
    uname(&u);
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (strncmp(line, "model name", 10) == 0) {
                char *p = strchr(line, ':');
                if (p) {
                    snprintf(cpu, sizeof(cpu), "%s", p + 2);
                    cpu[strcspn(cpu, "\n")] = 0;
                }
                break;
            }
        fclose(f);
    }
    printf("## tern_bench, %s\n\n", date);
    printf("%ld CPUs (%s), Linux %s; Tern built %s.\n", sysconf(_SC_NPROCESSORS_ONLN), cpu,
           u.release, TERN_BENCH_BUILD);
    if (strstr(TERN_BENCH_BUILD, "TERN_DEBUG=ON"))
        printf("Debug checks are on in this build (they poison every freed buffer): "
               "`make bench` builds without them.\n");
    fflush(stdout);
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--quick] [--only bulk,mem,conn] [--reps N] [--bulk-mb N]\n"
            "          [--conns N] [--idle N] [--seconds S] [--no-lwip]\n",
            argv0);
    exit(2);
}

static unsigned long num(const char *s, const char *argv0)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v == 0)
        usage(argv0);
    return v;
}

int main(int argc, char **argv)
{
    struct bench_opts o = {.bulk_bytes = 200ull * 1000 * 1000, .bulk_seconds = 5,
                           .conns = 20000, .conn_seconds = 10,
                           .idle = 10000, .idle_seconds = 60};
    int reps = 5;
    bool lwip = true;
    const char *only = "bulk,mem,conn";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--quick") == 0) {
            o.bulk_bytes = 20ull * 1000 * 1000;
            o.conns = 2000;
            o.idle = 1000;
            reps = 1;
        } else if (strcmp(a, "--no-lwip") == 0) {
            lwip = false;
        } else if (strcmp(a, "--only") == 0 && more) {
            only = argv[++i];
        } else if (strcmp(a, "--reps") == 0 && more) {
            reps = (int)num(argv[++i], argv[0]);
            if (reps > MAX_REPS)
                reps = MAX_REPS;
        } else if (strcmp(a, "--bulk-mb") == 0 && more) {
            o.bulk_bytes = num(argv[++i], argv[0]) * 1000ull * 1000;
        } else if (strcmp(a, "--conns") == 0 && more) {
            o.conns = (uint32_t)num(argv[++i], argv[0]);
        } else if (strcmp(a, "--idle") == 0 && more) {
            o.idle = (uint32_t)num(argv[++i], argv[0]);
            if (o.idle < 2)
                usage(argv[0]);
        } else if (strcmp(a, "--seconds") == 0 && more) {
            o.bulk_seconds = (double)num(argv[++i], argv[0]);
        } else {
            usage(argv[0]);
        }
    }
    /* lwIP's helper process first: it must be forked before any thread. */
    if (lwip)
        bench_lwip_start();
    header();
    if (strstr(only, "bulk"))
        run_bulk(&o, reps, lwip);
    /* Memory before conn/s: the kernel's TIME_WAIT sockets from the
     * orderly run would expire into the middle of the Slab readings. */
    if (strstr(only, "mem"))
        run_mem(&o, lwip);
    if (strstr(only, "conn"))
        run_conn(&o, reps, lwip);
    if (lwip)
        bench_lwip_stop();
    return 0;
}
