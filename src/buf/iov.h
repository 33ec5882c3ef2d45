/* Gather and scatter between iovecs and flat buffers. */
#ifndef TERN_BUF_IOV_H
#define TERN_BUF_IOV_H

#include <stddef.h>
#include <string.h>
#include <sys/uio.h>

/* Copy len bytes gathered from iov into dst. */
static inline void tern_iov_gather(void *dst, const struct iovec *iov, size_t iovcnt, size_t len)
{
    char *d = dst;
    for (size_t i = 0; i < iovcnt && len > 0; i++) {
        size_t n = iov[i].iov_len < len ? iov[i].iov_len : len;
        if (n)
            memcpy(d, iov[i].iov_base, n);
        d += n;
        len -= n;
    }
}

/* Scatter up to len bytes of src over iov; returns the bytes copied. */
static inline size_t tern_iov_scatter(const struct iovec *iov, size_t iovcnt, const void *src,
                                      size_t len)
{
    const char *p = src;
    size_t done = 0;
    for (size_t i = 0; i < iovcnt && done < len; i++) {
        size_t n = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
        if (n)
            memcpy(iov[i].iov_base, p + done, n);
        done += n;
    }
    return done;
}

#endif
