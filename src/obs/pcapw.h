/* Writing pcap files (pcap-savefile(5), nanosecond variant, Ethernet):
 * for the pcap tee link and for a stack's live capture. A failed write
 * stops the file (a partial record would ruin the rest) and is counted,
 * never fatal to the traffic. */
#ifndef TERN_OBS_PCAPW_H
#define TERN_OBS_PCAPW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct tern_pcapw {
    FILE *file;
    bool failed;
    uint64_t records, records_lost;
};

/* 0, or -1 and errno; the header is written and flushed. */
int tern_pcapw_open(struct tern_pcapw *w, const char *path);
void tern_pcapw_record(struct tern_pcapw *w, const uint8_t *data, size_t len, uint64_t now_ns);
void tern_pcapw_close(struct tern_pcapw *w);

#endif
