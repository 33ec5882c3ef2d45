/*
 * tcpinfo_log: record a Tern TCP socket's TCP_INFO over time as CSV, for
 * tools/tseq to draw the sender's congestion window under its
 * time-sequence graph (a pcap does not carry cwnd).
 *
 * Call tcpinfo_log_sample() as often as the program likes (each step of a
 * simulation, each loop of an event loop, or from a timer); it appends a
 * row only when something it records changed, so a tight loop writes
 * little. `now` must be on the clock the pcap tee stamps frames with, so
 * that the CSV lines up with the capture: in owned mode the time given to
 * the last tern_stack_poll (tern_stack_now(s)); in threaded mode
 * CLOCK_MONOTONIC in nanoseconds, the runtime thread's clock (from any
 * thread: tern_getsockopt takes the stack's lock itself).
 *
 * Columns (a header row names them):
 *   time_ns       `now` when sampled, nanoseconds
 *   state         tcpi_state (Linux's numbering: 1 ESTABLISHED ...)
 *   ca_state      tcpi_ca_state (0 Open, 1 Disorder, 3 Recovery, 4 Loss)
 *   cwnd_bytes    tcpi_snd_cwnd * tcpi_snd_mss (Tern reports cwnd in whole
 *                 segments, rounded down, as Linux does)
 *   ssthresh_bytes tcpi_snd_ssthresh * tcpi_snd_mss; empty while infinite
 *   mss           tcpi_snd_mss
 *   srtt_us rttvar_us rto_us unacked sacked retransmits total_retrans
 *
 * Uses the public API only; not part of libtern.
 */
#ifndef TERN_TOOLS_TCPINFO_LOG_H
#define TERN_TOOLS_TCPINFO_LOG_H

#include <tern/tern.h>

struct tcpinfo_log;

/* Creates (truncates) `path` and writes the header. NULL and errno on
 * failure. */
struct tcpinfo_log *tcpinfo_log_open(const char *path);
/* Samples socket fd of stack s at time `now` (see above). Returns 1 when
 * a row was written, 0 when nothing changed, -1 and errno when TCP_INFO
 * or the write failed. */
int tcpinfo_log_sample(struct tcpinfo_log *log, struct tern_stack *s, int fd, tern_time_t now);
/* Rows written so far. */
unsigned long tcpinfo_log_rows(const struct tcpinfo_log *log);
/* Flushes and closes; 0, or -1 and errno if any write failed. */
int tcpinfo_log_close(struct tcpinfo_log *log);

#endif
