/* The sender's SACK scoreboard (RFC 2018, RFC 2883, RFC 6675 section 4):
 * merging, pruning, what it refuses, IsLost, SetPipe and NextSeg. */
#include "testing.h"

#include "transport/tcp/tcp_sack.h"

#define B(s, e) ((struct tern_tcp_sack_block){(s), (e)})

static void expect_ranges(const struct tern_tcp_sackboard *b, const struct tern_tcp_sack_block *r,
                          unsigned n)
{
    if (n == 0) {
        assert_null(b->rs); /* an empty board holds no memory */
        return;
    }
    assert_non_null(b->rs);
    assert_int_equal(b->rs->n, n);
    uint32_t bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(b->rs->r[i].start, r[i].start);
        assert_int_equal(b->rs->r[i].end, r[i].end);
        bytes += r[i].end - r[i].start;
    }
    assert_int_equal(b->rs->sacked_bytes, bytes);
    assert_int_equal(tern_tcp_sack_bytes(b), bytes);
}

static void test_blocks_merge_and_the_cumulative_ack_prunes(void **state)
{
    (void)state;
    struct tern_tcp_sackboard b;
    tern_tcp_sack_init(&b);
    struct tern_tcp_sack_block in1[] = {B(300, 400), B(100, 200)};
    struct tern_tcp_sack_news n = tern_tcp_sack_update(&b, 0, 1000, in1, 2);
    assert_true(n.new_sacked);
    expect_ranges(&b, (struct tern_tcp_sack_block[]){B(100, 200), B(300, 400)}, 2);
    /* Touching and bridging blocks become one range. */
    struct tern_tcp_sack_block in2[] = {B(200, 300)};
    n = tern_tcp_sack_update(&b, 0, 1000, in2, 1);
    assert_true(n.new_sacked);
    expect_ranges(&b, (struct tern_tcp_sack_block[]){B(100, 400)}, 1);
    /* The same news again is no news. */
    n = tern_tcp_sack_update(&b, 0, 1000, in2, 1);
    assert_false(n.new_sacked);
    struct tern_tcp_sack_block in3[] = {B(500, 600), B(50, 150)};
    tern_tcp_sack_update(&b, 0, 1000, in3, 2);
    expect_ranges(&b, (struct tern_tcp_sack_block[]){B(50, 400), B(500, 600)}, 2);
    /* The cumulative ACK takes what it covers, splitting a range. */
    tern_tcp_sack_advance(&b, 120);
    expect_ranges(&b, (struct tern_tcp_sack_block[]){B(120, 400), B(500, 600)}, 2);
    tern_tcp_sack_advance(&b, 600);
    assert_true(tern_tcp_sack_empty(&b));
    assert_null(b.rs); /* an empty board holds no memory */
    /* Wrapping sequence space. */
    struct tern_tcp_sack_block in4[] = {B(0xfffffff0u, 0x10)};
    n = tern_tcp_sack_update(&b, 0xffffff00u, 0x100, in4, 1);
    assert_true(n.new_sacked);
    assert_int_equal(tern_tcp_sack_bytes(&b), 0x20);
    tern_tcp_sack_clear(&b);
}

static void test_dsack_and_invalid_blocks_are_ignored(void **state)
{
    (void)state;
    struct tern_tcp_sackboard b;
    tern_tcp_sack_init(&b);
    /* RFC 2883: a first block below the cumulative ACK is a D-SACK. */
    struct tern_tcp_sack_block d1[] = {B(100, 200), B(600, 700)};
    struct tern_tcp_sack_news n = tern_tcp_sack_update(&b, 500, 1000, d1, 2);
    assert_int_equal(n.dsack, 1);
    expect_ranges(&b, (struct tern_tcp_sack_block[]){B(600, 700)}, 1);
    /* ... and so is a first block inside the second. */
    struct tern_tcp_sack_block d2[] = {B(620, 640), B(600, 700)};
    n = tern_tcp_sack_update(&b, 500, 1000, d2, 2);
    assert_int_equal(n.dsack, 1);
    assert_false(n.new_sacked);
    /* Beyond what was sent, empty, reversed, or reaching below SND.UNA
     * (not first, so not a D-SACK): ignored. */
    struct tern_tcp_sack_block bad[] = {B(800, 900), B(900, 1100), B(750, 750), B(760, 740),
                                        B(400, 520)};
    n = tern_tcp_sack_update(&b, 500, 1000, bad, 5);
    assert_int_equal(n.invalid, 4);
    expect_ranges(&b, (struct tern_tcp_sack_block[]){B(600, 700), B(800, 900)}, 2);
    tern_tcp_sack_clear(&b);
}

static void test_a_full_board_refuses_new_ranges_but_merges(void **state)
{
    (void)state;
    struct tern_tcp_sackboard b;
    tern_tcp_sack_init(&b);
    for (uint32_t i = 0; i < TERN_TCP_SACKBOARD_MAX; i++) {
        struct tern_tcp_sack_block blk = B(1000 + i * 100, 1000 + i * 100 + 50);
        struct tern_tcp_sack_news n = tern_tcp_sack_update(&b, 0, 100000, &blk, 1);
        assert_int_equal(n.dropped, 0);
    }
    struct tern_tcp_sack_block more = B(90000, 90100);
    struct tern_tcp_sack_news n = tern_tcp_sack_update(&b, 0, 100000, &more, 1);
    assert_int_equal(n.dropped, 1);
    assert_int_equal(b.rs->n, TERN_TCP_SACKBOARD_MAX);
    /* Filling a gap merges two ranges and needs no slot. */
    struct tern_tcp_sack_block gap = B(1050, 1100);
    n = tern_tcp_sack_update(&b, 0, 100000, &gap, 1);
    assert_int_equal(n.dropped, 0);
    assert_int_equal(b.rs->n, TERN_TCP_SACKBOARD_MAX - 1);
    tern_tcp_sack_clear(&b);
}

/* Segments of 100 bytes from 0; SND.MAX = 1000. */
static void test_islost_pipe_and_nextseg(void **state)
{
    (void)state;
    const uint32_t mss = 100;
    struct tern_tcp_sackboard b;
    tern_tcp_sack_init(&b);
    /* Holes [0,100) and [200,300); SACKed [100,200) and [300,500). */
    struct tern_tcp_sack_block in[] = {B(100, 200), B(300, 500)};
    tern_tcp_sack_update(&b, 0, 1000, in, 2);
    /* Above 0: 300 SACKed bytes > 2 * SMSS: lost. Above 200: 200: not. */
    assert_true(tern_tcp_sack_is_lost(&b, 0, mss, TERN_TCP_DUPTHRESH));
    assert_false(tern_tcp_sack_is_lost(&b, 200, mss, TERN_TCP_DUPTHRESH));
    /* Pipe: hole 0 is lost (0), hole 200 is not (100), tail 500..1000
     * is in flight (500). */
    assert_int_equal(tern_tcp_sack_pipe(&b, 0, 1000, 0, mss, TERN_TCP_DUPTHRESH), 600);
    /* After retransmitting [0,100), it counts once more. */
    assert_int_equal(tern_tcp_sack_pipe(&b, 0, 1000, 100, mss, TERN_TCP_DUPTHRESH), 700);
    uint32_t seq, len;
    /* Rule 1: the lost hole first. */
    assert_true(tern_tcp_sack_next_hole(&b, 0, 0, mss, TERN_TCP_DUPTHRESH, true, &seq, &len));
    assert_int_equal(seq, 0);
    assert_int_equal(len, 100);
    /* Past HighRxt no hole is lost; rule 3 takes the next one. */
    assert_false(tern_tcp_sack_next_hole(&b, 0, 100, mss, TERN_TCP_DUPTHRESH, true, &seq, &len));
    assert_true(tern_tcp_sack_next_hole(&b, 0, 100, mss, TERN_TCP_DUPTHRESH, false, &seq, &len));
    assert_int_equal(seq, 200);
    assert_int_equal(len, 100);
    /* Three discontiguous ranges above also make a hole lost. */
    struct tern_tcp_sack_block more[] = {B(600, 610), B(700, 710)};
    tern_tcp_sack_update(&b, 0, 1000, more, 2);
    assert_true(tern_tcp_sack_is_lost(&b, 200, mss, TERN_TCP_DUPTHRESH));
    assert_true(tern_tcp_sack_holds(&b, 605));
    assert_false(tern_tcp_sack_holds(&b, 650));
    /* Nothing left to resend once HighRxt passes the last hole. */
    assert_false(tern_tcp_sack_next_hole(&b, 0, 700, mss, TERN_TCP_DUPTHRESH, false, &seq, &len));
    tern_tcp_sack_clear(&b);
}

static void test_a_watched_retransmission_is_lost_only_behind_later_data(void **state)
{
    (void)state;
    /* SMSS 100. Sent 0..1000; 0..100 lost, SACKs for 100..400; the hole
     * goes again when SND.MAX is 1000, and [0, 100) is watched. */
    struct tern_tcp_sackboard b;
    tern_tcp_sack_init(&b);
    uint32_t seq = 7, len = 7;
    tern_tcp_sack_rxt_note(&b, 0, 100, 1000); /* no board yet: nothing to judge by */
    assert_false(tern_tcp_sack_rxt_lost(&b, 0, 100, TERN_TCP_DUPTHRESH, &seq, &len));
    struct tern_tcp_sack_block in1[] = {B(100, 400)};
    tern_tcp_sack_update(&b, 0, 1000, in1, 1);
    tern_tcp_sack_rxt_note(&b, 0, 100, 1000);
    tern_tcp_sack_rxt_note(&b, 400, 500, 1000); /* one at a time: ignored */
    assert_false(tern_tcp_sack_rxt_lost(&b, 0, 100, TERN_TCP_DUPTHRESH, &seq, &len));
    /* Data sent before the retransmission, SACKed: no verdict. */
    struct tern_tcp_sack_block in2[] = {B(400, 1000)};
    tern_tcp_sack_update(&b, 0, 1300, in2, 1);
    assert_false(tern_tcp_sack_rxt_lost(&b, 0, 100, TERN_TCP_DUPTHRESH, &seq, &len));
    /* Two segments sent after it: not yet (IsLost wants more than 2). */
    struct tern_tcp_sack_block in3[] = {B(1000, 1200)};
    tern_tcp_sack_update(&b, 0, 1300, in3, 1);
    assert_false(tern_tcp_sack_rxt_lost(&b, 0, 100, TERN_TCP_DUPTHRESH, &seq, &len));
    /* The third: lost; what to resend; then no longer watched. */
    struct tern_tcp_sack_block in4[] = {B(1200, 1300)};
    tern_tcp_sack_update(&b, 0, 1300, in4, 1);
    assert_true(tern_tcp_sack_rxt_lost(&b, 0, 100, TERN_TCP_DUPTHRESH, &seq, &len));
    assert_int_equal(seq, 0);
    assert_int_equal(len, 100);
    assert_false(tern_tcp_sack_rxt_lost(&b, 0, 100, TERN_TCP_DUPTHRESH, &seq, &len));

    /* Watched again, then acked: forgotten, never lost. */
    tern_tcp_sack_rxt_note(&b, 0, 100, 1300);
    tern_tcp_sack_advance(&b, 50);
    struct tern_tcp_sack_block in5[] = {B(1300, 1700)};
    tern_tcp_sack_update(&b, 50, 1700, in5, 1);
    /* Its rest, [50, 100). */
    assert_true(tern_tcp_sack_rxt_lost(&b, 50, 100, TERN_TCP_DUPTHRESH, &seq, &len));
    assert_int_equal(seq, 50);
    assert_int_equal(len, 50);
    tern_tcp_sack_rxt_note(&b, 50, 100, 1700);
    tern_tcp_sack_advance(&b, 100);
    assert_false(tern_tcp_sack_rxt_lost(&b, 100, 100, TERN_TCP_DUPTHRESH, &seq, &len));
    tern_tcp_sack_rxt_note(&b, 1700, 1800, 1800);
    tern_tcp_sack_rxt_forget(&b);
    assert_false(tern_tcp_sack_rxt_lost(&b, 100, 100, TERN_TCP_DUPTHRESH, &seq, &len));
    tern_tcp_sack_clear(&b);
}

/* What tcp_input.c measures reordering with: the highest SACKed byte,
 * the lowest byte an update SACKs for the first time, and IsLost with
 * DupThresh raised. */
static void test_fack_first_new_byte_and_a_raised_dupthresh(void **state)
{
    (void)state;
    const uint32_t mss = 100;
    struct tern_tcp_sackboard b;
    tern_tcp_sack_init(&b);
    uint32_t fack = 7;
    assert_false(tern_tcp_sack_fack(&b, &fack));
    struct tern_tcp_sack_block in1[] = {B(200, 300)};
    struct tern_tcp_sack_news n = tern_tcp_sack_update(&b, 0, 2000, in1, 1);
    assert_true(n.has_low_new);
    assert_int_equal(n.low_new, 200);
    assert_true(tern_tcp_sack_fack(&b, &fack));
    assert_int_equal(fack, 300);
    /* Covering [100, 400): new below and above the range; lowest 100. */
    struct tern_tcp_sack_block in2[] = {B(100, 400)};
    n = tern_tcp_sack_update(&b, 0, 2000, in2, 1);
    assert_int_equal(n.low_new, 100);
    /* [350, 500): new only from 400. */
    struct tern_tcp_sack_block in3[] = {B(350, 500)};
    n = tern_tcp_sack_update(&b, 0, 2000, in3, 1);
    assert_int_equal(n.low_new, 400);
    /* Ranges [100, 500) and [600, 700); [450, 650) is new from 500. */
    struct tern_tcp_sack_block in4[] = {B(600, 700)};
    tern_tcp_sack_update(&b, 0, 2000, in4, 1);
    struct tern_tcp_sack_block in5[] = {B(450, 650)};
    n = tern_tcp_sack_update(&b, 0, 2000, in5, 1);
    assert_int_equal(n.low_new, 500);
    assert_true(tern_tcp_sack_fack(&b, &fack));
    assert_int_equal(fack, 700);
    /* Nothing new: no lowest byte. */
    n = tern_tcp_sack_update(&b, 0, 2000, in5, 1);
    assert_false(n.new_sacked);
    assert_false(n.has_low_new);
    /* [100, 700) SACKed, the hole [0, 100): six segments above it are
     * a loss for DupThresh 3 to 6, not for 7 or more. */
    assert_true(tern_tcp_sack_is_lost(&b, 0, mss, TERN_TCP_DUPTHRESH));
    assert_true(tern_tcp_sack_is_lost(&b, 0, mss, 6));
    assert_false(tern_tcp_sack_is_lost(&b, 0, mss, 7));
    uint32_t seq, len;
    assert_false(tern_tcp_sack_next_hole(&b, 0, 0, mss, 7, true, &seq, &len));
    assert_int_equal(tern_tcp_sack_pipe(&b, 0, 1000, 0, mss, 7), 100 + 300);
    assert_int_equal(tern_tcp_sack_pipe(&b, 0, 1000, 0, mss, 6), 300);
    /* The recovery's first retransmission: taken once. */
    struct tern_tcp_sack_rxt1 in = {.seq = 0, .tsval = 1234, .cwnd = 10, .ssthresh = 20},
                              out = {0};
    tern_tcp_sack_rxt1_note(&b, &in);
    assert_true(tern_tcp_sack_rxt1_take(&b, &out));
    assert_int_equal(out.seq, 0);
    assert_int_equal(out.tsval, 1234);
    assert_int_equal(out.cwnd, 10);
    assert_int_equal(out.ssthresh, 20);
    assert_false(tern_tcp_sack_rxt1_take(&b, &out));
    tern_tcp_sack_clear(&b);
    tern_tcp_sack_rxt1_note(&b, &in); /* no board: nothing kept */
    assert_false(tern_tcp_sack_rxt1_take(&b, &out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_merge_and_the_cumulative_ack_prunes),
        cmocka_unit_test(test_fack_first_new_byte_and_a_raised_dupthresh),
        cmocka_unit_test(test_dsack_and_invalid_blocks_are_ignored),
        cmocka_unit_test(test_a_full_board_refuses_new_ranges_but_merges),
        cmocka_unit_test(test_islost_pipe_and_nextseg),
        cmocka_unit_test(test_a_watched_retransmission_is_lost_only_behind_later_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
