/* The state x event table of issue 3: Tern is driven into every state
 * of RFC 9293 by named fixtures, the test playing the peer on the
 * harness's raw port (host 192.0.2.100, crafting every segment itself),
 * and then each kind of segment arrives. What Tern sends back, the state
 * it moves to and the error the application sees are checked against
 * ROWS below: data, one rule per row, each citing the paragraph of
 * RFC 9293 section 3.10.7, RFC 5961 or RFC 1337 it follows. A row covers
 * a set of states and a set of events; the walk asserts that every
 * (state, event) cell is covered by exactly one row, so the table is
 * complete and has no contradictions.
 *
 * The peer offers no window scaling, SACK or timestamps: windows on the
 * wire are then plain byte counts and PAWS stays out of the picture.
 *
 * States are observed through getsockopt(TCP_INFO).tcpi_state where the
 * application still has a handle. TIME_WAIT is observed through
 * tern_live.tcp_timewait and on the wire (a retransmitted FIN is acked):
 * it must not depend on a socket, which a TIME_WAIT connection will soon
 * not have. A passive SYN_RECEIVED connection has no handle either: it
 * is observed by accept and, failing that, by completing its handshake. */
#include "testing.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"
#include "transport/tcp/tcp.h"
#include "wire/tcp.h"

#define MS TERN_NS_PER_MS

#define TERN_PORT 4242  /* Tern listens here (passive fixtures) */
#define HOST_PORT 5555  /* the test's own port on the raw host */
#define HOST_ISS 0x10000000u

/* ---- Fixtures: the states Tern can be put in ---- */

enum fixture {
    F_CLOSED,       /* no socket on the port */
    F_LISTEN,
    F_SYN_SENT,
    F_SYN_RCVD_P,   /* passive: a listener's embryonic connection */
    F_SYN_RCVD_A,   /* active: simultaneous open */
    F_ESTABLISHED,  /* with 5 bytes of Tern's unacknowledged */
    F_FIN_WAIT_1,   /* shutdown(SHUT_WR): FIN sent, not acked */
    F_FIN_WAIT_2,
    F_CLOSE_WAIT,   /* the peer's FIN taken; 5 bytes unacknowledged */
    F_CLOSING,      /* FINs crossed, ours not acked */
    F_LAST_ACK,
    F_TIME_WAIT,    /* close()d first, a listener on the port */
    F_TIME_WAIT_C,  /* close()d first as a client: no listener */
    F_COUNT
};

static const struct {
    const char *name;
    enum tern_tcp_state state;
} FIXTURES[F_COUNT] = {
    [F_CLOSED] = {"CLOSED", TCPS_CLOSED},
    [F_LISTEN] = {"LISTEN", TCPS_LISTEN},
    [F_SYN_SENT] = {"SYN_SENT", TCPS_SYN_SENT},
    [F_SYN_RCVD_P] = {"SYN_RECEIVED(passive)", TCPS_SYN_RECEIVED},
    [F_SYN_RCVD_A] = {"SYN_RECEIVED(active)", TCPS_SYN_RECEIVED},
    [F_ESTABLISHED] = {"ESTABLISHED", TCPS_ESTABLISHED},
    [F_FIN_WAIT_1] = {"FIN_WAIT_1", TCPS_FIN_WAIT_1},
    [F_FIN_WAIT_2] = {"FIN_WAIT_2", TCPS_FIN_WAIT_2},
    [F_CLOSE_WAIT] = {"CLOSE_WAIT", TCPS_CLOSE_WAIT},
    [F_CLOSING] = {"CLOSING", TCPS_CLOSING},
    [F_LAST_ACK] = {"LAST_ACK", TCPS_LAST_ACK},
    [F_TIME_WAIT] = {"TIME_WAIT", TCPS_TIME_WAIT},
    [F_TIME_WAIT_C] = {"TIME_WAIT(client)", TCPS_TIME_WAIT},
};

/* ---- Events: the segments the peer sends ---- */

enum event {
    E_SYN,        /* SYN at the peer's ISS: a first or retransmitted SYN */
    E_SYN_INWIN,  /* SYN at RCV.NXT+100: a new SYN inside the window */
    E_SYNACK,     /* SYN,ACK at the peer's ISS acking SND.NXT */
    E_ACK,        /* ACK of SND.NXT (everything Tern sent) */
    E_ACK_DUP,    /* ACK of SND.UNA: nothing new */
    E_ACK_OLD,    /* ACK far below SND.UNA (RFC 5961 5.2) */
    E_ACK_UNSENT, /* ACK past SND.NXT */
    E_DATA,       /* 10 bytes at RCV.NXT */
    E_DATA_OLD,   /* 10 bytes wholly below RCV.NXT */
    E_DATA_PAST,  /* 10 bytes wholly past RCV.NXT+RCV.WND */
    E_FIN,        /* FIN at RCV.NXT */
    E_FIN_OOO,    /* FIN at RCV.NXT+100, after a hole */
    E_FIN_OLD,    /* FIN at RCV.NXT-1: the peer's FIN again once taken */
    E_RST,        /* RST,ACK at exactly RCV.NXT */
    E_RST_INWIN,  /* RST,ACK inside the window, not at RCV.NXT */
    E_RST_PAST,   /* RST,ACK past the window */
    E_RST_NOACK,  /* RST at RCV.NXT without ACK */
    E_COUNT
};

/* Where a sequence or acknowledgment number is taken from: the test's
 * own copy of Tern's variables, learnt from what Tern sent. */
enum base { B_NONE, B_PEER_ISS, B_RCV_NXT, B_RCV_WND_END, B_SND_UNA, B_SND_NXT };

static const struct {
    const char *name;
    uint8_t flags;
    enum base seq;
    int32_t seq_off;
    enum base ack;
    int32_t ack_off;
    uint32_t len;
} EVENTS[E_COUNT] = {
#define SYN_ TERN_TCP_SYN
#define ACK_ TERN_TCP_ACK
#define FIN_ TERN_TCP_FIN
#define RST_ TERN_TCP_RST
    [E_SYN] = {"SYN", SYN_, B_PEER_ISS, 0, B_NONE, 0, 0},
    [E_SYN_INWIN] = {"SYN in window", SYN_, B_RCV_NXT, 100, B_NONE, 0, 0},
    [E_SYNACK] = {"SYN,ACK", SYN_ | ACK_, B_PEER_ISS, 0, B_SND_NXT, 0, 0},
    [E_ACK] = {"ACK", ACK_, B_RCV_NXT, 0, B_SND_NXT, 0, 0},
    [E_ACK_DUP] = {"ACK duplicate", ACK_, B_RCV_NXT, 0, B_SND_UNA, 0, 0},
    [E_ACK_OLD] = {"ACK too old", ACK_, B_RCV_NXT, 0, B_SND_UNA, -0x40000000, 0},
    [E_ACK_UNSENT] = {"ACK of unsent", ACK_, B_RCV_NXT, 0, B_SND_NXT, 1000, 0},
    [E_DATA] = {"data", ACK_ | TERN_TCP_PSH, B_RCV_NXT, 0, B_SND_UNA, 0, 10},
    [E_DATA_OLD] = {"data below window", ACK_ | TERN_TCP_PSH, B_RCV_NXT, -100, B_SND_UNA, 0, 10},
    [E_DATA_PAST] = {"data past window", ACK_ | TERN_TCP_PSH, B_RCV_WND_END, 100, B_SND_UNA, 0,
                     10},
    [E_FIN] = {"FIN", FIN_ | ACK_, B_RCV_NXT, 0, B_SND_UNA, 0, 0},
    [E_FIN_OOO] = {"FIN out of order", FIN_ | ACK_, B_RCV_NXT, 100, B_SND_UNA, 0, 0},
    [E_FIN_OLD] = {"FIN old", FIN_ | ACK_, B_RCV_NXT, -1, B_SND_UNA, 0, 0},
    [E_RST] = {"RST exact", RST_ | ACK_, B_RCV_NXT, 0, B_SND_NXT, 0, 0},
    [E_RST_INWIN] = {"RST in window", RST_ | ACK_, B_RCV_NXT, 100, B_SND_NXT, 0, 0},
    [E_RST_PAST] = {"RST past window", RST_ | ACK_, B_RCV_WND_END, 1000, B_SND_NXT, 0, 0},
    [E_RST_NOACK] = {"RST exact, no ACK", RST_, B_RCV_NXT, 0, B_NONE, 0, 0},
};

/* ---- Reactions: what Tern sends back ---- */

enum reply {
    R_NONE,       /* nothing */
    R_ACK,        /* <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, RCV.NXT unchanged */
    R_CHACK,      /* the same, as an RFC 5961 challenge ACK (counted as one) */
    R_ACK_DATA,   /* <SEQ=SND.NXT><ACK=RCV.NXT+10>: the data taken */
    R_ACK_FIN,    /* <SEQ=SND.NXT><ACK=RCV.NXT+1>: the FIN taken */
    R_ACK_SYN,    /* <SEQ=SND.NXT><ACK=SEG.SEQ+1>: the SYN taken */
    R_RST_SEGACK, /* <SEQ=SEG.ACK><CTL=RST> */
    R_RST_ACK,    /* <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK> */
    R_SYNACK,     /* <SEQ=ISS><ACK=SEG.SEQ+1><CTL=SYN,ACK>, this connection's ISS */
    R_SYNACK_NEW, /* <SEQ=x><ACK=SEG.SEQ+1><CTL=SYN,ACK>: a new connection */
    R_SYNACK_ABOVE, /* the same, x above the old connection's SND.NXT */
};

static const char *const REPLY_NAMES[] = {
    "nothing", "ACK", "challenge ACK", "ACK of data", "ACK of FIN", "ACK of SYN",
    "RST <SEQ=SEG.ACK>", "RST,ACK <SEQ=0><ACK=SEG.SEQ+SEG.LEN>", "SYN,ACK", "SYN,ACK (new)",
    "SYN,ACK (new, ISS above the old SND.NXT)",
};

#define STAY (-1) /* the state the fixture was in */

struct row {
    unsigned fixtures; /* bit per enum fixture */
    unsigned events;   /* bit per enum event */
    enum reply reply;
    int next;          /* enum tern_tcp_state, or STAY */
    int err;           /* SO_ERROR the application then sees */
    const char *rule;
};

#define F(x) (1u << (F_##x))
#define E(x) (1u << (E_##x))
#define SYN_RCVD (F(SYN_RCVD_P) | F(SYN_RCVD_A))
#define TW (F(TIME_WAIT) | F(TIME_WAIT_C))
#define SYNCED (F(ESTABLISHED) | F(FIN_WAIT_1) | F(FIN_WAIT_2) | F(CLOSE_WAIT) | F(CLOSING) | \
                F(LAST_ACK) | TW)
#define SYNCED_LIVE (SYNCED & ~TW)
#define RSTS (E(RST) | E(RST_INWIN) | E(RST_PAST) | E(RST_NOACK))
#define SYNS (E(SYN) | E(SYN_INWIN))
/* Every event that carries an ACK and no RST. */
#define ACKED (E(SYNACK) | E(ACK) | E(ACK_DUP) | E(ACK_OLD) | E(ACK_UNSENT) | E(DATA) | \
               E(DATA_OLD) | E(DATA_PAST) | E(FIN) | E(FIN_OOO) | E(FIN_OLD))

static const struct row ROWS[] = {
    /* CLOSED: no connection (RFC 9293 3.10.7.1). */
    {F(CLOSED), SYNS, R_RST_ACK, STAY, 0,
     "9293 3.10.7.1: no TCB, ACK off: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>"},
    {F(CLOSED), ACKED, R_RST_SEGACK, STAY, 0,
     "9293 3.10.7.1: no TCB, ACK on: <SEQ=SEG.ACK><CTL=RST>"},
    {F(CLOSED), RSTS, R_NONE, STAY, 0, "9293 3.10.7.1: an incoming RST is discarded"},

    /* LISTEN (RFC 9293 3.10.7.2). */
    {F(LISTEN), RSTS, R_NONE, STAY, 0, "9293 3.10.7.2 first: a RST is ignored"},
    {F(LISTEN), ACKED, R_RST_SEGACK, STAY, 0,
     "9293 3.10.7.2 second: any ACK is bad: <SEQ=SEG.ACK><CTL=RST>"},
    {F(LISTEN), SYNS, R_SYNACK_NEW, STAY, 0,
     "9293 3.10.7.2 third: a SYN makes a SYN-RECEIVED connection, <SEQ=ISS><ACK=RCV.NXT>"
     "<CTL=SYN,ACK>; the listener stays"},

    /* SYN_SENT (RFC 9293 3.10.7.3). Data and FIN segments carry
     * ACK = SND.UNA = ISS, which is not acceptable. */
    {F(SYN_SENT),
     E(ACK_DUP) | E(ACK_OLD) | E(ACK_UNSENT) | E(DATA) | E(DATA_OLD) | E(DATA_PAST) | E(FIN) |
         E(FIN_OOO) | E(FIN_OLD),
     R_RST_SEGACK, STAY, 0,
     "9293 3.10.7.3 first: SEG.ACK =< ISS or > SND.NXT: <SEQ=SEG.ACK><CTL=RST>"},
    {F(SYN_SENT), E(RST) | E(RST_INWIN) | E(RST_PAST), R_NONE, TCPS_CLOSED, ECONNREFUSED,
     "9293 3.10.7.3 second: RST with an acceptable ACK: connection reset (refused); "
     "RFC 5961 3.2 checks the sequence in every state except SYN-SENT"},
    {F(SYN_SENT), E(RST_NOACK), R_NONE, STAY, 0,
     "9293 3.10.7.3 second: a RST without ACK is dropped"},
    {F(SYN_SENT), E(SYNACK), R_ACK_SYN, TCPS_ESTABLISHED, 0,
     "9293 3.10.7.3 fourth: our SYN acked: ESTABLISHED, <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"},
    {F(SYN_SENT), SYNS, R_SYNACK, TCPS_SYN_RECEIVED, 0,
     "9293 3.10.7.3 fourth: simultaneous open: SYN-RECEIVED, <SEQ=ISS><ACK=RCV.NXT>"
     "<CTL=SYN,ACK>"},
    {F(SYN_SENT), E(ACK), R_NONE, STAY, 0,
     "9293 3.10.7.3 fifth: neither SYN nor RST: drop"},

    /* SYN_RECEIVED (RFC 9293 3.10.7.4, its SYN-RECEIVED clauses). */
    {SYN_RCVD, E(SYN), R_SYNACK, STAY, 0,
     "the peer's SYN again (SEG.SEQ = IRS): the SYN,ACK is lost, send it again at once, as "
     "Linux does (tcp_check_req; the code says so); 9293 first check would send a bare ACK"},
    {F(SYN_RCVD_A), E(SYN_INWIN), R_CHACK, STAY, 0,
     "9293 3.10.7.4 fourth, active open: as synchronized states, challenge ACK (RFC 5961 4.2)"},
    {F(SYN_RCVD_P), E(SYN_INWIN), R_CHACK, STAY, 0,
     "RFC 5961 4.2 challenge ACK. 9293 3.10.7.4 fourth would return a passive open to LISTEN "
     "on any in-window SYN, a blind kill RFC 5961 closes for RSTs; Tern challenges, and the "
     "peer's RST answer (exact by construction) returns it to LISTEN"},
    {SYN_RCVD, E(SYNACK) | E(DATA_OLD) | E(DATA_PAST) | E(FIN_OLD), R_ACK, STAY, 0,
     "9293 3.10.7.4 first: not acceptable: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, drop "
     "(a simultaneous open's SYN,ACK included: Linux takes it, the RFC acks)"},
    {SYN_RCVD, E(ACK), R_NONE, TCPS_ESTABLISHED, 0,
     "9293 3.10.7.4 fifth: SND.UNA < SEG.ACK =< SND.NXT: ESTABLISHED"},
    {SYN_RCVD,
     E(ACK_DUP) | E(ACK_OLD) | E(ACK_UNSENT) | E(DATA) | E(FIN) | E(FIN_OOO),
     R_RST_SEGACK, STAY, 0,
     "9293 3.10.7.4 fifth, SYN-RECEIVED: ACK not acceptable: <SEQ=SEG.ACK><CTL=RST>"},
    {F(SYN_RCVD_P), E(RST) | E(RST_NOACK), R_NONE, TCPS_CLOSED, 0,
     "9293 3.10.7.4 second, passive open: back to LISTEN, the user need not be informed"},
    {F(SYN_RCVD_A), E(RST) | E(RST_NOACK), R_NONE, TCPS_CLOSED, ECONNREFUSED,
     "9293 3.10.7.4 second, active open: connection refused"},
    {SYN_RCVD, E(RST_INWIN), R_CHACK, STAY, 0,
     "RFC 5961 3.2 (9293 3.10.7.4 second): in window, not RCV.NXT: challenge ACK"},
    {SYN_RCVD, E(RST_PAST), R_NONE, STAY, 0,
     "RFC 5961 3.2 (9293 3.10.7.4 first): a RST out of window is dropped silently"},

    /* Synchronized states (RFC 9293 3.10.7.4). */
    {SYNCED, E(SYN) | E(SYNACK) | E(DATA_OLD) | E(DATA_PAST) | E(FIN_OLD), R_ACK, STAY, 0,
     "9293 3.10.7.4 first: not acceptable: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, drop "
     "(TIME-WAIT: the peer's FIN again is acked and 2MSL restarts)"},
    {SYNCED_LIVE, E(SYN_INWIN), R_CHACK, STAY, 0,
     "9293 3.10.7.4 fourth, RFC 5961 4.2: a SYN in a synchronized state: challenge ACK"},
    {F(TIME_WAIT), E(SYN_INWIN), R_SYNACK_ABOVE, TCPS_CLOSED, 0,
     "9293 3.10.7.4 fourth (TIME-WAIT note), RFC 1122 4.2.2.13: a SYN past RCV.NXT is a new "
     "incarnation; TIME_WAIT ends and the listener answers, as Linux and BSD, from an ISS "
     "above the old SND.NXT"},
    {F(TIME_WAIT_C), E(SYN_INWIN), R_CHACK, STAY, 0,
     "9293 3.10.7.4 fourth, RFC 5961 4.2: with no listener to take it, a SYN cannot reopen "
     "the connection: challenge ACK, TIME-WAIT stays (RFC 1337; Linux acks too)"},
    {F(ESTABLISHED) | F(FIN_WAIT_1) | F(FIN_WAIT_2), E(RST) | E(RST_NOACK), R_NONE,
     TCPS_CLOSED, ECONNRESET,
     "9293 3.10.7.4 second, RFC 5961 3.2 exact RCV.NXT: reset, CLOSED, 'connection reset'"},
    {F(CLOSE_WAIT), E(RST) | E(RST_NOACK), R_NONE, TCPS_CLOSED, EPIPE,
     "9293 3.10.7.4 second: reset, CLOSED; EPIPE, not ECONNRESET, as Linux's tcp_reset "
     "(the reader has had its EOF; the code says so)"},
    {F(CLOSING) | F(LAST_ACK), E(RST) | E(RST_NOACK), R_NONE, TCPS_CLOSED, 0,
     "9293 3.10.7.4 second, CLOSING/LAST-ACK: enter CLOSED, delete the TCB (no user signal)"},
    {SYNCED_LIVE, E(RST_INWIN), R_CHACK, STAY, 0,
     "RFC 5961 3.2 (9293 3.10.7.4 second): in window, not RCV.NXT: challenge ACK"},
    {TW, E(RST) | E(RST_INWIN) | E(RST_NOACK), R_NONE, STAY, 0,
     "RFC 1337 (TIME-WAIT assassination hazards): a RST must not end TIME-WAIT"},
    {SYNCED, E(RST_PAST), R_NONE, STAY, 0,
     "RFC 5961 3.2 (9293 3.10.7.4 first): a RST out of window is dropped silently"},
    {SYNCED, E(ACK_OLD), R_CHACK, STAY, 0,
     "RFC 5961 5.2 (9293 3.10.7.4 fifth): SEG.ACK < SND.UNA - MAX.SND.WND: drop, ACK"},
    {SYNCED, E(ACK_UNSENT), R_ACK, STAY, 0,
     "9293 3.10.7.4 fifth: SEG.ACK > SND.NXT: send an ACK, drop"},
    {SYNCED, E(ACK_DUP), R_NONE, STAY, 0,
     "9293 3.10.7.4 fifth: a duplicate ACK (SEG.ACK =< SND.UNA) is ignored"},
    {F(ESTABLISHED) | F(FIN_WAIT_2) | F(CLOSE_WAIT) | TW, E(ACK), R_NONE, STAY, 0,
     "9293 3.10.7.4 fifth: SND.UNA <- SEG.ACK; nothing to send"},
    {F(FIN_WAIT_1), E(ACK), R_NONE, TCPS_FIN_WAIT_2, 0,
     "9293 3.10.7.4 fifth, FIN-WAIT-1: our FIN acked: FIN-WAIT-2"},
    {F(CLOSING), E(ACK), R_NONE, TCPS_TIME_WAIT, 0,
     "9293 3.10.7.4 fifth, CLOSING: our FIN acked: TIME-WAIT"},
    {F(LAST_ACK), E(ACK), R_NONE, TCPS_CLOSED, 0,
     "9293 3.10.7.4 fifth, LAST-ACK: our FIN acked: delete the TCB, CLOSED"},
    {F(ESTABLISHED) | F(FIN_WAIT_1) | F(FIN_WAIT_2), E(DATA), R_ACK_DATA, STAY, 0,
     "9293 3.10.7.4 seventh: the text is delivered and acked (delayed, RFC 1122 4.2.3.2)"},
    {F(CLOSE_WAIT) | F(CLOSING) | F(LAST_ACK) | TW, E(DATA), R_NONE, STAY, 0,
     "9293 3.10.7.4 seventh: after the peer's FIN the text is ignored"},
    {F(ESTABLISHED), E(FIN), R_ACK_FIN, TCPS_CLOSE_WAIT, 0,
     "9293 3.10.7.4 eighth: FIN acked, CLOSE-WAIT"},
    {F(FIN_WAIT_1), E(FIN), R_ACK_FIN, TCPS_CLOSING, 0,
     "9293 3.10.7.4 eighth, FIN-WAIT-1 with our FIN not acked: CLOSING"},
    {F(FIN_WAIT_2), E(FIN), R_ACK_FIN, TCPS_TIME_WAIT, 0,
     "9293 3.10.7.4 eighth, FIN-WAIT-2: TIME-WAIT"},
    {F(CLOSE_WAIT) | F(CLOSING) | F(LAST_ACK), E(FIN), R_ACK, STAY, 0,
     "9293 3.10.7.4 eighth: remain (a second FIN does not move RCV.NXT again)"},
    {TW, E(FIN), R_ACK, STAY, 0,
     "9293 3.10.7.4 eighth, TIME-WAIT: acknowledge, restart the 2MSL timeout"},
    {SYNCED, E(FIN_OOO), R_ACK, STAY, 0,
     "9293 3.10.7.4 eighth: a FIN past a hole waits (held for later processing); as any "
     "out-of-order segment it is acked at once (RFC 5681 4.2)"},
};

/* ---- The peer: a host on the raw port ---- */

struct host {
    struct sim sim;
    enum fixture fx;
    int fd;   /* Tern's handle on the connection, or -1 */
    int lfd;  /* Tern's listener, or -1 */
    uint16_t tport;
    uint16_t ipid;
    /* Tern's variables as the peer knows them. */
    uint32_t t_iss, t_una, t_nxt, t_wnd;
    uint32_t r_nxt; /* Tern's RCV.NXT: the peer's next sequence number */
};

struct got {
    struct tern_tcp_hdr h;
    uint32_t len;
};

static uint32_t tern_ip(void) { return ntohl(sim_addr(0).s_addr); }

static void host_send(struct host *H, uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len)
{
    uint8_t seg[64], frame[160];
    struct tern_tcp_hdr h = {.sport = HOST_PORT, .dport = H->tport, .seq = seq,
                             .ack = (flags & TERN_TCP_ACK) ? ack : 0, .flags = flags,
                             .wnd = 65535};
    if (flags & TERN_TCP_SYN) {
        h.opt.has_mss = true;
        h.opt.mss = 1460;
    }
    h.hlen = (uint8_t)(TERN_TCP_HLEN + tern_tcp_opts_len(&h.opt));
    assert_true(h.hlen + len <= sizeof(seg));
    for (uint32_t i = 0; i < len; i++)
        seg[h.hlen + i] = (uint8_t)('a' + i);
    tern_tcp_emit(seg, h.hlen + len, SIM_RAW_IP, tern_ip(), &h);
    size_t fl = sim_raw_ipv4(&H->sim, 0, frame, IPPROTO_TCP, H->ipid++, 0, false, seg,
                             h.hlen + len);
    sim_raw_send(&H->sim, frame, fl);
}

/* Let Tern answer (longer than the delayed-ACK time, far shorter than
 * any retransmission timeout), then take every TCP segment it sent. */
static int host_collect(struct host *H, struct got *out, int max)
{
    sim_run(&H->sim, 60 * MS);
    static uint8_t buf[2048];
    int n = 0;
    for (int i = 0; i < 1024; i++) {
        size_t fl = sim_raw_recv(&H->sim, IPPROTO_TCP, buf, sizeof(buf));
        if (fl == 0)
            break;
        const uint8_t *ip = buf + 14;
        size_t ihl = (size_t)(ip[0] & 0xf) * 4, total = (size_t)(ip[2] << 8 | ip[3]);
        struct tern_tcp_hdr h;
        assert_int_equal(tern_tcp_parse(ip + ihl, total - ihl, tern_ip(), SIM_RAW_IP, true, &h),
                         TERN_TCP_OK);
        assert_int_equal(h.dport, HOST_PORT);
        if (!(h.flags & TERN_TCP_RST))
            H->t_wnd = h.wnd; /* no window scaling: bytes */
        if (n < max) {
            out[n].h = h;
            out[n].len = (uint32_t)(total - ihl - h.hlen);
        }
        n++;
    }
    return n;
}

static void print_seg(const char *what, const struct got *g)
{
    fprintf(stderr, "  %s: flags %#x seq %u ack %u len %u wnd %u\n", what, g->h.flags, g->h.seq,
            g->h.ack, g->len, g->h.wnd);
}

/* Exactly one segment with these flags (and seq/ack unless < 0). */
static struct got expect_one(struct host *H, uint8_t flags, int64_t seq, int64_t ack,
                             uint32_t len)
{
    struct got g[4];
    int n = host_collect(H, g, 4);
    if (n != 1 || g[0].h.flags != flags || (seq >= 0 && g[0].h.seq != (uint32_t)seq) ||
        (ack >= 0 && g[0].h.ack != (uint32_t)ack) || g[0].len != len) {
        fprintf(stderr, "fixture %s: wanted one segment flags %#x seq %lld ack %lld len %u, "
                        "got %d\n", FIXTURES[H->fx].name, flags, (long long)seq,
                (long long)ack, len, n);
        for (int i = 0; i < n && i < 4; i++)
            print_seg("got", &g[i]);
        fail();
    }
    return g[0];
}

static void expect_nothing(struct host *H)
{
    struct got g[4];
    int n = host_collect(H, g, 4);
    for (int i = 0; i < n && i < 4; i++)
        print_seg("unexpected", &g[i]);
    assert_int_equal(n, 0);
}

static int tcp_socket(struct host *H)
{
    int fd = tern_socket(H->sim.st[0], AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    return fd;
}

/* Tern connects to the peer: its SYN tells the peer ISS and the port. */
static void tern_connects(struct host *H)
{
    H->fd = tcp_socket(H);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(HOST_PORT),
                             .sin_addr.s_addr = htonl(SIM_RAW_IP)};
    errno = 0;
    assert_int_equal(tern_connect(H->sim.st[0], H->fd, (struct sockaddr *)&to, sizeof(to)), -1);
    assert_int_equal(errno, EINPROGRESS);
    struct got syn = expect_one(H, TERN_TCP_SYN, -1, -1, 0);
    H->tport = syn.h.sport;
    H->t_iss = H->t_una = syn.h.seq;
    H->t_nxt = syn.h.seq + 1;
}

static void tern_listens(struct host *H)
{
    H->lfd = tcp_socket(H);
    struct sockaddr_in a = sim_sin(0, TERN_PORT);
    assert_int_equal(tern_bind(H->sim.st[0], H->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(tern_listen(H->sim.st[0], H->lfd, 8), 0);
}

/* The peer's SYN to the listener; Tern's SYN,ACK. */
static void peer_opens(struct host *H)
{
    host_send(H, TERN_TCP_SYN, HOST_ISS, 0, 0);
    struct got sa = expect_one(H, TERN_TCP_SYN | TERN_TCP_ACK, -1, HOST_ISS + 1, 0);
    H->t_iss = H->t_una = sa.h.seq;
    H->t_nxt = sa.h.seq + 1;
    H->r_nxt = HOST_ISS + 1;
}

/* The peer acks everything Tern sent. */
static void peer_acks_all(struct host *H)
{
    host_send(H, TERN_TCP_ACK, H->r_nxt, H->t_nxt, 0);
    H->t_una = H->t_nxt;
}

/* The peer's FIN (acking what it acked before); Tern acks it. */
static void peer_fin(struct host *H)
{
    host_send(H, TERN_TCP_FIN | TERN_TCP_ACK, H->r_nxt, H->t_una, 0);
    H->r_nxt++;
    expect_one(H, TERN_TCP_ACK, H->t_nxt, H->r_nxt, 0);
}

static void tern_shuts_down(struct host *H)
{
    assert_int_equal(tern_shutdown(H->sim.st[0], H->fd, SHUT_WR), 0);
    expect_one(H, TERN_TCP_FIN | TERN_TCP_ACK, H->t_nxt, H->r_nxt, 0);
    H->t_nxt++;
}

/* Established through the listener and accepted; Tern sent 5 bytes the
 * peer has not acknowledged. */
static void established(struct host *H)
{
    tern_listens(H);
    peer_opens(H);
    /* The peer answers the SYN,ACK slowly: Tern times the handshake
     * (RFC 6298, as Linux), and a round trip of about a second puts its
     * RTO near 3 s, far past the 60 ms each step of a fixture takes. */
    sim_run(&H->sim, 900 * MS);
    peer_acks_all(H);
    expect_nothing(H);
    H->fd = tern_accept(H->sim.st[0], H->lfd, NULL, NULL);
    assert_true(H->fd >= 0);
    assert_int_equal(tern_send(H->sim.st[0], H->fd, "hello", 5, 0), 5);
    expect_one(H, TERN_TCP_ACK | TERN_TCP_PSH, H->t_nxt, H->r_nxt, 5);
    H->t_nxt += 5;
}

/* Tern closes first: its FIN, the peer's ACK, then the peer's FIN,
 * which Tern acks from TIME_WAIT. */
static void tern_closes_first(struct host *H)
{
    assert_int_equal(tern_close(H->sim.st[0], H->fd), 0);
    H->fd = -1;
    expect_one(H, TERN_TCP_FIN | TERN_TCP_ACK, H->t_nxt, H->r_nxt, 0);
    H->t_nxt++;
    peer_acks_all(H);
    expect_nothing(H);
    peer_fin(H);
}

static void fixture_build(struct host *H, enum fixture fx)
{
    memset(H, 0, sizeof(*H));
    sim_init(&H->sim, 1, NULL);
    sim_raw_arp_hello(&H->sim, 0); /* Tern learns the peer's MAC */
    sim_run(&H->sim, MS);
    while (sim_raw_recv(&H->sim, -1, (uint8_t[64]){0}, 64) > 0) {
    } /* its ARP reply */
    H->fx = fx;
    H->fd = H->lfd = -1;
    H->tport = TERN_PORT;
    H->ipid = 1;
    /* Without a connection Tern's variables are the peer's guess. */
    H->t_iss = H->t_una = H->t_nxt = 0x70000000u;
    H->r_nxt = HOST_ISS;
    H->t_wnd = 65535;
    switch (fx) {
    case F_CLOSED:
        break;
    case F_LISTEN:
        tern_listens(H);
        break;
    case F_SYN_SENT:
        tern_connects(H);
        break;
    case F_SYN_RCVD_P:
        tern_listens(H);
        peer_opens(H);
        break;
    case F_SYN_RCVD_A:
        tern_connects(H);
        host_send(H, TERN_TCP_SYN, HOST_ISS, 0, 0);
        expect_one(H, TERN_TCP_SYN | TERN_TCP_ACK, H->t_iss, HOST_ISS + 1, 0);
        H->r_nxt = HOST_ISS + 1;
        break;
    case F_ESTABLISHED:
        established(H);
        break;
    case F_FIN_WAIT_1:
        established(H);
        tern_shuts_down(H);
        break;
    case F_FIN_WAIT_2:
        established(H);
        tern_shuts_down(H);
        peer_acks_all(H);
        expect_nothing(H);
        break;
    case F_CLOSE_WAIT:
        established(H);
        peer_fin(H);
        break;
    case F_CLOSING:
        established(H);
        tern_shuts_down(H);
        peer_fin(H);
        break;
    case F_LAST_ACK:
        established(H);
        peer_fin(H);
        tern_shuts_down(H);
        break;
    case F_TIME_WAIT:
        established(H);
        peer_acks_all(H);
        expect_nothing(H);
        tern_closes_first(H);
        break;
    case F_TIME_WAIT_C:
        tern_connects(H);
        host_send(H, TERN_TCP_SYN | TERN_TCP_ACK, HOST_ISS, H->t_nxt, 0);
        H->r_nxt = HOST_ISS + 1;
        H->t_una = H->t_nxt;
        expect_one(H, TERN_TCP_ACK, H->t_nxt, H->r_nxt, 0);
        tern_closes_first(H);
        break;
    case F_COUNT:
        break;
    }
}

static void fixture_cleanup(struct host *H)
{
    if (H->fd >= 0) {
        struct linger l0 = {.l_onoff = 1, .l_linger = 0};
        assert_int_equal(tern_setsockopt(H->sim.st[0], H->fd, SOL_SOCKET, SO_LINGER, &l0,
                                         sizeof(l0)), 0);
        assert_int_equal(tern_close(H->sim.st[0], H->fd), 0);
    }
    if (H->lfd >= 0)
        assert_int_equal(tern_close(H->sim.st[0], H->lfd), 0);
    sim_finish(&H->sim); /* TIME_WAIT expires; nothing may be left */
}

/* ---- Observing the state ---- */

static int state_of_info(uint8_t linux_state)
{
    switch (linux_state) {
    case 1: return TCPS_ESTABLISHED;
    case 2: return TCPS_SYN_SENT;
    case 3: return TCPS_SYN_RECEIVED;
    case 4: return TCPS_FIN_WAIT_1;
    case 5: return TCPS_FIN_WAIT_2;
    case 6: return TCPS_TIME_WAIT;
    case 7: return TCPS_CLOSED;
    case 8: return TCPS_CLOSE_WAIT;
    case 9: return TCPS_LAST_ACK;
    case 10: return TCPS_LISTEN;
    case 11: return TCPS_CLOSING;
    }
    fail_msg("tcpi_state %u", linux_state);
    return -1;
}

static int tcp_info_state(struct host *H, int fd)
{
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    assert_int_equal(tern_getsockopt(H->sim.st[0], fd, IPPROTO_TCP, TCP_INFO, &ti, &tl), 0);
    return state_of_info(ti.tcpi_state);
}

static uint64_t timewait_count(struct host *H)
{
    struct tern_live live;
    tern_stack_live(H->sim.st[0], &live);
    return live.tcp_timewait;
}

/* The state of the fixture's connection, found as an application or a
 * peer can find it. May probe on the wire: call it last. */
static int observe(struct host *H)
{
    if (timewait_count(H) > 0) {
        /* TIME_WAIT, whether or not a handle is left: it acks the
         * peer's FIN sent again (RFC 9293 3.10.7.4 eighth). */
        assert_int_equal(timewait_count(H), 1);
        host_send(H, TERN_TCP_FIN | TERN_TCP_ACK, H->r_nxt - 1, H->t_nxt, 0);
        expect_one(H, TERN_TCP_ACK, H->t_nxt, H->r_nxt, 0);
        assert_int_equal(timewait_count(H), 1);
        return TCPS_TIME_WAIT;
    }
    switch (H->fx) {
    case F_CLOSED: {
        struct tern_live live;
        tern_stack_live(H->sim.st[0], &live);
        assert_int_equal(live.sockets, 0);
        return TCPS_CLOSED;
    }
    case F_LISTEN:
        return tcp_info_state(H, H->lfd);
    case F_SYN_RCVD_P:
        if (H->fd < 0) {
            H->fd = tern_accept(H->sim.st[0], H->lfd, NULL, NULL);
            if (H->fd >= 0)
                return tcp_info_state(H, H->fd);
            assert_int_equal(errno, EAGAIN);
            /* Not established: still embryonic, or gone? Complete the
             * handshake: an embryonic connection becomes acceptable, a
             * gone one earns the listener's RST. */
            host_send(H, TERN_TCP_ACK, HOST_ISS + 1, H->t_iss + 1, 0);
            struct got g[4];
            int n = host_collect(H, g, 4);
            H->fd = tern_accept(H->sim.st[0], H->lfd, NULL, NULL);
            if (H->fd >= 0) {
                assert_int_equal(n, 0);
                assert_int_equal(tcp_info_state(H, H->fd), TCPS_ESTABLISHED);
                return TCPS_SYN_RECEIVED;
            }
            assert_int_equal(n, 1);
            assert_int_equal(g[0].h.flags, TERN_TCP_RST);
            assert_int_equal(g[0].h.seq, H->t_iss + 1);
            return TCPS_CLOSED;
        }
        return tcp_info_state(H, H->fd);
    default:
        if (H->fd >= 0)
            return tcp_info_state(H, H->fd);
        return TCPS_CLOSED; /* the handle was closed and TIME_WAIT is over */
    }
}

static int so_error(struct host *H, int fd)
{
    int err = -1;
    socklen_t el = sizeof(err);
    assert_int_equal(tern_getsockopt(H->sim.st[0], fd, SOL_SOCKET, SO_ERROR, &err, &el), 0);
    return err;
}

static void test_fixtures_reach_their_states(void **state)
{
    (void)state;
    for (int fx = 0; fx < F_COUNT; fx++) {
        struct host H;
        fixture_build(&H, (enum fixture)fx);
        int st = observe(&H);
        if (st != (int)FIXTURES[fx].state)
            fail_msg("fixture %s is in %s", FIXTURES[fx].name,
                     tern_tcp_state_name((enum tern_tcp_state)st));
        int fd = H.fd >= 0 ? H.fd : H.lfd;
        if (fd >= 0)
            assert_int_equal(so_error(&H, fd), 0);
        fixture_cleanup(&H);
    }
}

/* ---- The walk ---- */

static uint32_t base_value(const struct host *H, enum base b)
{
    switch (b) {
    case B_NONE: return 0;
    case B_PEER_ISS: return HOST_ISS;
    case B_RCV_NXT: return H->r_nxt;
    case B_RCV_WND_END: return H->r_nxt + H->t_wnd;
    case B_SND_UNA: return H->t_una;
    case B_SND_NXT: return H->t_nxt;
    }
    return 0;
}

static const struct row *row_for(enum fixture fx, enum event ev)
{
    const struct row *found = NULL;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
        if ((ROWS[i].fixtures & (1u << fx)) && (ROWS[i].events & (1u << ev))) {
            if (found)
                fail_msg("%s x %s: two rows (\"%s\" and \"%s\")", FIXTURES[fx].name,
                         EVENTS[ev].name, found->rule, ROWS[i].rule);
            found = &ROWS[i];
        }
    }
    if (!found)
        fail_msg("%s x %s: no row", FIXTURES[fx].name, EVENTS[ev].name);
    return found;
}

static bool reply_matches(struct host *H, const struct row *r, uint32_t seq, uint32_t ack,
                          uint32_t seglen, const struct got *g, int n, uint64_t chacks)
{
    if (r->reply == R_NONE)
        return n == 0;
    if (n != 1)
        return false;
    const struct tern_tcp_hdr *h = &g[0].h;
    uint64_t chacks_now = sim_counter(&H->sim, 0, "tcp.challenge_ack") - chacks;
    switch (r->reply) {
    case R_ACK:
    case R_CHACK:
        return h->flags == TERN_TCP_ACK && h->seq == H->t_nxt && h->ack == H->r_nxt &&
               g[0].len == 0 && chacks_now == (r->reply == R_CHACK);
    case R_ACK_DATA:
        return h->flags == TERN_TCP_ACK && h->seq == H->t_nxt && h->ack == H->r_nxt + 10 &&
               g[0].len == 0;
    case R_ACK_FIN:
        return h->flags == TERN_TCP_ACK && h->seq == H->t_nxt && h->ack == H->r_nxt + 1 &&
               g[0].len == 0;
    case R_ACK_SYN:
        return h->flags == TERN_TCP_ACK && h->seq == H->t_nxt && h->ack == seq + 1 &&
               g[0].len == 0;
    case R_RST_SEGACK:
        return h->flags == TERN_TCP_RST && h->seq == ack && g[0].len == 0;
    case R_RST_ACK:
        return h->flags == (TERN_TCP_RST | TERN_TCP_ACK) && h->seq == 0 &&
               h->ack == seq + seglen && g[0].len == 0;
    case R_SYNACK:
        return h->flags == (TERN_TCP_SYN | TERN_TCP_ACK) && h->seq == H->t_iss &&
               h->ack == seq + 1;
    case R_SYNACK_NEW:
        return h->flags == (TERN_TCP_SYN | TERN_TCP_ACK) && h->ack == seq + 1;
    case R_SYNACK_ABOVE:
        return h->flags == (TERN_TCP_SYN | TERN_TCP_ACK) && h->ack == seq + 1 &&
               tern_seq_gt(h->seq, H->t_nxt);
    case R_NONE:
        break;
    }
    return false;
}

/* One cell: false (and why, on stderr) if Tern disagrees with its row. */
static bool run_cell(enum fixture fx, enum event ev)
{
    const struct row *r = row_for(fx, ev);
    struct host H;
    fixture_build(&H, fx);
    uint32_t seq = base_value(&H, EVENTS[ev].seq) + (uint32_t)EVENTS[ev].seq_off;
    uint32_t ack = base_value(&H, EVENTS[ev].ack) + (uint32_t)EVENTS[ev].ack_off;
    uint8_t flags = EVENTS[ev].flags;
    uint32_t seglen = EVENTS[ev].len + !!(flags & TERN_TCP_SYN) + !!(flags & TERN_TCP_FIN);
    uint64_t chacks = sim_counter(&H.sim, 0, "tcp.challenge_ack");
    host_send(&H, flags, seq, ack, EVENTS[ev].len);
    struct got g[4];
    int n = host_collect(&H, g, 4);
    if (!reply_matches(&H, r, seq, ack, seglen, g, n, chacks)) {
        fprintf(stderr, "%s x %s (seq %u ack %u): wanted %s (SND.NXT %u RCV.NXT %u), got %d "
                        "segment(s); rule: %s\n", FIXTURES[fx].name, EVENTS[ev].name, seq, ack,
                REPLY_NAMES[r->reply], H.t_nxt, H.r_nxt, n, r->rule);
        for (int i = 0; i < n && i < 4; i++)
            print_seg("got", &g[i]);
        fixture_cleanup(&H);
        return false;
    }
    /* What the peer now knows of Tern's variables. */
    if (r->reply == R_ACK_DATA)
        H.r_nxt += 10;
    if (r->reply == R_ACK_FIN)
        H.r_nxt += 1;
    if (ev == E_ACK)
        H.t_una = H.t_nxt;
    int want = r->next == STAY ? (int)FIXTURES[fx].state : r->next;
    int st = observe(&H);
    bool ok = true;
    if (st != want) {
        fprintf(stderr, "%s x %s: state %s, wanted %s; rule: %s\n", FIXTURES[fx].name,
                EVENTS[ev].name, tern_tcp_state_name((enum tern_tcp_state)st),
                tern_tcp_state_name((enum tern_tcp_state)want), r->rule);
        ok = false;
    }
    int fd = H.fd >= 0 ? H.fd : H.lfd;
    int err = fd >= 0 ? so_error(&H, fd) : 0;
    if (err != r->err) {
        fprintf(stderr, "%s x %s: SO_ERROR %d (%s), wanted %d; rule: %s\n", FIXTURES[fx].name,
                EVENTS[ev].name, err, strerror(err), r->err, r->rule);
        ok = false;
    }
    fixture_cleanup(&H);
    return ok;
}

static void test_every_state_meets_every_segment(void **state)
{
    (void)state;
    int cells = 0, wrong = 0;
    for (int fx = 0; fx < F_COUNT; fx++)
        for (int ev = 0; ev < E_COUNT; ev++) {
            wrong += !run_cell((enum fixture)fx, (enum event)ev);
            cells++;
        }
    assert_int_equal(cells, F_COUNT * E_COUNT);
    if (wrong)
        fail_msg("%d of %d cells disagree with the table", wrong, cells);
    /* Every row is used by some cell (a row no cell reaches is dead). */
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
        bool used = false;
        for (int fx = 0; fx < F_COUNT && !used; fx++)
            for (int ev = 0; ev < E_COUNT && !used; ev++)
                used = row_for((enum fixture)fx, (enum event)ev) == &ROWS[i];
        if (!used)
            fail_msg("row %zu (\"%s\") covers no cell", i, ROWS[i].rule);
    }
}

static void test_time_wait_reopen_starts_above_old_sequence(void **state)
{
    (void)state;
    /* RFC 1122 4.2.2.13 (1): a SYN may reopen a connection from
     * TIME_WAIT only if the new incarnation's ISS lies above every
     * sequence number the old one used, or the old one's duplicates
     * could land in the new window. Tern sends 4 MB faster than its ISN
     * clock runs (RFC 6528: 250,000 a second), closes first, and the
     * peer comes back with a new SYN. */
    struct host H;
    fixture_build(&H, F_ESTABLISHED);
    peer_acks_all(&H);
    expect_nothing(&H);
    static char chunk[65536];
    const uint32_t total = 4u << 20;
    uint32_t queued = 0;
    uint64_t t0 = H.sim.now;
    for (int round = 0; round < 1000 && H.t_una - H.t_iss - 1 < 5 + total; round++) {
        while (queued < total) {
            size_t n = total - queued < sizeof(chunk) ? total - queued : sizeof(chunk);
            ssize_t w = tern_send(H.sim.st[0], H.fd, chunk, n, 0);
            if (w <= 0)
                break;
            queued += (uint32_t)w;
        }
        static struct got g[1024];
        int n = host_collect(&H, g, 1024);
        for (int i = 0; i < n && i < 1024; i++)
            if (tern_seq_gt(g[i].h.seq + g[i].len, H.t_nxt))
                H.t_nxt = g[i].h.seq + g[i].len;
        peer_acks_all(&H);
    }
    assert_int_equal(H.t_nxt - H.t_iss - 1, 5 + total);
    /* Faster than the clock: a clock-only ISS would fall below. */
    assert_true((H.sim.now - t0) / 4000 < total);
    expect_nothing(&H);
    tern_closes_first(&H);
    assert_int_equal(observe(&H), TCPS_TIME_WAIT);
    host_send(&H, TERN_TCP_SYN, H.r_nxt + 100, 0, 0);
    struct got sa = expect_one(&H, TERN_TCP_SYN | TERN_TCP_ACK, -1, H.r_nxt + 101, 0);
    if (!tern_seq_gt(sa.h.seq, H.t_nxt))
        fail_msg("new ISS %u is not above the old SND.NXT %u", sa.h.seq, H.t_nxt);
    fixture_cleanup(&H);
}

static void test_time_wait_lasts_2msl_from_the_last_fin(void **state)
{
    (void)state;
    /* RFC 9293 3.10.7.4 eighth check: in TIME-WAIT the peer's FIN again
     * is acked and restarts the 2MSL timeout; RFC 1337: a RST neither
     * ends nor extends it. Virtual time, so exact. 2MSL is 60 s here. */
    const uint64_t msl2 = 60 * TERN_NS_PER_SEC;
    struct host H;
    fixture_build(&H, F_TIME_WAIT);
    uint64_t t0 = H.sim.now;
    sim_run(&H.sim, msl2 - 10 * TERN_NS_PER_SEC);
    sim_raw_arp_hello(&H.sim, 0); /* Tern's ARP entry for the peer is old */
    host_send(&H, TERN_TCP_RST | TERN_TCP_ACK, H.r_nxt, H.t_nxt, 0);
    expect_nothing(&H);
    assert_int_equal(timewait_count(&H), 1);
    assert_int_equal(observe(&H), TCPS_TIME_WAIT); /* the FIN again: restarts */
    uint64_t t1 = H.sim.now;
    sim_run(&H.sim, t0 + msl2 + 5 * TERN_NS_PER_SEC - H.sim.now);
    assert_int_equal(timewait_count(&H), 1); /* the first 2MSL is over */
    sim_run(&H.sim, t1 + msl2 + TERN_NS_PER_SEC - H.sim.now);
    assert_int_equal(timewait_count(&H), 0); /* the second one too */
    fixture_cleanup(&H);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_reach_their_states),
        cmocka_unit_test(test_every_state_meets_every_segment),
        cmocka_unit_test(test_time_wait_reopen_starts_above_old_sequence),
        cmocka_unit_test(test_time_wait_lasts_2msl_from_the_last_fin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
