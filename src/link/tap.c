/* Linux TAP driver: Ethernet frames through /dev/net/tun.
 *
 * IFF_NO_PI so that each read() and write() is exactly one frame
 * (Documentation/networking/tuntap.rst). Attaching to a name that exists
 * (a persistent device from `ip tuntap add`) is what TUNSETIFF does anyway;
 * the test script, not this driver, configures addresses and brings the
 * device up. */
#include <tern/link.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

struct tap_link {
    struct tern_link link; /* first */
    int fd;
    /* A frame longer than the caller's buffer lands here, so that the
     * kernel never sees a short buffer (it would drop the frame and fail
     * the read with EFAULT) and the frame is counted as too long. */
    uint8_t overflow[TERN_LINK_MAX_FRAME];
};

static size_t tap_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                       tern_time_t now)
{
    struct tap_link *t = (struct tap_link *)l;
    size_t sent = 0;
    (void)now;

    for (size_t i = 0; i < n; i++) {
        ssize_t r;
        do {
            r = write(t->fd, frames[i].data, frames[i].len);
        } while (r < 0 && errno == EINTR);
        if (r < 0 || (size_t)r != frames[i].len) {
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
        struct iovec iov[2] = {
            { .iov_base = f->data, .iov_len = f->cap },
            { .iov_base = t->overflow, .iov_len = sizeof(t->overflow) },
        };
        ssize_t r = readv(t->fd, iov, 2);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break; /* EAGAIN: drained; anything else: try again next poll */
        if ((size_t)r > f->cap) {
            l->stats.rx_dropped++;
            continue;
        }
        f->len = (size_t)r;
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
    if (t->fd >= 0)
        close(t->fd);
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

/* name NULL or "" lets the kernel pick one (tap0, tap1, ...). */
struct tern_link *tern_tap_open(const char *name)
{
    if (name && strlen(name) >= IFNAMSIZ) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    struct tap_link *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (name)
        memcpy(ifr.ifr_name, name, strlen(name));
    if (t->fd < 0 || ioctl(t->fd, TUNSETIFF, &ifr) < 0 ||
        read_mtu(ifr.ifr_name, &t->link.info.mtu) != 0) {
        int err = errno;
        tap_destroy(&t->link);
        errno = err;
        return NULL;
    }
    t->link.ops.send = tap_send;
    t->link.ops.recv = tap_recv;
    t->link.ops.pollfd = tap_pollfd;
    t->link.ops.destroy = tap_destroy;
    /* The kernel fills the name in when it picked one. */
    memcpy(t->link.info.name, ifr.ifr_name, IFNAMSIZ);
    return &t->link;
}
