/* A stack's live capture: every frame its interfaces send or receive,
 * into a pcap file, started and stopped while traffic runs (ternstat's
 * `pcap start` and `pcap stop`). One capture per stack; the writer is
 * owned by the stack and closed by stop or by tern_stack_free. */
#include <errno.h>
#include <stdlib.h>

#include "core/stack.h"
#include "obs/pcapw.h"
#include "sock/api_internal.h"

int tern_capture_start(struct tern_stack *s, const char *path)
{
    struct tern_api_guard g = tern_api_enter(s);
    if (!path)
        return tern_api_fail_why(&g, EINVAL, "no file name");
    if (s->capture)
        return tern_api_fail_why(&g, EALREADY, "a capture is running already");
    struct tern_pcapw *w = malloc(sizeof(*w));
    if (!w)
        return tern_api_fail(&g, ENOMEM);
    if (tern_pcapw_open(w, path) != 0) {
        int err = errno;
        free(w);
        return tern_api_fail_why(&g, err, "cannot write %s", path);
    }
    s->capture = w;
    return tern_api_return(&g, 0);
}

int tern_capture_stop(struct tern_stack *s)
{
    struct tern_api_guard g = tern_api_enter(s);
    if (!s->capture)
        return tern_api_fail_why(&g, ENOENT, "no capture is running");
    tern_capture_close(s);
    return tern_api_return(&g, 0);
}

void tern_capture_close(struct tern_stack *s)
{
    if (!s->capture)
        return;
    tern_pcapw_close(s->capture);
    free(s->capture);
    s->capture = NULL;
}

void tern_capture_frame(struct tern_stack *s, const uint8_t *data, size_t len)
{
    tern_pcapw_record(s->capture, data, len, s->now);
}
