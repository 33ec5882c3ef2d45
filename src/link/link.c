/* The generic link calls: dispatch to the driver's ops. Drivers keep their
 * own stats; these wrappers only supply the defaults for optional ops. */
#include <tern/link.h>

size_t tern_link_send(struct tern_link *l, const struct tern_frame *frames, size_t n,
                      tern_time_t now)
{
    return l->ops.send(l, frames, n, now);
}

size_t tern_link_recv(struct tern_link *l, struct tern_frame *frames, size_t n,
                      tern_time_t now)
{
    return l->ops.recv(l, frames, n, now);
}

tern_time_t tern_link_next_deadline(struct tern_link *l, tern_time_t now)
{
    if (!l->ops.next_deadline)
        return TERN_TIME_NEVER;
    return l->ops.next_deadline(l, now);
}

int tern_link_pollfd(struct tern_link *l)
{
    if (!l->ops.pollfd)
        return -1;
    return l->ops.pollfd(l);
}

/* Like free(), NULL is allowed so that error paths can free unconditionally. */
void tern_link_free(struct tern_link *l)
{
    if (l)
        l->ops.destroy(l);
}
