#!/bin/bash
# HTTP requests per second under wrk: the HTTP example on a Tern stack
# over TAP beside its kernel-socket twin (same loop, same parser, same
# file reads: examples/http_core.c) over the kernel's loopback, in one
# run, printed as a Markdown table (docs/bench.md). Needs root: both
# servers and wrk run inside a network namespace made here and deleted at
# the end (192.0.2.0/24 on a TAP device, no route out; the twin binds the
# namespace's own 127.0.0.1).
#
#   bench/http_bench.sh BENCH_BUILD [--quick] [--seconds S] [--reps N] [--no-offload] [--owned]
#
# The TAP device carries offloads (TSO, the kernel's coalesced frames:
# tern_tap_open_flags) unless --no-offload asks for the plain device.
# Tern's stack runs in threaded mode (a runtime thread beside the serving
# thread) unless --owned runs it in owned mode (the serving thread alone).
#
# Each row is run REPS times (default 3) for S seconds (default 4), Tern
# and kernel alternating; a cell is the median requests per second, with
# the transfer rate wrk reports for that run.
set -u

BUILD=${1:-build-bench}
shift || true
SECS=4
REPS=3
OFFLOAD_ARG=()
OFFLOADS="TSO and coalesced frames"
MODE_ARG=()
MODE="its stack's runtime thread plus one serving thread on a tern_epoll set"
while [ $# -gt 0 ]; do
    case $1 in
    --quick) SECS=2; REPS=1 ;;
    --seconds) SECS=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --no-offload) OFFLOAD_ARG=(--no-offload); OFFLOADS="no offloads" ;;
    --owned) MODE_ARG=(--owned); MODE="owned mode: one thread polls the stack and serves from a tern_epoll set" ;;
    *) echo "usage: $0 BENCH_BUILD [--quick] [--seconds S] [--reps N] [--no-offload] [--owned]" >&2; exit 2 ;;
    esac
    shift
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/tests/tap/netns.sh"
TERN=$BUILD/examples/tern_http
KERN=$BUILD/bench/tern_http_kernel
if ! why=$(netns_can_run); then
    echo "bench-http: $why" >&2
    exit 1
fi
command -v wrk >/dev/null 2>&1 || { echo "bench-http: wrk is missing (scripts/setup.sh)" >&2; exit 1; }
for b in "$TERN" "$KERN"; do
    [ -x "$b" ] || { echo "bench-http: $b is not built" >&2; exit 1; }
done
TERN=$(cd "$(dirname "$TERN")" && pwd)/tern_http
KERN=$(cd "$(dirname "$KERN")" && pwd)/tern_http_kernel

NS=tern-bh-$$
DEV=tern0
TMP=$(mktemp -d /tmp/tern-bench-http.XXXXXX)
TPID=
KPID=
cleanup() {
    for p in $TPID $KPID; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    netns_delete
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$TMP/www"
# A 600-byte page and a 64 KiB file.
head -c 600 /dev/zero | tr '\0' 'x' >"$TMP/www/index.html"
head -c 65536 /dev/urandom >"$TMP/www/64k.bin"

netns_make "$NS" "$DEV" 192.0.2.1/24 >&2 || { echo "bench-http: namespace setup failed" >&2; exit 1; }
ip netns exec "$NS" "$TERN" --tap "$DEV" --addr 192.0.2.2/24 --root "$TMP/www" --port 80 \
    "${OFFLOAD_ARG[@]}" "${MODE_ARG[@]}" >"$TMP/tern.log" 2>&1 &
TPID=$!
ip netns exec "$NS" "$KERN" --addr 127.0.0.1 --port 8080 --root "$TMP/www" >"$TMP/kern.log" 2>&1 &
KPID=$!
wait_for "$TMP/tern.log" serving 10 "$TPID" || { cat "$TMP/tern.log"; exit 1; }
wait_for "$TMP/kern.log" serving 10 "$KPID" || { cat "$TMP/kern.log"; exit 1; }
TERN_URL=http://192.0.2.2:80
KERN_URL=http://127.0.0.1:8080
for u in "$TERN_URL" "$KERN_URL"; do # warm up: ARP, page cache
    ip netns exec "$NS" curl -s -m 5 -o /dev/null "$u/" || { echo "bench-http: $u does not answer" >&2; exit 1; }
done

# One wrk run: prints "REQS_PER_S MB_PER_S NOTE".
run_wrk() {
    local url=$1 conns=$2 out note threads=2
    [ "$conns" -lt 2 ] && threads=1 # wrk wants a connection per thread at least
    out=$(ip netns exec "$NS" timeout $((SECS + 30)) wrk -t "$threads" -c "$conns" -d "${SECS}s" --timeout 5s "$url" 2>&1)
    note=
    echo "$out" | grep -q 'Socket errors' && note="socket errors"
    echo "$out" | grep -q 'Non-2xx' && note="${note:+$note, }non-2xx answers"
    local rps mbs
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    mbs=$(echo "$out" | awk '/^Transfer\/sec/ {v=$2; if (v ~ /GB$/) {sub(/GB/,"",v); v*=1000} else if (v ~ /MB$/) sub(/MB/,"",v); else if (v ~ /KB$/) {sub(/KB/,"",v); v/=1000}; print v}')
    echo "${rps:-0} ${mbs:-0} ${note:-}"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

ROWS=("index.html 600 B|/|1" "index.html 600 B|/|16" "index.html 600 B|/|64" "64k.bin 64 KiB|/64k.bin|16")
echo "## HTTP requests per second (wrk -t 2, -t 1 for one connection; ${SECS} s per run, median of ${REPS})"
echo
echo "$(uname -sr), $(nproc) CPUs; Tern: tern_http over TAP (MTU 1500, $OFFLOADS), $MODE;"
echo "kernel: tern_http_kernel (same loop and parser on kernel sockets, one thread on an"
echo "epoll set) over loopback."
echo
echo "| file | connections | Tern over TAP, req/s (MB/s) | kernel over loopback, req/s (MB/s) | Tern / kernel |"
echo "|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
    IFS='|' read -r label path conns <<<"$row"
    : >"$TMP/t.rps"; : >"$TMP/k.rps"; : >"$TMP/t.mbs"; : >"$TMP/k.mbs"
    notes=
    for ((r = 0; r < REPS; r++)); do
        read -r rps mbs note < <(run_wrk "$TERN_URL$path" "$conns")
        echo "$rps" >>"$TMP/t.rps"; echo "$mbs" >>"$TMP/t.mbs"
        [ -n "$note" ] && notes="$notes Tern: $note;"
        read -r rps mbs note < <(run_wrk "$KERN_URL$path" "$conns")
        echo "$rps" >>"$TMP/k.rps"; echo "$mbs" >>"$TMP/k.mbs"
        [ -n "$note" ] && notes="$notes kernel: $note;"
    done
    t=$(median <"$TMP/t.rps"); k=$(median <"$TMP/k.rps")
    tm=$(median <"$TMP/t.mbs"); km=$(median <"$TMP/k.mbs")
    ratio=$(awk -v a="$t" -v b="$k" 'BEGIN {if (b > 0) printf "%.2fx", a / b; else print "-"}')
    printf '| %s | %s | %.0f (%.1f) | %.0f (%.1f) | %s |\n' "$label" "$conns" "$t" "$tm" "$k" "$km" "$ratio${notes:+ ($notes)}"
done
echo
netns_stop "$TPID" 10; trc=$NETNS_RC; TPID=
netns_stop "$KPID" 10; krc=$NETNS_RC; KPID=
echo "$(grep 'served' "$TMP/tern.log") (exit $trc)"
echo "$(grep 'served' "$TMP/kern.log") (exit $krc)"
