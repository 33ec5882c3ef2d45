/* lwIP was not found when this was built (Debian: liblwip-dev): every
 * lwIP cell of the tables says so. */
#include "bench.h"

#define WHY "not built: liblwip-dev not found"

const char *bench_lwip_what(void) { return "lwIP: " WHY; }
bool bench_lwip_available(void) { return false; }
void bench_lwip_start(void) {}
void bench_lwip_stop(void) {}

void bench_lwip_bulk(const struct bench_opts *o, struct bench_val *out)
{
    (void)o;
    bval_fail(out, WHY);
}

void bench_lwip_conn(const struct bench_opts *o, struct bench_val *out)
{
    (void)o;
    bval_fail(out, WHY);
}

void bench_lwip_mem(const struct bench_opts *o, struct mem_result *out)
{
    (void)o;
    bval_fail(&out->avg, WHY);
    out->marginal = out->avg;
}
