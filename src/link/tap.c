/* Linux TAP driver: Ethernet frames through /dev/net/tun.
 *
 * IFF_NO_PI so that each read() and write() is exactly one frame
 * (Documentation/networking/tuntap.rst). Attaching to a name that exists
 * (a persistent device from `ip tuntap add`) is what TUNSETIFF does anyway;
 * the test script, not this driver, configures addresses and brings the
 * device up.
 *
 * Offloads (unless TERN_TAP_NO_OFFLOAD): with IFF_VNET_HDR every frame is
 * preceded by a struct virtio_net_hdr, in the byte order of the host (the
 * legacy layout, no TUNSETVNETLE). Outbound, it tells the kernel a
 * checksum is partial (VIRTIO_NET_HDR_F_NEEDS_CSUM: the field holds the
 * pseudo-header sum, csum_start/csum_offset locate it) and that a frame
 * is a TCP super-frame (GSO_TCPV4, gso_size), which the kernel takes
 * whole to a local socket or cuts up on the way out. Inbound, TUNSETOFFLOAD
 * (TUN_F_CSUM | TUN_F_TSO4) lets the kernel hand over the same: partial
 * or already verified checksums and coalesced TCP frames of up to 64 KiB.
 * This is the interface QEMU's and gVisor's TAP back ends use. */
#include <tern/link.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wire/bytes.h"
#include "wire/checksum.h"
#include "wire/eth.h"
#include "wire/ipv4.h"

struct tap_link {
    struct tern_link link; /* first */
    int fd;
    bool vnet_hdr; /* frames carry a struct virtio_net_hdr */
    /* A frame longer than the caller's buffer lands here, so that the
     * kernel never sees a short buffer (it would drop the frame and fail
     * the read with EFAULT) and the frame is counted as too long. */
    uint8_t overflow[TERN_LINK_MAX_FRAME];
};

/* The virtio-net header for an outbound frame. A pending checksum
 * becomes a partial one: the pseudo-header sum goes in the field, as
 * Linux's CHECKSUM_PARTIAL has it, and the kernel finishes the sum
 * wherever the bytes leave it (a local socket trusts it as is). */
static void vnet_hdr_for(const struct tern_frame *f, struct virtio_net_hdr *h)
{
    memset(h, 0, sizeof(*h));
    if (!(f->flags & TERN_FRAME_CSUM_PENDING))
        return;
    uint8_t *ip = f->data + TERN_ETH_HLEN;
    size_t ihl = 0, field = 0;
    bool ok = f->len > TERN_ETH_HLEN && tern_get16(f->data + 12) == TERN_ETHERTYPE_IPV4 &&
              tern_ipv4_l4_csum_at(ip, f->len - TERN_ETH_HLEN, &ihl, &field);
    if (!ok) {
        /* Nothing the kernel could finish: done here. The frame is the
         * caller's, borrowed, but the flag promised these bytes to us. */
        struct tern_frame copy = *f;
        tern_frame_csum_fill(&copy);
        return;
    }
    uint8_t proto = ip[9];
    uint16_t l4len = (uint16_t)(tern_get16(ip + 2) - ihl);
    uint32_t pseudo = tern_csum_pseudo4(tern_get32(ip + 12), tern_get32(ip + 16), proto, l4len);
    tern_put16(ip + ihl + field, (uint16_t)~tern_csum_fold(pseudo));
    h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h->csum_start = (uint16_t)(TERN_ETH_HLEN + ihl);
    h->csum_offset = (uint16_t)field;
    if (f->gso_size && proto == TERN_IPPROTO_TCP) {
        h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
        h->gso_size = f->gso_size;
        h->hdr_len = (uint16_t)(TERN_ETH_HLEN + ihl + (size_t)(ip[ihl + 12] >> 4) * 4);
    }
}

static size_t tap_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                       tern_time_t now)
{
    struct tap_link *t = (struct tap_link *)l;
    size_t sent = 0;
    (void)now;

    for (size_t i = 0; i < n; i++) {
        struct virtio_net_hdr vh;
        struct iovec iov[2] = {
            {.iov_base = &vh, .iov_len = sizeof(vh)},
            {.iov_base = frames[i].data, .iov_len = frames[i].len},
        };
        if (t->vnet_hdr) {
            vnet_hdr_for(&frames[i], &vh);
        } else {
            struct tern_frame copy = frames[i];
            tern_frame_csum_fill(&copy); /* no offer was made: never pending */
        }
        int first = t->vnet_hdr ? 0 : 1;
        size_t want = frames[i].len + (t->vnet_hdr ? sizeof(vh) : 0);
        ssize_t r;
        do {
            r = writev(t->fd, iov + first, 2 - first);
        } while (r < 0 && errno == EINTR);
        if (r < 0 || (size_t)r != want) {
            l->stats.tx_dropped++;
            continue;
        }
        l->stats.tx_frames++;
        l->stats.tx_bytes += frames[i].len;
        sent++;
    }
    return sent;
}

static size_t tap_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                       tern_time_t now)
{
    struct tap_link *t = (struct tap_link *)l;
    size_t filled = 0;
    (void)now;

    while (filled < n) {
        struct tern_frame *f = &frames[filled];
        struct virtio_net_hdr vh;
        struct iovec iov[3] = {
            {.iov_base = &vh, .iov_len = sizeof(vh)},
            {.iov_base = f->data, .iov_len = f->cap},
            {.iov_base = t->overflow, .iov_len = sizeof(t->overflow)},
        };
        int first = t->vnet_hdr ? 0 : 1;
        ssize_t r = readv(t->fd, iov + first, 3 - first);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break; /* EAGAIN: drained; anything else: try again next poll */
        size_t len = (size_t)r;
        if (t->vnet_hdr) {
            if (len < sizeof(vh)) {
                l->stats.rx_dropped++;
                continue;
            }
            len -= sizeof(vh);
        }
        if (len > f->cap) {
            l->stats.rx_dropped++;
            continue;
        }
        f->len = len;
        f->flags = 0;
        f->gso_size = 0;
        if (t->vnet_hdr) {
            /* Partial (the kernel's own, never damaged) or verified by the
             * kernel: either way nothing to verify, and a reader that
             * needs the bytes right fills it (tern_frame_csum_fill). */
            if (vh.flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
                f->flags = TERN_FRAME_CSUM_PENDING;
            if ((vh.gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4)
                f->gso_size = vh.gso_size;
        }
        l->stats.rx_frames++;
        l->stats.rx_bytes += f->len;
        filled++;
    }
    return filled;
}

static int tap_pollfd(struct tern_link *l)
{
    return ((struct tap_link *)l)->fd;
}

static void tap_destroy(struct tern_link *l)
{
    struct tap_link *t = (struct tap_link *)l;
    if (t->fd >= 0) {
        if (t->vnet_hdr)
            (void)ioctl(t->fd, TUNSETOFFLOAD, 0ul); /* leave the device as found */
        close(t->fd);
    }
    free(t);
}

static int read_mtu(const char *name, uint32_t *mtu)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
    int r = ioctl(s, SIOCGIFMTU, &ifr);
    int err = errno;
    close(s);
    if (r < 0) {
        errno = err;
        return -1;
    }
    *mtu = (uint32_t)ifr.ifr_mtu;
    return 0;
}

/* The device was opened with IFF_VNET_HDR (its header is then a struct
 * virtio_net_hdr, 10 bytes, until TUNSETVNETHDRSZ says otherwise). */
static void use_offloads(struct tap_link *t)
{
    t->vnet_hdr = true;
    t->link.info.caps = TERN_LINK_CAP_TX_CSUM | TERN_LINK_CAP_TSO;
    /* What the kernel may hand us: without this it cuts and sums
     * everything itself, and the frames stay MTU-sized. */
    if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4)) == 0)
        t->link.info.rx_frame_max = TERN_LINK_MAX_FRAME;
}

struct tern_link *tern_tap_open(const char *name)
{
    return tern_tap_open_flags(name, 0);
}

/* name NULL or "" lets the kernel pick one (tap0, tap1, ...). */
struct tern_link *tern_tap_open_flags(const char *name, unsigned flags)
{
    if (name && strlen(name) >= IFNAMSIZ) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    if (flags & ~(unsigned)TERN_TAP_NO_OFFLOAD) {
        errno = EINVAL;
        return NULL;
    }
    struct tap_link *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    bool offload = !(flags & TERN_TAP_NO_OFFLOAD);
    unsigned int features = 0;
    if (offload && t->fd >= 0 &&
        (ioctl(t->fd, TUNGETFEATURES, &features) < 0 || !(features & IFF_VNET_HDR)))
        offload = false;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0));
    if (name)
        memcpy(ifr.ifr_name, name, strlen(name));
    if (t->fd < 0 || ioctl(t->fd, TUNSETIFF, &ifr) < 0 ||
        read_mtu(ifr.ifr_name, &t->link.info.mtu) != 0) {
        int err = errno;
        tap_destroy(&t->link);
        errno = err;
        return NULL;
    }
    if (offload) {
        use_offloads(t);
    } else {
        /* The offloads are the device's, not this descriptor's: a
         * persistent device keeps what an earlier user asked for, and the
         * kernel would hand us frames we cannot take. */
        (void)ioctl(t->fd, TUNSETOFFLOAD, 0ul);
    }
    /* A read and a write on the descriptor may run at once; the two
     * directions share nothing here but the fd (and stats fields of
     * their own). */
    t->link.info.caps |= TERN_LINK_CAP_TX_UNLOCKED;
    t->link.ops.send = tap_send;
    t->link.ops.recv = tap_recv;
    t->link.ops.pollfd = tap_pollfd;
    t->link.ops.destroy = tap_destroy;
    /* The kernel fills the name in when it picked one. */
    memcpy(t->link.info.name, ifr.ifr_name, IFNAMSIZ);
    return &t->link;
}
