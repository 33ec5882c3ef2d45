/* Error explanations (issue 5): a failed call records which argument or
 * check failed, per thread and per stack, for tern_error_detail. */
#include "testing.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>

#include <tern/tern.h>

static struct tern_stack *new_stack(void)
{
    struct tern_stack *s = tern_stack_new(NULL);
    assert_non_null(s);
    return s;
}

#define EXPECT_DETAIL(s, call, err, needle)                                                   \
    do {                                                                                      \
        errno = 0;                                                                            \
        assert_int_equal((call), -1);                                                         \
        assert_int_equal(errno, (err));                                                       \
        char d_[256];                                                                         \
        assert_int_equal(tern_error_detail((s), d_, sizeof(d_)), (err));                      \
        if (!strstr(d_, (needle)))                                                            \
            fail_msg("detail '%s' lacks '%s'", d_, (needle));                                 \
    } while (0)

static void test_failures_say_which_argument(void **state)
{
    (void)state;
    struct tern_stack *s = new_stack();
    char d[256] = "x";
    assert_int_equal(tern_error_detail(s, d, sizeof(d)), 0); /* nothing yet */
    assert_string_equal(d, "");
    int u = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(53)};
    EXPECT_DETAIL(s, tern_bind(s, u, (struct sockaddr *)&a, 8), EINVAL,
                  "tern_bind: EINVAL: address length 8 is shorter than a sockaddr_in (16)");
    a.sin_addr.s_addr = htonl(0xc6336401); /* 198.51.100.1, not ours */
    EXPECT_DETAIL(s, tern_bind(s, u, (struct sockaddr *)&a, sizeof(a)), EADDRNOTAVAIL,
                  "198.51.100.1 is not an address of this stack");
    a.sin_family = AF_INET6;
    EXPECT_DETAIL(s, tern_connect(s, u, (struct sockaddr *)&a, sizeof(a)), EAFNOSUPPORT,
                  "tern_connect: EAFNOSUPPORT: address family 10 is not AF_INET");
    int ttl = 300;
    EXPECT_DETAIL(s, tern_setsockopt(s, u, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)), EINVAL,
                  "TTL 300 is outside 1..255");
    EXPECT_DETAIL(s, tern_listen(s, u, 5), EOPNOTSUPP, "only a stream socket listens");
    EXPECT_DETAIL(s, tern_sendto(s, u, "x", 1, 0, NULL, 0), EDESTADDRREQ, "has no peer");
    EXPECT_DETAIL(s, tern_shutdown(s, u, 7), EINVAL, "how 7 is none of");
    /* A plain failure still names the call and the errno. */
    EXPECT_DETAIL(s, tern_close(s, 12345), EBADF, "tern_close: EBADF");
    int t = tern_socket(s, AF_INET, SOCK_STREAM, 0);
    EXPECT_DETAIL(s, tern_send(s, t, "x", 1, 0), ENOTCONN, "never connected");
    /* A success does not erase the last failure. */
    assert_int_equal(tern_close(s, t), 0);
    assert_int_equal(tern_error_detail(s, d, sizeof(d)), ENOTCONN);
    /* A short buffer gets what fits, terminated. */
    char tiny[8];
    assert_int_equal(tern_error_detail(s, tiny, sizeof(tiny)), ENOTCONN);
    assert_int_equal(strlen(tiny), 7);
    tern_close(s, u);
    tern_stack_free(s);
}

struct other {
    struct tern_stack *s;
    char detail[256];
    int err;
};

static void *fail_elsewhere(void *arg)
{
    struct other *o = arg;
    int u = tern_socket(o->s, AF_INET, SOCK_DGRAM, 0);
    int v = -5;
    tern_setsockopt(o->s, u, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
    o->err = tern_error_detail(o->s, o->detail, sizeof(o->detail));
    tern_close(o->s, u);
    return NULL;
}

/* Each thread reads its own last failure, not another thread's. */
static void test_details_are_per_thread(void **state)
{
    (void)state;
    struct tern_stack *s = new_stack();
    assert_int_equal(tern_stack_start(s), 0);
    errno = 0;
    assert_int_equal(tern_close(s, 777), -1);
    struct other o = {.s = s};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fail_elsewhere, &o), 0);
    pthread_join(t, NULL);
    assert_int_equal(o.err, ENOPROTOOPT);
    assert_non_null(strstr(o.detail, "tern_setsockopt: ENOPROTOOPT"));
    char d[256];
    assert_int_equal(tern_error_detail(s, d, sizeof(d)), EBADF);
    assert_non_null(strstr(d, "tern_close: EBADF"));
    tern_stack_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failures_say_which_argument),
        cmocka_unit_test(test_details_are_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
