/* Decode a pcap with tshark and fail on any malformed packet or bad
 * checksum (tests/tools/tshark_check.sh). */
#ifndef TERN_TEST_PCAPCHECK_H
#define TERN_TEST_PCAPCHECK_H

/* 0: clean and non-empty; otherwise what the script exited with. */
int pcap_check(const char *path);

#endif
