#!/bin/bash
# TCP against the Linux kernel across a TAP device, inside a network
# namespace this script creates and always deletes (issue 3).
#
#   tcp_kernel.sh bulk|impaired|story PATH/TO/tcp_peer PATH/TO/tcp_ksock TMPDIR
#
# Namespace tern-tcp-PID: tern0 (TAP) holds 192.0.2.1/24 for the kernel;
# Tern (tcp_peer) is 192.0.2.2/24 on the same device; no other route, so
# nothing leaves the namespace. tcp_ksock is the kernel's side (plain
# sockets). Every run of tcp_peer ends with its own checks: nothing alive
# but TIME_WAIT, TIME_WAIT over on schedule, then nothing at all.
#
# bulk:     100 MiB with the position-dependent pattern of tcp_pattern.h,
#           in all four combinations: Tern client or server, Tern sending
#           or receiving. Both ends report bytes and CRC-32; they must
#           agree, and each receiver checks every byte.
# impaired: the same with Tern's impairment wrapper on the TAP link, both
#           directions: 1% loss and 1% of frames held back 2 ms (reordered).
# story:    a Tern server answers 2000 back-to-back requests of 200 KiB;
#           tcp_ksock cuts a random half short (close, SO_LINGER 0 RST,
#           SHUT_WR, SHUT_RD + close), checks every byte it reads and the
#           whole answer of the others. TIME_WAIT is 2 s there: tcp_peer
#           checks it ends on schedule and that nothing is left.
#
# Offloads: the TAP link offers TSO and takes the kernel's coalesced
# frames (tern_tap_open_flags); a Tern sender that never used a
# super-frame fails. The captured runs have TSO withdrawn by the tee (the
# file shows MTU-sized frames from Tern) and record the kernel's coalesced
# frames as they came; bulk runs the captured set once more with
# --no-offload, the plain device of one frame per read and write.
#
# Captures: a 100 MiB capture is 100 MB of disk and minutes of tshark, so
# the 100 MiB runs are not captured. Instead every bulk/impaired
# combination runs a second time with 8 MiB (thousands of segments: slow
# start, steady state, losses and their recovery, the close), captured
# whole; the story runs a second time with 40 requests, captured whole.
# tshark_check.sh decodes each with checksums verified. The tee is on the
# stack's side of the impairment (see tcp_peer.c), so the capture holds
# every segment Tern sent and exactly the segments Tern received:
#   - a gap or reordering in Tern's own sequence space would be Tern's
#     fault and fails the check;
#   - in the impaired runs only, these warnings are tolerated, each for
#     its reason:
#     * from the kernel, "previous segment not captured" and
#       "out-of-order": the kernel's frames that the impairment lost or
#       held back (Tern never saw them, or saw them late);
#     * from the kernel, "D-SACK": the kernel saying it got a segment
#       twice, which a sender without reordering detection (NewReno over
#       a path that holds 1% of frames back 2 ms) causes by design;
#     * from Tern, "out-of-order": Wireshark's name for a retransmission
#       sent within one RTT of the latest segment when it did not count
#       the duplicate ACKs before it (it does not count Linux's, whose
#       window moves). Tern sending new data out of order would show as
#       "previous segment not captured" from Tern, which stays fatal;
#     * from either side, a RST without ACK: RFC 9293 3.10.7.1's answer
#       to a segment for a connection that no longer exists, here a
#       duplicate the impairment held back until after the close (or
#       Tern's ACK to it from TIME_WAIT, which the kernel, closed by
#       then, answers so). A RST that aborts a live connection carries an
#       ACK and stays fatal.
#   - in the story, the kernel's resets are the clients' aborts: the
#     "connection reset" warning is tolerated on the kernel's packets only.
#
# Sizes can be made smaller for a quick look: TERN_TCP_BULK_BYTES,
# TERN_TCP_CAPTURE_BYTES, TERN_TCP_STORY_REQUESTS, TERN_TCP_STORY_CAPTURED;
# TERN_TCP_STORY_SEED picks other cuts (the client prints the seed it
# used); TERN_TCP_KEEP=1 keeps the captures of a run that passed.
#
# Exit 0: all passed. 1: a check failed. 77: cannot run here (not root,
# no /dev/net/tun, no namespaces, no tshark). Every wait is bounded, and
# the whole script stays within TERN_TCP_BUDGET seconds (default 840,
# under CTest's 900), so that it always gets to delete its namespace: a
# run that would not fit in what is left is not started, and fails.
set -u

MODE=${1:-}
TCP_PEER=${2:-}
KSOCK=${3:-}
TMP=${4:-}
if [ -z "$MODE" ] || [ -z "$TCP_PEER" ] || [ -z "$KSOCK" ] || [ -z "$TMP" ]; then
    echo "usage: $0 bulk|impaired|story PATH/TO/tcp_peer PATH/TO/tcp_ksock TMPDIR" >&2
    exit 2
fi
case "$MODE" in bulk|impaired|story) ;; *) echo "unknown mode '$MODE'" >&2; exit 2 ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TSHARK_CHECK="$HERE/../tools/tshark_check.sh"
. "$HERE/netns.sh"

netns_require tcp_kernel tshark
for b in "$TCP_PEER" "$KSOCK"; do
    [ -x "$b" ] || { echo "FAIL: '$b' is not executable"; exit 1; }
done
TCP_PEER=$(cd "$(dirname "$TCP_PEER")" && pwd)/$(basename "$TCP_PEER")
KSOCK=$(cd "$(dirname "$KSOCK")" && pwd)/$(basename "$KSOCK")
mkdir -p "$TMP" || { echo "FAIL: cannot create $TMP"; exit 1; }
TMP=$(cd "$TMP" && pwd)

NS=tern-tcp-$$
KERNEL_IP=192.0.2.1
TERN_IP=192.0.2.2
DEV=tern0
PREFIX=$TMP/tcp_kernel-$MODE-$$
BULK_BYTES=${TERN_TCP_BULK_BYTES:-104857600}
CAPTURE_BYTES=${TERN_TCP_CAPTURE_BYTES:-8388608}
STORY_REQUESTS=${TERN_TCP_STORY_REQUESTS:-2000}
STORY_CAPTURED=${TERN_TCP_STORY_CAPTURED:-40}
STORY_SEED=${TERN_TCP_STORY_SEED:-20240}
IMPAIR="--loss 10000 --reorder 10000 --reorder-us 2000"
BUDGET=${TERN_TCP_BUDGET:-840}

BG_PIDS=
kill_bg() {
    local pid
    for pid in $BG_PIDS; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    BG_PIDS=
}
cleanup() {
    kill_bg
    netns_delete
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILED=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }

netns_make "$NS" "$DEV" "$KERNEL_IP/24" || exit $?
echo "tcp_kernel: $MODE: namespace $NS, $DEV $KERNEL_IP/24 (kernel) <-> $TERN_IP/24 (Tern)"

show() { # LABEL FILE
    echo "---- $1 ($2) ----"
    [ -e "$2" ] && cat "$2"
}

result_of() { # FILE PREFIX: "bytes=N crc=X" from its RESULT line
    grep -m1 "^$2: RESULT" "$1" | sed -e 's/.*RESULT dir=[a-z]* //'
}

# run_pair LABEL SECONDS FIRST TERN_ARGS... -- KSOCK_ARGS...
#   FIRST is "tern" (Tern listens) or "kernel" (the kernel listens): that
#   side starts first and the other starts once it is ready.
run_pair() {
    local label=$1 secs=$2 first=$3
    shift 3
    # A run takes at most secs + 30 s (see the waits below); the checks of
    # the captures after the runs need some time too.
    local left=$((BUDGET - SECONDS - 60))
    if [ "$left" -lt $((secs + 30)) ]; then
        if [ "$left" -lt 60 ]; then
            fail "$label: not started, the time budget of $BUDGET s is spent"
            return
        fi
        secs=$((left - 30))
    fi
    local targs=() kargs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do targs+=("$1"); shift; done
    shift
    kargs=("$@")
    local tlog="$PREFIX.$label.tern.log" klog="$PREFIX.$label.kernel.log"
    local tpid= kpid= trc krc
    rm -f "$tlog" "$klog"
    start_side() { # tern|kernel, inside the namespace, in the background
        if [ "$1" = tern ]; then
            ip netns exec "$NS" "$TCP_PEER" "${targs[@]}" --duration "$secs" >"$tlog" 2>&1 &
            tpid=$!
        else
            ip netns exec "$NS" "$KSOCK" "${kargs[@]}" --timeout "$secs" >"$klog" 2>&1 &
            kpid=$!
        fi
        BG_PIDS="$BG_PIDS $!"
    }
    start_side "$first"
    if [ "$first" = tern ]; then
        wait_for "$tlog" "tcp_peer: ready" 10 "$tpid"
    else
        wait_for "$klog" "ksock: listening" 10 "$kpid"
    fi || {
        fail "$label: the $first side did not become ready"
        kill_bg
        show "tcp_peer" "$tlog"
        show "tcp_ksock" "$klog"
        return
    }
    if [ "$first" = tern ]; then start_side kernel; else start_side tern; fi
    # Both bound themselves (--duration, --timeout) and tcp_peer's end
    # checks add at most about 15 s; beyond that they are killed.
    wait_exit "$kpid" $((secs + 20))
    krc=$?
    wait_exit "$tpid" $((secs + 30))
    trc=$?
    BG_PIDS=
    show "tcp_ksock" "$klog"
    show "tcp_peer" "$tlog"
    echo "---- end of $label ----"
    local ok=1
    [ "$krc" = 0 ] || { fail "$label: tcp_ksock exit $krc"; ok=0; }
    [ "$trc" = 0 ] || { fail "$label: tcp_peer exit $trc"; ok=0; }
    if grep -q "ksock: RESULT dir=" "$klog" 2>/dev/null; then
        local kres tres
        kres=$(result_of "$klog" ksock)
        tres=$(result_of "$tlog" tcp_peer)
        if [ -z "$kres" ] || [ "$kres" != "$tres" ]; then
            fail "$label: the two ends disagree: kernel '$kres', Tern '$tres'"
            ok=0
        else
            echo "tcp_kernel: $label: both ends: $kres"
        fi
    fi
    [ "$ok" = 1 ] && pass "$label"
}

# check_pcap LABEL FILE [TOLERATED]
check_pcap() {
    local out
    if out=$("$TSHARK_CHECK" "$2" "${3:-}" 2>&1); then
        pass "$1 capture decodes cleanly: $out"
    else
        fail "$1 capture check ($2)"
        echo "$out"
    fi
}

# The four combinations: Tern client or server, Tern sending or receiving.
bulk_four() { # TAG BYTES SECONDS [--pcap] [tcp_peer args...]
    local tag=$1 bytes=$2 secs=$3
    shift 3
    local pcap=0
    if [ "${1:-}" = --pcap ]; then pcap=1; shift; fi
    local extra=("$@") port=5000 salt=1 role dir kdir krole first label p
    for role in client server; do
        for dir in send recv; do
            port=$((port + 1))
            salt=$((salt + 1))
            if [ "$dir" = send ]; then kdir=recv; else kdir=send; fi
            if [ "$role" = client ]; then krole=server; first=kernel; else krole=client; first=tern; fi
            label="$tag-tern-$role-$dir"
            p=()
            [ "$pcap" = 1 ] && p=(--pcap "$PREFIX.$label.pcap")
            echo "== $label: Tern $role ${dir}s $bytes bytes"
            run_pair "$label" "$secs" "$first" bulk --tap "$DEV" --addr "$TERN_IP/24" \
                --peer "$KERNEL_IP" --role "$role" --dir "$dir" --port "$port" \
                --bytes "$bytes" --salt "$salt$port" --timewait-ms 1000 "${p[@]}" "${extra[@]}" \
                -- bulk --role "$krole" --dir "$kdir" --addr "$(
                    [ "$role" = client ] && echo "$KERNEL_IP" || echo "$TERN_IP")" \
                --port "$port" --bytes "$bytes" --salt "$salt$port"
        done
    done
}

# What the impaired and the story captures may show, and why: see the header.
IMPAIRED_OK="(ip.src == $KERNEL_IP && (tcp.analysis.lost_segment || tcp.analysis.out_of_order || tcp.options.sack.dsack)) || (ip.src == $TERN_IP && tcp.analysis.out_of_order) || (tcp.connection.rst && tcp.flags.ack == 0)"
KERNEL_RST="ip.src == $KERNEL_IP && tcp.connection.rst"

case "$MODE" in
bulk)
    bulk_four big "$BULK_BYTES" 240
    bulk_four cap "$CAPTURE_BYTES" 60 --pcap
    bulk_four plain "$CAPTURE_BYTES" 60 --pcap --no-offload
    for f in "$PREFIX".cap-*.pcap "$PREFIX".plain-*.pcap; do
        [ -e "$f" ] || { fail "no capture was written"; break; }
        check_pcap "$(basename "$f" .pcap)" "$f"
    done
    ;;
impaired)
    bulk_four big "$BULK_BYTES" 300 $IMPAIR --seed 7
    bulk_four cap "$CAPTURE_BYTES" 120 --pcap $IMPAIR --seed 11
    for f in "$PREFIX".cap-*.pcap; do
        [ -e "$f" ] || { fail "no capture was written"; break; }
        check_pcap "$(basename "$f" .pcap)" "$f" "$IMPAIRED_OK"
    done
    ;;
story)
    for run in big cap; do
        if [ "$run" = big ]; then n=$STORY_REQUESTS; p=(); secs=240; port=8081
        else n=$STORY_CAPTURED; p=(--pcap "$PREFIX.story-cap.pcap"); secs=60; port=8082; fi
        echo "== story-$run: $n requests of 200 KiB, half of them cut short by the client"
        run_pair "story-$run" "$secs" tern story --tap "$DEV" --addr "$TERN_IP/24" \
            --peer "$KERNEL_IP" --port "$port" --requests "$n" --timewait-ms 2000 "${p[@]}" \
            -- story --addr "$TERN_IP" --port "$port" --requests "$n" --seed "$((STORY_SEED + n))"
    done
    check_pcap story-cap "$PREFIX.story-cap.pcap" "$KERNEL_RST"
    ;;
esac

if [ "$FAILED" = 0 ]; then
    [ "${TERN_TCP_KEEP:-0}" = 1 ] || rm -f "$PREFIX".*.pcap
    echo "tcp_kernel: $MODE: ALL PASSED"
    exit 0
fi
echo "tcp_kernel: $MODE: FAILED (logs and captures in $TMP, $(basename "$PREFIX").*)"
exit 1
