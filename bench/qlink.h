/*
 * A bench-local link for one thread per stack (not library API).
 *
 * Two ports joined by a pair of single-producer single-consumer rings of
 * frame slots, one per direction: port i sends into ring i and receives
 * from ring 1-i. Each port is a struct tern_link used by exactly one
 * thread at a time (its stack's), so the rings are the only shared state:
 * indices are C11 atomics, a slot is written before the producer publishes
 * the tail (release) and read after the consumer sees it (acquire).
 *
 * Waiting: a thread with nothing to do calls qlink_wait(), which spins a
 * little, then sleeps on a futex until the peer sends or a deadline comes.
 * A sender wakes its peer only when the peer said it is asleep, so a busy
 * transfer makes no system call per frame: the receiver drains a whole
 * batch per wake-up. A full ring refuses frames (TCP sees a loss).
 */
#ifndef TERN_BENCH_QLINK_H
#define TERN_BENCH_QLINK_H

#include <tern/link.h>

struct qlink;

/* mtu: largest IP packet; slots are sized for it, or for a 64 KiB
 * super-frame with offload (the ports then offer TERN_LINK_CAP_TSO and
 * pass super-frames on whole, as tern_wire's offload does). */
struct qlink *qlink_new(uint32_t mtu, bool offload);
/* The two ends, owned by the qlink (do not tern_link_free them). */
struct tern_link *qlink_port(struct qlink *q, int side);
/* Block the calling thread (which owns `side`) until a frame waits for
 * it, qlink_kick(side) is called, or the monotonic clock reaches
 * `deadline` (ns). Spins up to spin_ns first. */
void qlink_wait(struct qlink *q, int side, tern_time_t deadline, uint64_t spin_ns);
/* Wake side's thread if it waits (e.g. to tell it to stop). */
void qlink_kick(struct qlink *q, int side);
/* Futex wake-ups sent, and frames refused because a ring was full. */
uint64_t qlink_wakeups(const struct qlink *q);
uint64_t qlink_refused(const struct qlink *q);
void qlink_free(struct qlink *q);

#endif
