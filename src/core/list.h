/* Intrusive circular doubly-linked lists (the BSD TAILQ idea, smaller). */
#ifndef TERN_CORE_LIST_H
#define TERN_CORE_LIST_H

#include <stddef.h>
#include <stdbool.h>

struct tern_list {
    struct tern_list *next, *prev;
};

#define tern_container_of(ptr, type, member)                                   \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void tern_list_init(struct tern_list *h) { h->next = h->prev = h; }
static inline bool tern_list_empty(const struct tern_list *h) { return h->next == h; }
/* A node that is on no list points at itself (after init or remove). */
static inline bool tern_list_linked(const struct tern_list *n) { return n->next != n; }

static inline void tern_list_insert_before(struct tern_list *pos, struct tern_list *n)
{
    n->next = pos;
    n->prev = pos->prev;
    pos->prev->next = n;
    pos->prev = n;
}
static inline void tern_list_push_back(struct tern_list *h, struct tern_list *n)
{
    tern_list_insert_before(h, n);
}
static inline void tern_list_push_front(struct tern_list *h, struct tern_list *n)
{
    tern_list_insert_before(h->next, n);
}
static inline void tern_list_remove(struct tern_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = n;
}
static inline struct tern_list *tern_list_pop_front(struct tern_list *h)
{
    if (tern_list_empty(h))
        return NULL;
    struct tern_list *n = h->next;
    tern_list_remove(n);
    return n;
}

/* Move every node of src to the (empty) dst; src is left empty. */
static inline void tern_list_splice_init(struct tern_list *dst, struct tern_list *src)
{
    tern_list_init(dst);
    if (tern_list_empty(src))
        return;
    dst->next = src->next;
    dst->prev = src->prev;
    dst->next->prev = dst;
    dst->prev->next = dst;
    tern_list_init(src);
}

#define tern_list_for_each(it, head) for ((it) = (head)->next; (it) != (head); (it) = (it)->next)
/* Safe against removal of `it` inside the loop. */
#define tern_list_for_each_safe(it, tmp, head)                                 \
    for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head);              \
         (it) = (tmp), (tmp) = (it)->next)

#endif
