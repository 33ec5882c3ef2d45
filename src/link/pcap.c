/* Pcap tee: records every frame crossing a link, in both directions.
 *
 * Format: the classic libpcap file (pcap-savefile(5)), nanosecond variant:
 * magic 0xa1b23c4d in host byte order (readers detect the order from it),
 * version 2.4, LINKTYPE_ETHERNET. tx records are the frames the stack
 * passed to send(), whether or not the inner link took them; rx records
 * are the frames recv() returned.
 *
 * The tee loses nothing itself, so its stats mirror the inner link's. A
 * failed write stops recording (a partial record would ruin the rest of
 * the file) and is counted, never fatal to the traffic. */
#include <tern/link.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#define PCAP_MAGIC_NSEC 0xa1b23c4du
#define PCAP_VERSION_MAJOR 2
#define PCAP_VERSION_MINOR 4
#define PCAP_SNAPLEN 262144u
#define LINKTYPE_ETHERNET 1u

struct pcap_file_header {
    uint32_t magic;
    uint16_t version_major, version_minor;
    int32_t thiszone;
    uint32_t sigfigs, snaplen, linktype;
};

struct pcap_record_header {
    uint32_t ts_sec, ts_nsec, incl_len, orig_len;
};

struct pcap_tee {
    struct tern_link link; /* first */
    struct tern_link *inner;
    FILE *file;
    bool failed;
    uint64_t records_lost;
};

static void record(struct pcap_tee *t, const struct tern_frame *f, tern_time_t now)
{
    if (t->failed) {
        t->records_lost++;
        return;
    }
    size_t incl = f->len < PCAP_SNAPLEN ? f->len : PCAP_SNAPLEN;
    struct pcap_record_header h = {
        .ts_sec = (uint32_t)(now / TERN_NS_PER_SEC),
        .ts_nsec = (uint32_t)(now % TERN_NS_PER_SEC),
        .incl_len = (uint32_t)incl,
        .orig_len = (uint32_t)f->len,
    };
    if (fwrite(&h, sizeof(h), 1, t->file) != 1 ||
        (incl && fwrite(f->data, incl, 1, t->file) != 1)) {
        t->failed = true;
        t->records_lost++;
    }
}

static size_t tee_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                       tern_time_t now)
{
    struct pcap_tee *t = (struct pcap_tee *)l;
    for (size_t i = 0; i < n; i++)
        record(t, &frames[i], now);
    size_t sent = tern_link_send(t->inner, frames, n, now);
    l->stats = t->inner->stats;
    return sent;
}

static size_t tee_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                       tern_time_t now)
{
    struct pcap_tee *t = (struct pcap_tee *)l;
    size_t got = tern_link_recv(t->inner, frames, n, now);
    for (size_t i = 0; i < got; i++)
        record(t, &frames[i], now);
    l->stats = t->inner->stats;
    return got;
}

static tern_time_t tee_next_deadline(struct tern_link *l, tern_time_t now)
{
    return tern_link_next_deadline(((struct pcap_tee *)l)->inner, now);
}

static int tee_pollfd(struct tern_link *l)
{
    return tern_link_pollfd(((struct pcap_tee *)l)->inner);
}

static void tee_destroy(struct tern_link *l)
{
    struct pcap_tee *t = (struct pcap_tee *)l;
    if (t->file)
        fclose(t->file); /* flushes; nobody is left to tell of an error */
    tern_link_free(t->inner);
    free(t);
}

static int write_file_header(FILE *f)
{
    struct pcap_file_header h = {
        .magic = PCAP_MAGIC_NSEC,
        .version_major = PCAP_VERSION_MAJOR,
        .version_minor = PCAP_VERSION_MINOR,
        .snaplen = PCAP_SNAPLEN,
        .linktype = LINKTYPE_ETHERNET,
    };
    /* Flushed at once, so that a file that cannot be written fails here
     * rather than silently at the first record. */
    if (fwrite(&h, sizeof(h), 1, f) != 1 || fflush(f) != 0)
        return -1;
    return 0;
}

struct tern_link *tern_pcap_tee_new(struct tern_link *inner, const char *path)
{
    if (!inner || !path) {
        tern_link_free(inner);
        errno = EINVAL;
        return NULL;
    }
    struct pcap_tee *t = calloc(1, sizeof(*t));
    if (!t) {
        tern_link_free(inner);
        return NULL;
    }
    t->inner = inner;
    t->file = fopen(path, "wbe");
    if (!t->file || write_file_header(t->file) != 0) {
        int err = errno;
        tee_destroy(&t->link);
        errno = err;
        return NULL;
    }
    t->link.ops.send = tee_send;
    t->link.ops.recv = tee_recv;
    t->link.ops.next_deadline = tee_next_deadline;
    t->link.ops.pollfd = tee_pollfd;
    t->link.ops.destroy = tee_destroy;
    t->link.info = inner->info;
    t->link.stats = inner->stats;
    return &t->link;
}
