/* A zeroed allocation for blocks made and freed with every connection
 * (sockets, handshake records, TIME_WAIT records). glibc's calloc skips
 * its per-thread cache and always takes the arena's slow path; malloc
 * then zeroing reuses the block a connection just gave back. The zeroing
 * is explicit_bzero because GCC turns malloc plus memset back into
 * calloc. */
#ifndef TERN_CORE_ZALLOC_H
#define TERN_CORE_ZALLOC_H

#include <stdlib.h>
#include <string.h>

static inline void *tern_zalloc(size_t size)
{
    void *p = malloc(size);
    if (p)
        explicit_bzero(p, size);
    return p;
}

#endif
