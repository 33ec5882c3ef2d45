/* What every example does the same way: see common.h. */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal flags must be lock-free atomics");
/* The programs' only globals (DESIGN.md's rule is for the library): a
 * signal handler has nowhere else to write. */
atomic_int ex_stop;
atomic_int ex_dump;

static void on_stop(int sig)
{
    (void)sig;
    ex_stop = 1;
}

static void on_dump(int sig)
{
    (void)sig;
    ex_dump = 1;
}

void ex_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_dump;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = SIG_IGN; /* stdout to a closed pipe: an error, not a death */
    sigaction(SIGPIPE, &sa, NULL);
}

static bool parse_num_quiet(const char *str, unsigned long long min, unsigned long long max,
                            unsigned long long *out)
{
    char *end;
    errno = 0;
    bool hex = str[0] == '0' && (str[1] == 'x' || str[1] == 'X');
    unsigned long long v = strtoull(str, &end, hex ? 16 : 10); /* "010" is ten */
    if (!*str || *str == '-' || *end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int ex_parse_prefix(const char *str, struct in_addr *addr, unsigned *prefixlen)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", str);
    char *slash = strchr(buf, '/');
    unsigned long long len = 24; /* without /LEN */
    if (slash) {
        *slash = 0;
        if (!parse_num_quiet(slash + 1, 0, 32, &len))
            return -1;
    }
    if (inet_pton(AF_INET, buf, addr) != 1)
        return -1;
    *prefixlen = (unsigned)len;
    return 0;
}

int ex_parse_num(const char *what, const char *str, unsigned long long min,
                 unsigned long long max, unsigned long long *out)
{
    if (parse_num_quiet(str, min, max, out))
        return 0;
    fprintf(stderr, "%s: '%s' is not a number from %llu to %llu\n", what, str, min, max);
    return -1;
}

int ex_parse_port(const char *what, const char *str, uint16_t *out)
{
    unsigned long long v;
    if (ex_parse_num(what, str, 1, 65535, &v) < 0)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int ex_parse_addr_port(const char *str, uint16_t defport, struct sockaddr_in *out)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", str);
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons(defport);
    char *colon = strchr(buf, ':');
    if (colon) {
        *colon = 0;
        unsigned long long v;
        if (!parse_num_quiet(colon + 1, 1, 65535, &v))
            return -1;
        out->sin_port = htons((uint16_t)v);
    }
    return inet_pton(AF_INET, buf, &out->sin_addr) == 1 ? 0 : -1;
}

int ex_link_opt(struct ex_link_opts *o, int argc, char **argv, int *i)
{
    const char *opt = argv[*i];
    if (strcmp(opt, "--no-offload") == 0) {
        o->no_offload = true;
        return 1;
    }
    static const char with_value[][12] = {"--tap", "--addr", "--gw", "--pcap", "--seed",
                                          "--control"};
    bool known = false;
    for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
        known |= strcmp(opt, with_value[k]) == 0;
    if (!known)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s needs a value\n", opt);
        return -1;
    }
    const char *v = argv[++*i];
    if (strcmp(opt, "--tap") == 0) {
        o->tap = v;
    } else if (strcmp(opt, "--pcap") == 0) {
        o->pcap = v;
    } else if (strcmp(opt, "--control") == 0) {
        o->control = v;
    } else if (strcmp(opt, "--addr") == 0) {
        if (ex_parse_prefix(v, &o->addr, &o->prefixlen) < 0) {
            fprintf(stderr, "--addr: '%s' is not A.B.C.D/LEN\n", v);
            return -1;
        }
        o->have_addr = true;
    } else if (strcmp(opt, "--gw") == 0) {
        if (inet_pton(AF_INET, v, &o->gw) != 1) {
            fprintf(stderr, "--gw: '%s' is not an IPv4 address\n", v);
            return -1;
        }
        o->have_gw = true;
    } else {
        unsigned long long seed;
        if (ex_parse_num("--seed", v, 0, UINT64_MAX, &seed) < 0)
            return -1;
        o->seed = seed;
    }
    return 1;
}

static int net_up(struct ex_net *n, struct tern_link *link, struct in_addr addr,
                  unsigned prefixlen, uint64_t seed, bool start)
{
    struct tern_stack_config cfg;
    tern_stack_config_default(&cfg);
    if (seed)
        cfg.seed = seed;
    n->link = link;
    n->s = tern_stack_new(&cfg);
    if (!n->s) {
        perror("tern_stack_new");
        return -1;
    }
    n->ifindex = tern_if_add(n->s, link, NULL);
    if (n->ifindex < 0 || tern_if_addr_add(n->s, n->ifindex, addr, prefixlen) < 0) {
        perror("interface");
        goto fail;
    }
    if (start && tern_stack_start(n->s) < 0) {
        perror("tern_stack_start");
        goto fail;
    }
    return 0;
fail:
    tern_stack_free(n->s);
    n->s = NULL;
    return -1;
}

int ex_net_up_link(struct ex_net *n, struct tern_link *link, struct in_addr addr,
                   unsigned prefixlen, uint64_t seed)
{
    return net_up(n, link, addr, prefixlen, seed, true);
}

int ex_net_up(struct ex_net *n, const struct ex_link_opts *o)
{
    memset(n, 0, sizeof(*n));
    if (!o->tap || !o->have_addr) {
        fprintf(stderr, "needs --tap NAME and --addr A/LEN\n");
        return -1;
    }
    struct tern_link *link = tern_tap_open_flags(o->tap, o->no_offload ? TERN_TAP_NO_OFFLOAD : 0);
    if (!link) {
        fprintf(stderr, "tern_tap_open(%s): %s\n", o->tap, strerror(errno));
        return -1;
    }
    if (o->pcap) {
        link = tern_pcap_tee_new(link, o->pcap); /* frees the TAP link on failure */
        if (!link) {
            fprintf(stderr, "pcap %s: %s\n", o->pcap, strerror(errno));
            return -1;
        }
    }
    if (net_up(n, link, o->addr, o->prefixlen, o->seed, !o->owned) < 0) {
        tern_link_free(link);
        return -1;
    }
    if (o->have_gw) {
        struct in_addr any = {0};
        if (tern_route_add(n->s, any, 0, o->gw, n->ifindex) < 0) {
            fprintf(stderr, "default route via %s: %s\n", inet_ntoa(o->gw), strerror(errno));
            ex_net_down(n, true);
            return -1;
        }
    }
    if (o->control && tern_stack_control(n->s, o->control) < 0) {
        int err = errno;
        char why[160] = "";
        tern_error_detail(n->s, why, sizeof(why));
        fprintf(stderr, "control socket %s: %s%s%s%s\n", o->control, strerror(err),
                why[0] ? " (" : "", why, why[0] ? ")" : "");
        ex_net_down(n, true);
        return -1;
    }
    return 0;
}

void ex_net_down(struct ex_net *n, bool free_link)
{
    if (n->s)
        tern_stack_free(n->s);
    n->s = NULL;
    if (free_link && n->link)
        tern_link_free(n->link);
    n->link = NULL;
}

int ex_set_timeo(struct tern_stack *s, int fd, int name, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tern_setsockopt(s, fd, SOL_SOCKET, name, &tv, sizeof(tv));
}

void ex_pattern_fill(uint8_t *buf, size_t len, uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = ex_pattern_byte(offset + i);
}

void ex_summary_print(FILE *f, const char *prog, const char *verb, const char *what,
                      const struct ex_summary *sum)
{
    fprintf(f, "%s: %s %" PRIu64 " %s, %" PRIu64 " bytes in, %" PRIu64 " bytes out, %" PRIu64
           " connections, %" PRIu64 " errors\n",
           prog, verb, atomic_load(&sum->served), what, atomic_load(&sum->bytes_in),
           atomic_load(&sum->bytes_out), atomic_load(&sum->conns), atomic_load(&sum->errors));
    fflush(f);
}

static void *worker_main(void *arg)
{
    struct ex_worker *w = arg;
    w->fn(w->arg);
    atomic_store(&w->done, true);
    return NULL;
}

static void reap(struct ex_workers *ws)
{
    for (int i = 0; i < EX_MAX_WORKERS; i++) {
        if (ws->w[i].used && atomic_load(&ws->w[i].done)) {
            pthread_join(ws->w[i].thread, NULL);
            ws->w[i].used = false;
        }
    }
}

int ex_workers_spawn(struct ex_workers *ws, void *(*fn)(void *), void *arg)
{
    reap(ws);
    for (int i = 0; i < EX_MAX_WORKERS; i++) {
        struct ex_worker *w = &ws->w[i];
        if (w->used)
            continue;
        w->fn = fn;
        w->arg = arg;
        atomic_store(&w->done, false);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
            return -1;
        w->used = true;
        return 0;
    }
    errno = EAGAIN;
    return -1;
}

void ex_workers_join_all(struct ex_workers *ws)
{
    for (int i = 0; i < EX_MAX_WORKERS; i++) {
        if (ws->w[i].used) {
            pthread_join(ws->w[i].thread, NULL);
            ws->w[i].used = false;
        }
    }
}
