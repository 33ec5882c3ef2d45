/*
 * ARP (RFC 826) and the IPv4 neighbour cache.
 *
 * An entry is INCOMPLETE while requests go out (arp_retries, arp_retry_ns
 * apart) with the packets waiting for it queued, bounded in bytes; then
 * REACHABLE for arp_reachable_ns after the last confirmation; then it is
 * dropped and resolved again on demand. Each entry owns one timer.
 */
#ifndef TERN_LINK_ARP_H
#define TERN_LINK_ARP_H

#include <stdint.h>

#include "core/list.h"
#include "core/timer.h"

struct tern_stack;
struct tern_pkt;
struct tern_iface;

enum tern_arp_state { ARP_INCOMPLETE, ARP_REACHABLE };

struct tern_arp_entry {
    struct tern_list hnode;
    uint32_t ip; /* host order */
    int ifindex;
    uint8_t mac[6];
    enum tern_arp_state state;
    uint8_t requests_sent;
    struct tern_timer timer;
    struct tern_list pending; /* packets (IPv4 datagrams) waiting */
    uint32_t pending_bytes;
};

#define TERN_ARP_BUCKETS 256

/* All neighbours together may hold this many times arp_pending_bytes. */
#define TERN_ARP_PENDING_TOTAL_FACTOR 8

struct tern_arp_table {
    struct tern_list buckets[TERN_ARP_BUCKETS];
    uint32_t count;
    uint64_t pending_bytes; /* charged across all entries */
};

void tern_arp_init(struct tern_stack *s);
void tern_arp_destroy(struct tern_stack *s);
/* Input of an ARP packet (Ethernet header stripped). */
void tern_arp_input_take(struct tern_stack *s, struct tern_iface *ifp, struct tern_pkt *p);
/* Send an IPv4 datagram (p starts at the IP header) to neighbour `hop`
 * on ifp, resolving it first if needed. */
void tern_arp_output_take(struct tern_stack *s, struct tern_iface *ifp, uint32_t hop,
                          struct tern_pkt *p);
/* Announce addr on ifp (RFC 5227 section 3: an ARP request with sender
 * and target both set to the address). */
void tern_arp_announce(struct tern_stack *s, struct tern_iface *ifp, uint32_t addr);
/* Forget entries of an interface (address removed). */
void tern_arp_flush_iface(struct tern_stack *s, int ifindex);

#endif
