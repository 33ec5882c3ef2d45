/* Every counter of a stack, with its name and what it counts. Each place
 * that drops a packet bumps exactly one drop_* counter naming the reason
 * (DESIGN.md rule 6). Names are dotted like nstat's, stable, and listed by
 * tern_counter_name(); a test checks they are unique. */
#ifndef TERN_OBS_COUNTERS_H
#define TERN_OBS_COUNTERS_H

#define TERN_COUNTERS(X)                                                                  \
    X(LINK_RX_FRAMES, "link.rx_frames", "frames received from links")                     \
    X(LINK_TX_FRAMES, "link.tx_frames", "frames handed to links")                         \
    X(DROP_LINK_TX_REFUSED, "drop.link.tx_refused", "frames a link refused to send")      \
    X(LINK_TX_GSO, "link.tx_gso", "TCP super-frames handed whole to a link that cuts them")  \
    X(LINK_TX_GSO_SPLIT, "link.tx_gso_split", "frames cut from TCP super-frames by the stack")     \
    X(LINK_RX_COALESCED, "link.rx_coalesced", "frames longer than the MTU a link coalesced (GRO)") \
    X(DROP_LINK_GSO_TOO_BIG, "drop.link.gso_too_big", "super-frames whose segments exceed the MTU")  \
    X(DROP_PKT_POOL_EMPTY, "drop.pkt.pool_empty", "packets not allocated: pool exhausted") \
    X(DROP_ETH_TOO_SHORT, "drop.eth.too_short", "frames shorter than an Ethernet header") \
    X(DROP_ETH_NOT_FOR_US, "drop.eth.not_for_us", "frames to another MAC address")        \
    X(DROP_ETH_UNKNOWN_TYPE, "drop.eth.unknown_type", "frames of an unhandled EtherType") \
    X(ARP_RX, "arp.rx", "ARP packets received")                                           \
    X(ARP_TX_REQUEST, "arp.tx_request", "ARP requests sent (gratuitous included)")        \
    X(ARP_TX_REPLY, "arp.tx_reply", "ARP replies sent")                                   \
    X(DROP_ARP_MALFORMED, "drop.arp.malformed", "ARP packets too short or not IPv4/Ethernet") \
    X(DROP_ARP_NOT_FOR_US, "drop.arp.not_for_us", "ARP requests for another address")     \
    X(DROP_ARP_BAD_SENDER, "drop.arp.bad_sender", "ARP with a broadcast or multicast sender") \
    X(DROP_ARP_OWN_MAC, "drop.arp.own_mac", "ARP from our own MAC: a loop, or two stacks with one seed") \
    X(DROP_ARP_PENDING_FULL, "drop.arp.pending_full", "packets dropped: resolution queue full") \
    X(DROP_ARP_UNRESOLVED, "drop.arp.unresolved", "packets dropped: address never resolved") \
    X(DROP_ARP_CACHE_FULL, "drop.arp.cache_full", "packets dropped: neighbour cache full") \
    X(ARP_CONFLICT, "arp.conflict", "ARP from another host claiming one of our addresses") \
    X(IP_RX, "ip.rx", "IPv4 packets received")                                            \
    X(IP_TX, "ip.tx", "IPv4 packets sent (each fragment counts)")                          \
    X(IP_RX_DELIVERED, "ip.rx_delivered", "IPv4 packets delivered to a protocol")          \
    X(DROP_IP_TOO_SHORT, "drop.ip.too_short", "packets shorter than their headers say")   \
    X(DROP_IP_BAD_VERSION, "drop.ip.bad_version", "packets whose version is not 4")       \
    X(DROP_IP_BAD_HEADER_LEN, "drop.ip.bad_header_len", "IHL below 5 or past the packet") \
    X(DROP_IP_BAD_CHECKSUM, "drop.ip.bad_checksum", "header checksum mismatch")           \
    X(DROP_IP_BAD_SOURCE, "drop.ip.bad_source", "source is broadcast, multicast or loopback") \
    X(DROP_IP_NOT_FOR_US, "drop.ip.not_for_us", "packets to an address not ours (no forwarding)") \
    X(DROP_IP_NO_ROUTE, "drop.ip.no_route", "outbound packets with no route")             \
    X(DROP_IP_LOOPBACK_FULL, "drop.ip.loopback_full", "datagrams to ourselves: queue full") \
    X(DROP_IP_DF_TOO_BIG, "drop.ip.df_too_big", "outbound packets over MTU with DF set")   \
    X(DROP_IP_UNKNOWN_PROTO, "drop.ip.unknown_proto", "packets of an unhandled protocol") \
    X(IP_FRAG_CREATED, "ip.frag_created", "fragments created on output")                  \
    X(IP_REASM_OK, "ip.reasm_ok", "datagrams reassembled")                                \
    X(IP_PMTU_LEARNED, "ip.pmtu_learned", "destinations whose path MTU was learned (RFC 1191)") \
    X(DROP_IP_REASM_TIMEOUT, "drop.ip.reasm_timeout", "datagrams whose fragments timed out") \
    X(DROP_IP_REASM_OVERLAP, "drop.ip.reasm_overlap", "datagrams dropped for overlapping fragments") \
    X(DROP_IP_REASM_DUPLICATE, "drop.ip.reasm_duplicate", "exact duplicate fragments ignored") \
    X(DROP_IP_REASM_MEMORY, "drop.ip.reasm_memory", "datagrams too big for the reassembly budget") \
    X(DROP_IP_REASM_EVICTED, "drop.ip.reasm_evicted", "incomplete datagrams evicted to make room") \
    X(DROP_IP_REASM_TOO_BIG, "drop.ip.reasm_too_big", "fragments reaching past 65535 bytes") \
    X(DROP_IP_REASM_BAD_LEN, "drop.ip.reasm_bad_len", "non-final fragments not a multiple of 8") \
    X(ICMP_RX, "icmp.rx", "ICMP messages received")                                       \
    X(ICMP_TX, "icmp.tx", "ICMP messages sent")                                           \
    X(ICMP_TX_ECHO_REPLY, "icmp.tx_echo_reply", "echo replies sent")                      \
    X(ICMP_TX_UNREACH, "icmp.tx_unreach", "destination unreachable sent")                 \
    X(ICMP_RX_ERROR_DELIVERED, "icmp.rx_error_delivered", "ICMP errors delivered to a socket") \
    X(DROP_ICMP_RATELIMIT, "drop.icmp.ratelimit", "ICMP errors not sent: rate limit")     \
    X(DROP_ICMP_BAD_CHECKSUM, "drop.icmp.bad_checksum", "ICMP checksum mismatch")         \
    X(DROP_ICMP_TOO_SHORT, "drop.icmp.too_short", "ICMP messages too short")              \
    X(DROP_ICMP_UNHANDLED, "drop.icmp.unhandled", "ICMP types not handled")               \
    X(DROP_ICMP_ERROR_NO_SOCKET, "drop.icmp.error_no_socket", "ICMP errors for no socket") \
    X(DROP_ICMP_ERROR_SOFT, "drop.icmp.error_soft", "soft ICMP errors (no socket is told, as Linux)") \
    X(DROP_ICMP_ERROR_UNCONNECTED, "drop.icmp.error_unconnected", "ICMP errors for an unconnected socket (as Linux)") \
    X(DROP_ICMP_NO_PING_SOCKET, "drop.icmp.no_ping_socket", "echo replies for no ping socket") \
    X(TCP_RX, "tcp.rx", "TCP segments received")                                         \
    X(TCP_TX, "tcp.tx", "TCP segments sent")                                              \
    X(TCP_TX_RST, "tcp.tx_rst", "resets sent")                                            \
    X(TCP_RX_RST, "tcp.rx_rst", "resets that ended a connection")                         \
    X(TCP_RETRANSMIT, "tcp.retransmit", "segments sent again")                            \
    X(TCP_RETRANSMIT_TIMEOUT, "tcp.retransmit_timeout", "retransmission timer expiries")  \
    X(TCP_FAST_RETRANSMIT, "tcp.fast_retransmit", "fast retransmits: loss recoveries begun by duplicate ACKs or SACK") \
    X(TCP_EARLY_RETRANSMIT, "tcp.early_retransmit", "of which early: under 4 segments out, less SACKed (RFC 5827)") \
    X(TCP_LOST_RETRANSMIT, "tcp.lost_retransmit", "retransmissions found lost by SACKs of later data, resent") \
    X(TCP_REORDERING_SEEN, "tcp.reordering_seen", "data ACKed or SACKed after later data, never resent: overtaken") \
    X(TCP_SPURIOUS_RETRANSMIT, "tcp.spurious_retransmit", "fast retransmits shown needless (RFC 3522, RFC 3708)") \
    X(TCP_RECOVERY_UNDONE, "tcp.recovery_undone", "recoveries ended, window cut undone: the original came") \
    X(TCP_REORDERING_RESET, "tcp.reordering_reset", "timeouts with 3 segments SACKed above the hole: DupThresh back to 3") \
    X(TCP_RCVBUF_GROWN, "tcp.rcvbuf_grown", "receive buffers grown by autotuning (tcp_rcvbuf_max)") \
    X(TCP_SNDBUF_GROWN, "tcp.sndbuf_grown", "send buffers grown by autotuning (tcp_sndbuf_max)") \
    X(TCP_KEEPALIVE_PROBE, "tcp.keepalive_probe", "keepalive probes sent") \
    X(TCP_KEEPALIVE_DROP, "tcp.keepalive_drop", "connections dropped: keepalive unanswered") \
    X(TCP_WINDOW_PROBE, "tcp.window_probe", "zero-window probes sent") \
    X(TCP_TX_SACK, "tcp.tx_sack", "ACKs sent with SACK blocks") \
    X(TCP_TX_DSACK, "tcp.tx_dsack", "ACKs sent reporting a duplicate segment (D-SACK, RFC 2883)") \
    X(TCP_RX_DUPACK, "tcp.rx_dupack", "duplicate ACKs received")                          \
    X(TCP_RX_SACK, "tcp.rx_sack", "ACKs received with SACK blocks")                       \
    X(TCP_RX_DSACK, "tcp.rx_dsack", "D-SACK blocks received (RFC 2883): noted, no action") \
    X(DROP_TCP_SACK_INVALID, "drop.tcp.sack_invalid", "SACK blocks outside the data sent: ignored") \
    X(DROP_TCP_SACK_BOARD_FULL, "drop.tcp.sack_board_full", "SACK blocks not recorded: scoreboard full") \
    X(TCP_SACK_RECOVERY, "tcp.sack_recovery", "loss recoveries driven by SACK (RFC 6675)") \
    X(TCP_NEWRENO_RECOVERY, "tcp.newreno_recovery", "loss recoveries without SACK (RFC 6582)") \
    X(TCP_LIMITED_TRANSMIT, "tcp.limited_transmit", "segments sent by limited transmit (RFC 3042)") \
    X(TCP_RX_OUT_OF_ORDER, "tcp.rx_out_of_order", "segments held out of order")           \
    X(TCP_CHALLENGE_ACK, "tcp.challenge_ack", "challenge ACKs sent (RFC 5961)")           \
    X(DROP_TCP_CHALLENGE_ACK_LIMIT, "drop.tcp.challenge_ack_limit", "challenge ACKs not sent: rate limit") \
    X(TCP_TIME_WAIT, "tcp.time_wait", "connections that entered TIME_WAIT (as a record)") \
    X(TCP_TIME_WAIT_RESTART, "tcp.time_wait_restart", "TIME_WAIT waits started over by the peer's FIN again") \
    X(DROP_TCP_TIME_WAIT_OVERFLOW, "drop.tcp.time_wait_overflow", "connections closed without TIME_WAIT: record limit or memory") \
    X(TCP_TIME_WAIT_REUSED, "tcp.time_wait_reused", "TIME_WAIT ended early by a new SYN") \
    X(TCP_CONN_ESTABLISHED, "tcp.conn_established", "connections that reached ESTABLISHED") \
    X(TCP_CONN_CLOSED, "tcp.conn_closed", "connections that reached CLOSED")              \
    X(TCP_TIMEOUT_DROP, "tcp.timeout_drop", "connections dropped after too many timeouts") \
    X(TCP_ORPHAN_TIMEOUT, "tcp.orphan_timeout", "closed connections dropped: FIN_WAIT_2, or window shut") \
    X(DROP_TCP_TOO_SHORT, "drop.tcp.too_short", "segments shorter than their header")     \
    X(DROP_TCP_BAD_CHECKSUM, "drop.tcp.bad_checksum", "TCP checksum mismatch")            \
    X(DROP_TCP_BAD_OPTION, "drop.tcp.bad_option", "malformed TCP options")                \
    X(DROP_TCP_BROADCAST, "drop.tcp.broadcast", "TCP segments sent to a broadcast")       \
    X(DROP_TCP_NO_SOCKET, "drop.tcp.no_socket", "segments for no connection or listener") \
    X(DROP_TCP_LISTEN_OVERFLOW, "drop.tcp.listen_overflow", "SYNs dropped: accept queue full (or no memory)") \
    X(DROP_TCP_SYN_QUEUE_FULL, "drop.tcp.syn_queue_full", "SYNs dropped: SYN queue full and SYN cookies off") \
    X(DROP_TCP_ACCEPT_OVERFLOW, "drop.tcp.accept_overflow", "handshakes not completed: accept queue full") \
    X(TCP_SYNCOOKIE_SENT, "tcp.syncookie_sent", "SYN,ACKs sent with a SYN cookie (RFC 4987)") \
    X(TCP_SYNCOOKIE_OK, "tcp.syncookie_ok", "handshakes completed by a valid SYN cookie") \
    X(TCP_SYN_RECV_TIMEOUT, "tcp.syn_recv_timeout", "handshakes given up: SYN,ACK never acknowledged") \
    X(TCP_LISTEN_MIGRATED, "tcp.listen_migrated", "pending connections handed to another reuseport listener") \
    X(DROP_TCP_OUT_OF_WINDOW, "drop.tcp.out_of_window", "segments outside the receive window") \
    X(DROP_TCP_BAD_ACK, "drop.tcp.bad_ack", "segments acking what was never sent")        \
    X(DROP_TCP_RCVBUF_FULL, "drop.tcp.rcvbuf_full", "in-order bytes beyond the receive buffer") \
    X(DROP_TCP_NOMEM, "drop.tcp.nomem", "in-order bytes not taken: no memory to grow the buffer") \
    X(DROP_TCP_OOO_FULL, "drop.tcp.ooo_full", "out-of-order segments not held: queue full") \
    X(DROP_TCP_OOW_ACK_RATELIMIT, "drop.tcp.oow_ack_ratelimit", "ACKs not sent for unacceptable bare segments: 500 ms limit") \
    X(TCP_PMTU_REDUCED, "tcp.pmtu_reduced", "MSS lowered by fragmentation needed (RFC 1191)") \
    X(TCP_RTT_FROM_TS, "tcp.rtt_from_ts", "RTT samples from echoed timestamps where Karn left none") \
    X(TCP_TLP_PROBE, "tcp.tlp_probe", "tail loss probes sent (RFC 8985 section 7)") \
    X(TCP_TLP_RECOVERED, "tcp.tlp_recovered", "tail losses a probe repaired: window cut once") \
    X(TCP_PMTU_CACHED_MSS, "tcp.pmtu_cached_mss", "connections started at a path MTU learned before (RFC 1191)") \
    X(DROP_TCP_ICMP_MTU_IGNORED, "drop.tcp.icmp_mtu_ignored", "fragmentation needed not lowering the MSS") \
    X(DROP_TCP_ICMP_OUT_OF_WINDOW, "drop.tcp.icmp_out_of_window", "ICMP errors quoting no segment in flight (RFC 5927)") \
    X(DROP_TCP_PAWS, "drop.tcp.paws", "old duplicates refused by timestamp (RFC 7323 PAWS)") \
    X(DROP_TCP_TIME_WAIT_RST, "drop.tcp.time_wait_rst", "resets ignored in TIME_WAIT (RFC 1337)") \
    X(UDP_RX, "udp.rx", "UDP datagrams received")                                         \
    X(UDP_TX, "udp.tx", "UDP datagrams sent")                                             \
    X(DROP_UDP_TOO_SHORT, "drop.udp.too_short", "UDP length field wrong or too short")    \
    X(DROP_UDP_BAD_CHECKSUM, "drop.udp.bad_checksum", "UDP checksum mismatch")            \
    X(DROP_UDP_NO_PORT, "drop.udp.no_port", "datagrams to a port with no socket")         \
    X(DROP_SOCK_RCVBUF_FULL, "drop.sock.rcvbuf_full", "datagrams dropped: socket receive buffer full")

enum tern_counter_id {
#define X(id, name, help) TERN_C_##id,
    TERN_COUNTERS(X)
#undef X
    TERN_COUNTER__COUNT
};

#endif
