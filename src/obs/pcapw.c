/* Writing pcap files: see pcapw.h. */
#include "obs/pcapw.h"

#include <errno.h>

#define PCAP_MAGIC_NSEC 0xa1b23c4du
#define PCAP_VERSION_MAJOR 2
#define PCAP_VERSION_MINOR 4
#define PCAP_SNAPLEN 262144u
#define LINKTYPE_ETHERNET 1u
#define NS_PER_SEC 1000000000ull

struct pcap_file_header {
    uint32_t magic;
    uint16_t version_major, version_minor;
    int32_t thiszone;
    uint32_t sigfigs, snaplen, linktype;
};

struct pcap_record_header {
    uint32_t ts_sec, ts_nsec, incl_len, orig_len;
};

int tern_pcapw_open(struct tern_pcapw *w, const char *path)
{
    *w = (struct tern_pcapw){0};
    w->file = fopen(path, "wbe");
    if (!w->file)
        return -1;
    struct pcap_file_header h = {
        .magic = PCAP_MAGIC_NSEC,
        .version_major = PCAP_VERSION_MAJOR,
        .version_minor = PCAP_VERSION_MINOR,
        .snaplen = PCAP_SNAPLEN,
        .linktype = LINKTYPE_ETHERNET,
    };
    /* Flushed at once, so that a file that cannot be written fails here
     * rather than silently at the first record. */
    if (fwrite(&h, sizeof(h), 1, w->file) != 1 || fflush(w->file) != 0) {
        int err = errno;
        fclose(w->file);
        w->file = NULL;
        errno = err;
        return -1;
    }
    return 0;
}

void tern_pcapw_record(struct tern_pcapw *w, const uint8_t *data, size_t len, uint64_t now_ns)
{
    if (w->failed || !w->file) {
        w->records_lost++;
        return;
    }
    size_t incl = len < PCAP_SNAPLEN ? len : PCAP_SNAPLEN;
    struct pcap_record_header h = {
        .ts_sec = (uint32_t)(now_ns / NS_PER_SEC),
        .ts_nsec = (uint32_t)(now_ns % NS_PER_SEC),
        .incl_len = (uint32_t)incl,
        .orig_len = (uint32_t)len,
    };
    if (fwrite(&h, sizeof(h), 1, w->file) != 1 || (incl && fwrite(data, incl, 1, w->file) != 1)) {
        w->failed = true;
        w->records_lost++;
        return;
    }
    w->records++;
}

void tern_pcapw_close(struct tern_pcapw *w)
{
    if (w->file)
        fclose(w->file); /* flushes; nobody is left to tell of an error */
    w->file = NULL;
}
