/* The Internet checksum (RFC 1071): a one's-complement sum, computed in
 * pieces and folded at the end. */
#ifndef TERN_WIRE_CHECKSUM_H
#define TERN_WIRE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* Add len bytes to a running 32-bit sum. Pieces must start at even offsets
 * of the summed region, except the last. */
uint32_t tern_csum_add(uint32_t sum, const void *data, size_t len);
/* The same without the vector path the CPU may offer (for tests). */
uint32_t tern_csum_add_scalar(uint32_t sum, const void *data, size_t len);
/* Fold a running sum into the 16-bit one's complement checksum. */
uint16_t tern_csum_fold(uint32_t sum);
/* The IPv4 pseudo header of RFC 768/793 (addresses in host order). */
uint32_t tern_csum_pseudo4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len);

#endif
