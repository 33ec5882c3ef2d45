/*
 * The sender's SACK scoreboard (RFC 2018) and what RFC 6675's loss
 * recovery asks of it: which bytes above SND.UNA the peer holds, which
 * holes are lost (IsLost), how much is in the network (SetPipe), and what
 * to send next (NextSeg).
 *
 * Shape. A sorted array of disjoint, non-adjacent SACKed ranges strictly
 * above SND.UNA and at or below SND.MAX; the holes are the gaps between
 * SND.UNA and the ranges. It is allocated when the first SACK block
 * arrives and freed when the cumulative ACK passes every range, so a
 * connection without loss pays only a pointer. At most
 * TERN_TCP_SACKBOARD_MAX ranges are kept; a block that would need more is
 * not recorded (counted): knowing less only makes recovery slower, never
 * wrong, since nothing is freed from the send buffer until it is
 * cumulatively acknowledged (RFC 2018 section 8: the receiver may renege).
 *
 * Ownership: a value inside the TCB; single-threaded like the core.
 */
#ifndef TERN_TRANSPORT_TCP_SACK_H
#define TERN_TRANSPORT_TCP_SACK_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/tcp/tcp_cc.h"
#include "wire/tcp.h"

#define TERN_TCP_SACKBOARD_MAX 32
#define TERN_TCP_DUPTHRESH 3 /* RFC 5681, RFC 6675: where DupThresh starts */
/* DupThresh grows with the reordering a connection sees (tcp_input.c), up
 * to this many segments (Linux's tcp_max_reordering is 300; in force it
 * is capped by the flight anyway: tern_tcp_dupthresh). */
#define TERN_TCP_REORDERING_MAX 127

/* The recovery's first retransmission, [seq, end), with TSval tsval if
 * eifel: by it tcp_input.c tells whether the original came late after
 * all (RFC 3522), and then undoes the window cut to what it was before
 * (RFC 9438 4.9). */
struct tern_tcp_sack_rxt1 {
    uint32_t seq, end, tsval;
    bool eifel;                    /* tsval holds: its first resending, with timestamps */
    uint32_t cwnd, ssthresh;       /* before the recovery's cut */
    union tern_tcp_cc_state cc;    /* the algorithm's state before it */
};

struct tern_tcp_sack_ranges {
    uint8_t n;
    bool rxt_on;           /* a retransmission is being watched */
    uint32_t sacked_bytes;
    /* The oldest retransmission of this recovery not known to have
     * arrived: [rxt_seq, rxt_end), sent when SND.MAX was rxt_max. */
    uint32_t rxt_seq, rxt_end, rxt_max;
    /* The recovery's first retransmission (see below). Kept here, not
     * in the connection block: the board exists from that
     * retransmission until the hole it filled is. */
    bool rxt1_on;
    struct tern_tcp_sack_rxt1 rxt1;
    struct tern_tcp_sack_block r[TERN_TCP_SACKBOARD_MAX];
};

struct tern_tcp_sackboard {
    struct tern_tcp_sack_ranges *rs; /* NULL while empty */
};

/* What one ACK's SACK option did to the board. */
struct tern_tcp_sack_news {
    bool new_sacked; /* some byte was SACKed for the first time */
    uint8_t dsack;   /* D-SACK blocks (RFC 2883): reported, then ignored */
    uint32_t dsack_end; /* where the D-SACK block ends, if dsack */
    uint8_t invalid; /* blocks outside (una, max]: ignored */
    uint8_t dropped; /* valid blocks the full board could not take */
    bool has_low_new; /* low_new holds: */
    uint32_t low_new; /* the lowest byte SACKed for the first time */
};

void tern_tcp_sack_init(struct tern_tcp_sackboard *b);
void tern_tcp_sack_clear(struct tern_tcp_sackboard *b);
/* Forget what the cumulative ACK `una` covers. */
void tern_tcp_sack_advance(struct tern_tcp_sackboard *b, uint32_t una);
/* Record the blocks of an ACK whose cumulative ACK `una` has been
 * applied, for data up to `max` (SND.MAX). */
struct tern_tcp_sack_news tern_tcp_sack_update(struct tern_tcp_sackboard *b, uint32_t una,
                                               uint32_t max,
                                               const struct tern_tcp_sack_block *blocks,
                                               unsigned n);
static inline bool tern_tcp_sack_empty(const struct tern_tcp_sackboard *b)
{
    return !b->rs || b->rs->n == 0;
}
/* The bytes the board holds as SACKed. */
uint32_t tern_tcp_sack_bytes(const struct tern_tcp_sackboard *b);
/* The end of the highest SACKed range (Linux's "fack"): false if none. */
bool tern_tcp_sack_fack(const struct tern_tcp_sackboard *b, uint32_t *fack);
/* The functions below take DupThresh (`dupthresh`, in segments) from the
 * connection: TERN_TCP_DUPTHRESH, or more once reordering was seen. */
/* RFC 6675 IsLost(seq) for an unSACKed seq above una. */
bool tern_tcp_sack_is_lost(const struct tern_tcp_sackboard *b, uint32_t seq, uint32_t smss,
                           unsigned dupthresh);
/* RFC 6675 SetPipe: unSACKed bytes in [una, max) not deemed lost, plus
 * those below high_rxt (sent again). */
uint32_t tern_tcp_sack_pipe(const struct tern_tcp_sackboard *b, uint32_t una, uint32_t max,
                            uint32_t high_rxt, uint32_t smss, unsigned dupthresh);
/* RFC 6675 NextSeg rules (1) and (3): the next hole bytes to retransmit,
 * at or above high_rxt: lost ones first (rule 1); with rule 3 allowed,
 * else any hole. False if none. *len is at most smss. */
bool tern_tcp_sack_next_hole(const struct tern_tcp_sackboard *b, uint32_t una, uint32_t high_rxt,
                             uint32_t smss, unsigned dupthresh, bool lost_only, uint32_t *seq,
                             uint32_t *len);
/* Is seq inside a SACKed range? */
bool tern_tcp_sack_holds(const struct tern_tcp_sackboard *b, uint32_t seq);

/* Remember the recovery's first retransmission (nothing without a
 * board); read it back (false if none), forgetting it. */
void tern_tcp_sack_rxt1_note(struct tern_tcp_sackboard *b, const struct tern_tcp_sack_rxt1 *r);
bool tern_tcp_sack_rxt1_take(struct tern_tcp_sackboard *b, struct tern_tcp_sack_rxt1 *r);

/* Lost retransmissions. RFC 6675 retransmits each hole once; if that
 * copy is lost too, only the retransmission timer finds out. The board
 * watches one retransmission at a time: the first sent while none is
 * watched (the recovery's first, then whichever goes next once the
 * watched one arrived or was resent). When data sent after it is SACKed
 * as IsLost would count it (DupThresh segments' worth) while it is
 * still missing, it is lost as surely as a first copy would be (the
 * idea of Linux's lost-retransmit marking and of RACK, RFC 8985
 * section 6.2, in a sequence-number form that needs no time per
 * segment). Retransmissions sent beside the watched one are not
 * watched, and the watch goes with the board when the cumulative ACK
 * passes every SACKed range: those still cost a timeout if lost again. */
/* Watch [seq, end), sent when SND.MAX was max, unless one is watched. */
void tern_tcp_sack_rxt_note(struct tern_tcp_sackboard *b, uint32_t seq, uint32_t end,
                            uint32_t max);
/* Forget the watched retransmission (a new recovery, a timeout). */
void tern_tcp_sack_rxt_forget(struct tern_tcp_sackboard *b);
/* After an ACK: true, with what to send again in *seq and *len (at most
 * smss), when the watched retransmission is lost; it is forgotten, to be
 * noted again when resent. A watched one acked or SACKed is forgotten. */
bool tern_tcp_sack_rxt_lost(struct tern_tcp_sackboard *b, uint32_t una, uint32_t smss,
                            unsigned dupthresh, uint32_t *seq, uint32_t *len);

#endif
