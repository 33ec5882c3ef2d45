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

#include "obs/pcapw.h"

struct pcap_tee {
    struct tern_link link; /* first */
    struct tern_link *inner;
    struct tern_pcapw w;
};

static void record(struct pcap_tee *t, const struct tern_frame *f, tern_time_t now)
{
    tern_pcapw_record(&t->w, f->data, f->len, now);
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
    for (size_t i = 0; i < got; i++) {
        tern_frame_csum_fill(&frames[i]); /* the file shows the real checksum */
        record(t, &frames[i], now);
    }
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
    tern_pcapw_close(&t->w);
    tern_link_free(t->inner);
    free(t);
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
    if (tern_pcapw_open(&t->w, path) != 0) {
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
    /* Frames to record are sent with their checksums filled, cut to the
     * MTU as a wire would carry them. What the inner link coalesced on
     * receipt is recorded as it came, as tcpdump records GRO's work. */
    t->link.info.caps &= ~(uint32_t)(TERN_LINK_CAP_TX_CSUM | TERN_LINK_CAP_TSO |
                                     TERN_LINK_CAP_TX_UNLOCKED); /* one file, both ways */
    t->link.stats = inner->stats;
    return &t->link;
}
