/*
 * Links: the lower edge of a stack.
 *
 * A link moves whole Ethernet frames (destination MAC first, no FCS). Any
 * driver implements struct tern_link_ops; a stack borrows its links and
 * never frees them. Wrappers (impairment, pcap tee) take ownership of the
 * link they wrap and free it with themselves, so a chain is freed from its
 * outermost link with tern_link_free().
 *
 * Ownership of frames: send() borrows the caller's frames for the call
 * (a link copies whatever it keeps); recv() fills buffers the caller owns.
 * Links are single-threaded objects: one thread at a time.
 */
#ifndef TERN_LINK_H
#define TERN_LINK_H

#include <tern/common.h>

#define TERN_ETH_ADDR_LEN 6
/* Largest frame any link carries: a 65535-byte MTU plus the header. */
#define TERN_LINK_MAX_FRAME (65535 + 14)

/* One frame. On send: data/len/flags borrowed. On recv: data/cap given by
 * the caller (flags zero), len and flags set by the link. */
struct tern_frame {
    uint8_t *data;
    size_t len;
    size_t cap;
    uint32_t flags; /* enum tern_frame_flags */
    /* A TCP/IPv4 frame longer than the MTU that stands for several: its
     * payload is cut into gso_size-byte segments (the last may be
     * shorter), each with a copy of the headers (TCP segmentation
     * offload). Sent only to links with TERN_LINK_CAP_TSO, always with
     * TERN_FRAME_CSUM_PENDING; received from links that coalesce (a TAP
     * device's GRO). 0: an ordinary frame. */
    uint16_t gso_size;
};

enum tern_frame_flags {
    /* The TCP or UDP checksum of this IPv4 frame was left unfilled: the
     * sender's link has TERN_LINK_CAP_TX_CSUM. A link passes the flag
     * along only while the frame stays in the process's memory, where it
     * cannot be damaged (as Linux's loopback and veth pass
     * CHECKSUM_PARTIAL on); a receiving stack then skips verification.
     * Whatever writes the frame anywhere else, or damages it on purpose,
     * fills the checksum first (tern_frame_csum_fill). */
    TERN_FRAME_CSUM_PENDING = 1u << 0,
};

enum tern_link_caps {
    TERN_LINK_CAP_RX_CSUM_OK = 1u << 0, /* received checksums already verified */
    /* Frames may be sent with TERN_FRAME_CSUM_PENDING: the link fills the
     * checksums or delivers the flag with the frame. */
    TERN_LINK_CAP_TX_CSUM = 1u << 1,
    /* Frames may be sent with gso_size: the link or what lies beyond it
     * cuts them into segments (implies TERN_LINK_CAP_TX_CSUM). */
    TERN_LINK_CAP_TSO = 1u << 2,
    /* send() may run in one thread while recv() runs in another (a TAP
     * descriptor, a locked pipe): a started stack then writes frames
     * after it released its lock. Wrappers that share state between
     * the directions (pcap tee, impairment) withdraw it. */
    TERN_LINK_CAP_TX_UNLOCKED = 1u << 3,
};

/* Fills the checksum a frame with TERN_FRAME_CSUM_PENDING lacks and clears
 * the flag; a frame without the flag is left alone. For links and tools
 * that read frames as bytes (a pcap, a sniffer, a bit flip). */
TERN_API void tern_frame_csum_fill(struct tern_frame *f);

/* Cuts a frame with gso_size into the frames it stands for (RFC 9293
 * 3.1 fields: sequence numbers advance, FIN and PSH stay on the last
 * segment, CWR on the first; the IPv4 identification advances, as
 * Linux's TSO does). Each segment is built in `buf` (room for the
 * headers and gso_size bytes: the MTU plus 14 bytes, or
 * TERN_LINK_MAX_FRAME for any frame) and handed to emit() in turn; segments keep
 * TERN_FRAME_CSUM_PENDING when keep_pending, else their checksums are
 * filled. A frame without gso_size, or one this cannot parse (not
 * TCP/IPv4), is handed over unchanged. Returns the number of frames
 * emitted: 0 when a segment would not fit buf_size; emit() returning
 * false stops early. */
TERN_API size_t tern_frame_gso_split(const struct tern_frame *f, uint8_t *buf, size_t buf_size,
                                     bool keep_pending,
                                     bool (*emit)(void *arg, const struct tern_frame *seg),
                                     void *arg);

struct tern_link_info {
    char name[32];
    uint32_t mtu;   /* largest IP packet (Ethernet payload) in bytes */
    uint32_t caps;  /* enum tern_link_caps */
    /* Largest frame recv() may deliver (coalesced frames exceed the
     * MTU); 0: mtu + 14. */
    uint32_t rx_frame_max;
};

/* Frames and bytes that crossed the link, and frames it lost itself
 * (queue full, too big, impairment), per direction. */
struct tern_link_stats {
    uint64_t tx_frames, tx_bytes, tx_dropped;
    uint64_t rx_frames, rx_bytes, rx_dropped;
};

struct tern_link;

struct tern_link_ops {
    /* Send up to n frames; returns how many the link accepted. Frames it
     * refuses are lost (the caller counts them). */
    size_t (*send)(struct tern_link *l, const struct tern_frame *frames,
                   size_t n, tern_time_t now);
    /* Receive up to n frames whose delivery time has come into the
     * caller's buffers; frames longer than a buffer's cap are dropped and
     * counted in rx_dropped. Returns how many were filled. */
    size_t (*recv)(struct tern_link *l, struct tern_frame *frames, size_t n,
                   tern_time_t now);
    /* Earliest time at which recv() will have a frame: `now` when one is
     * waiting already, later for a frame held back (delay), or
     * TERN_TIME_NEVER. May be NULL (never). A link without a descriptor
     * (pollfd) that has this op is taken at its word: the stack calls its
     * recv() only when this says a frame is due. */
    tern_time_t (*next_deadline)(struct tern_link *l, tern_time_t now);
    /* A file descriptor that becomes readable when frames may arrive from
     * outside the process (TAP), or -1. May be NULL. */
    int (*pollfd)(struct tern_link *l);
    /* Free the link (and any link it wraps). */
    void (*destroy)(struct tern_link *l);
};

/* Drivers embed this as their first member. The ops are stored by value so
 * that the library needs no writable or relocated tables. */
struct tern_link {
    struct tern_link_ops ops;
    struct tern_link_info info;
    struct tern_link_stats stats;
};

TERN_API size_t tern_link_send(struct tern_link *l, const struct tern_frame *frames,
                               size_t n, tern_time_t now);
TERN_API size_t tern_link_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                               tern_time_t now);
TERN_API tern_time_t tern_link_next_deadline(struct tern_link *l, tern_time_t now);
TERN_API int tern_link_pollfd(struct tern_link *l);
TERN_API void tern_link_free(struct tern_link *l);

/* ---- In-memory wire: a shared segment joining two or more stacks. ----
 * Every frame sent on one port is delivered, as a copy, to every other
 * port (a hub). Frames are delivered at once; put an impairment wrapper on
 * a port for delay, loss and the rest. Each port's receive queue is bounded
 * (queue_limit frames); overflow is counted in the port's rx_dropped.
 * Ports offer TERN_LINK_CAP_TX_CSUM: frames keep TERN_FRAME_CSUM_PENDING
 * from sender to receivers, so a reader that is not a stack calls
 * tern_frame_csum_fill() on what it receives. */
struct tern_wire;
struct tern_wire_config {
    uint32_t mtu;          /* default 1500 */
    uint32_t queue_limit;  /* frames per port, default 1024 */
    /* Ports offer TERN_LINK_CAP_TSO and pass a super-frame on whole with
     * its gso_size, as a veth pair with GSO and GRO does: the stacks cut
     * nothing and take it as the segments it holds. Default false: every
     * frame within the MTU, as a real wire carries them. */
    bool offload;
};
TERN_API void tern_wire_config_default(struct tern_wire_config *cfg);
TERN_API struct tern_wire *tern_wire_new(const struct tern_wire_config *cfg);
/* A new port on the wire. Ports may be freed with tern_link_free() before
 * the wire; tern_wire_free() frees the ports still attached. */
TERN_API struct tern_link *tern_wire_port_new(struct tern_wire *w);
TERN_API void tern_wire_free(struct tern_wire *w);

/* ---- Impairment: a wrapper that degrades one direction or both. ----
 * Probabilities are in parts per million so runs are exact and
 * reproducible for a given seed. */
struct tern_impair_config {
    uint32_t loss_ppm;       /* frame dropped */
    uint32_t duplicate_ppm;  /* frame delivered twice */
    uint32_t corrupt_ppm;    /* one random bit flipped past the Ethernet header */
    uint32_t reorder_ppm;    /* frame held back by reorder_ns more than others */
    tern_time_t delay_ns;    /* fixed one-way delay */
    tern_time_t jitter_ns;   /* uniform extra delay in [0, jitter_ns] */
    tern_time_t reorder_ns;  /* extra delay of a reordered frame */
    uint64_t rate_bps;       /* serialisation rate, 0 = unlimited */
    uint32_t mtu;            /* frames whose payload exceeds it are dropped; 0 = inner's */
    uint32_t queue_limit;    /* frames held at once; default 4096 when 0 */
};
/* Wraps inner (taking ownership). tx applies to frames the stack sends,
 * rx to frames it receives; either may be NULL for a clean direction.
 * Returns NULL and sets errno on failure (inner is then freed too). */
TERN_API struct tern_link *tern_impair_new(struct tern_link *inner,
                                           const struct tern_impair_config *tx,
                                           const struct tern_impair_config *rx,
                                           uint64_t seed);

/* ---- Pcap tee: records every frame in both directions. ----
 * Writes a nanosecond-resolution pcap (LINKTYPE_ETHERNET) with `now` as
 * the timestamp. Takes ownership of inner. NULL and errno on failure
 * (inner is then freed too). */
TERN_API struct tern_link *tern_pcap_tee_new(struct tern_link *inner, const char *path);

/* ---- Linux TAP device. ----
 * Attaches to TAP device `name` (created if it does not exist, which needs
 * CAP_NET_ADMIN) without packet information headers, non-blocking. The
 * device's MTU is read from the kernel. NULL and errno on failure. */
TERN_API struct tern_link *tern_tap_open(const char *name);

/* As tern_tap_open. Unless TERN_TAP_NO_OFFLOAD, the device is opened with
 * a virtio-net header (IFF_VNET_HDR) and the kernel is told Tern takes
 * partial checksums and TCP/IPv4 super-frames (TUN_F_CSUM, TUN_F_TSO4):
 * the link then offers TERN_LINK_CAP_TX_CSUM and TERN_LINK_CAP_TSO and
 * receives coalesced frames of up to 64 KiB, so a 64 KiB burst crosses
 * in one system call instead of forty-five. Where the kernel refuses,
 * the device works without offloads. */
enum tern_tap_flags {
    TERN_TAP_NO_OFFLOAD = 1u << 0,
};
TERN_API struct tern_link *tern_tap_open_flags(const char *name, unsigned flags);

#endif
