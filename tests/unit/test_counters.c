/* The counter table: names unique, well formed, findable; every drop
 * counter is named drop.<layer>.<reason>. */
#include "testing.h"

#include <stdlib.h>
#include <string.h>

#include <tern/tern.h>

static void test_names_are_unique_and_well_formed(void **state)
{
    (void)state;
    size_t n = tern_counter_count();
    assert_true(n > 40);
    for (size_t i = 0; i < n; i++) {
        const char *name = tern_counter_name(i), *help = tern_counter_help(i);
        assert_non_null(name);
        assert_non_null(help);
        assert_true(strlen(name) > 3 && strlen(name) < 39);
        assert_true(strlen(help) > 5 && strlen(help) < 71); /* room for the NUL */
        for (const char *c = name; *c; c++)
            assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' ||
                        *c == '_');
        if (strncmp(name, "drop.", 5) == 0)
            assert_non_null(strchr(name + 5, '.'));
        assert_int_equal(tern_counter_find(name), (long)i);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(name, tern_counter_name(j));
    }
    assert_null(tern_counter_name(n));
    assert_int_equal(tern_counter_find("no.such.counter"), -1);
}

static void test_reset_and_dump(void **state)
{
    (void)state;
    struct tern_stack *s = tern_stack_new(NULL);
    int fd = tern_socket(s, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9),
                             .sin_addr.s_addr = htonl(0xc0000202)};
    /* No interface: the send fails and nothing is counted as sent. */
    assert_int_equal(tern_sendto(s, fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to)), -1);
    assert_int_equal(tern_counter_by_name(s, "udp.tx"), 0);
    tern_close(s, fd);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tern_counters_dump(s, f, false);
    fclose(f);
    assert_non_null(strstr(buf, "drop.ip.bad_checksum"));
    free(buf);
    tern_counters_reset(s);
    for (size_t i = 0; i < tern_counter_count(); i++)
        assert_int_equal(tern_counter_get(s, i), 0);
    tern_stack_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_are_unique_and_well_formed),
        cmocka_unit_test(test_reset_and_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
