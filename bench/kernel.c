/* Kernel socket helpers for the benchmarks (127.0.0.1 only). */
#include "kernel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int kernel_listener(struct sockaddr_in *addr, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *addr = a;
    return fd;
}

int kernel_linger0(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void kernel_sysctl(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    snprintf(buf, len, "?");
    if (!f)
        return;
    if (fgets(buf, (int)len, f)) {
        buf[strcspn(buf, "\n")] = 0;
        for (char *p = buf; *p; p++)
            if (*p == '\t')
                *p = ' ';
    }
    fclose(f);
}

struct netns_job {
    unsigned mtu;
    bool offload;
    int listener, client, err;
    struct sockaddr_in addr;
};

/* Turn one of lo's offloads off (a legacy ethtool command). */
static int lo_offload_off(int ctl, uint32_t cmd)
{
    struct ethtool_value v = {.cmd = cmd, .data = 0};
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    ifr.ifr_data = (void *)&v;
    return ioctl(ctl, SIOCETHTOOL, &ifr);
}

/* A network namespace is per thread: this thread moves into a new one,
 * makes the sockets there and ends; the sockets keep the namespace. */
static void *netns_thread(void *arg)
{
    struct netns_job *j = arg;
    j->listener = j->client = -1;
    if (unshare(CLONE_NEWNET) < 0) {
        j->err = errno;
        return NULL;
    }
    int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    ifr.ifr_mtu = (int)j->mtu;
    if (ctl < 0 || ioctl(ctl, SIOCSIFMTU, &ifr) < 0)
        goto fail;
    /* Without offloads TCP hands lo one MSS-sized packet at a time. */
    if (!j->offload && (lo_offload_off(ctl, ETHTOOL_STSO) < 0 ||
                        lo_offload_off(ctl, ETHTOOL_SGSO) < 0))
        goto fail;
    memset(&ifr.ifr_ifru, 0, sizeof(ifr.ifr_ifru));
    if (ioctl(ctl, SIOCGIFFLAGS, &ifr) < 0)
        goto fail;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(ctl, SIOCSIFFLAGS, &ifr) < 0)
        goto fail;
    close(ctl);
    ctl = -1;
    j->listener = kernel_listener(&j->addr, 16);
    if (j->listener < 0)
        goto fail;
    j->client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (j->client < 0)
        goto fail;
    return NULL;
fail:
    j->err = errno;
    if (ctl >= 0)
        close(ctl);
    if (j->listener >= 0)
        close(j->listener);
    j->listener = -1;
    return NULL;
}

int kernel_netns_sockets(unsigned mtu, bool offload, int *listener, struct sockaddr_in *addr,
                         int *client)
{
    struct netns_job j = {.mtu = mtu, .offload = offload};
    pthread_t th;
    int e = pthread_create(&th, NULL, netns_thread, &j);
    if (e) {
        errno = e;
        return -1;
    }
    pthread_join(th, NULL);
    if (j.listener < 0) {
        errno = j.err;
        return -1;
    }
    *listener = j.listener;
    *client = j.client;
    *addr = j.addr;
    return 0;
}
