/* The HTTP example's request parser (examples/http_core.c): complete,
 * incomplete and malformed heads, and the keep-alive rules of RFC 9112
 * section 9.3. */
#include "testing.h"

#include <string.h>

#include "http_core.h"

static long parse(const char *s, struct http_request *r)
{
    return http_parse_request(s, strlen(s), r);
}

static void test_complete_heads(void **state)
{
    (void)state;
    struct http_request r;
    const char *get = "GET /a/b.html?x=1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\nNEXT";
    assert_int_equal(parse(get, &r), (long)(strlen(get) - 4));
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.target, "/a/b.html?x=1");
    assert_int_equal(r.minor, 1);
    assert_true(r.keep_alive);
    assert_false(r.has_body);
    assert_int_equal(parse("HEAD / HTTP/1.0\r\n\r\n", &r), 19);
    assert_string_equal(r.method, "HEAD");
    assert_int_equal(r.minor, 0);
    assert_false(r.keep_alive); /* 1.0 closes unless asked */
}

static void test_keep_alive_rules(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("GET / HTTP/1.1\r\nconnection: Upgrade, Close\r\n\r\n", &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r) > 0);
    assert_true(r.keep_alive);
    assert_true(parse("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", &r) > 0);
    assert_true(r.keep_alive); /* a token, not a prefix */
}

static void test_bodies_are_seen(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &r) > 0);
    assert_false(r.has_body);
    assert_true(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", &r) > 0);
    assert_true(r.has_body);
    assert_true(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r) > 0);
    assert_true(r.has_body);
    assert_int_equal(parse("GET / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n", &r), -1);
}

static void test_incomplete_then_malformed(void **state)
{
    (void)state;
    struct http_request r;
    assert_int_equal(parse("", &r), 0);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\n", &r), 0);
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET nopath HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nno colon\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET / HTTP/1.1\r\nbad name: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("malformed case %zu\n", i);
        assert_int_equal(parse(bad[i], &r), -1);
    }
    /* A head that never ends within the limit is malformed, not pending. */
    static char big[HTTP_IN_MAX + 1];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    assert_int_equal(http_parse_request(big, HTTP_IN_MAX, &r), -1);
    assert_int_equal(http_parse_request(big, HTTP_IN_MAX - 1, &r), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_heads),
        cmocka_unit_test(test_keep_alive_rules),
        cmocka_unit_test(test_bodies_are_seen),
        cmocka_unit_test(test_incomplete_then_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
