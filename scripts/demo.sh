#!/bin/bash
# The README's main command (`make demo`): Tern serving HTTP to the Linux
# kernel's curl and wrk over a TAP device.
#
#   scripts/demo.sh [BUILD_DIR]      (as root; `make demo` builds first)
#
# Makes a network namespace tern-demo-PID with a TAP device whose kernel
# side is 192.0.2.1/24 and no other route (nothing leaves the machine),
# starts examples/tern_http (threaded mode, one thread on a tern_epoll
# set) as 192.0.2.2 on that device, fetches a page with curl, runs wrk for
# a few seconds, prints wrk's result, the stack's socket table taken
# under load by tools/ternstat on the server's control socket, the
# server's summary and counters, and deletes the namespace whatever
# happens.
set -u

BUILD=${1:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/tests/tap/netns.sh"
HTTP=$BUILD/examples/tern_http
SECONDS_OF_LOAD=${DEMO_SECONDS:-3}

if ! why=$(netns_can_run); then
    echo "demo: $why; run 'make demo' as root (or 'make demo-sim' for the in-memory demo)" >&2
    exit 1
fi
for tool in curl wrk; do
    command -v "$tool" >/dev/null 2>&1 || { echo "demo: '$tool' is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
[ -x "$HTTP" ] || { echo "demo: $HTTP is not built" >&2; exit 1; }
HTTP=$(cd "$(dirname "$HTTP")" && pwd)/tern_http
TERNSTAT=$BUILD/tools/ternstat
[ -x "$TERNSTAT" ] || { echo "demo: $TERNSTAT is not built" >&2; exit 1; }

NS=tern-demo-$$
DEV=tern0
KIP=192.0.2.1
TIP=192.0.2.2
TMP=$(mktemp -d /tmp/tern-demo.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    netns_delete
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$TMP/www"
cat >"$TMP/www/index.html" <<'EOF'
<!doctype html>
<title>Tern</title>
<p>This page came from Tern, a TCP/IP stack running inside the tern_http
process, across a TAP device to the Linux kernel's curl.</p>
EOF

if ! netns_make "$NS" "$DEV" "$KIP/24" >&2; then
    echo "demo: could not set up namespace $NS" >&2
    exit 1
fi
echo "== namespace $NS: $DEV, kernel $KIP/24 <-> Tern $TIP/24 (no route out)"
ip netns exec "$NS" "$HTTP" --tap "$DEV" --addr "$TIP/24" --root "$TMP/www" --port 80 \
    --control "$TMP/control" --counters >"$TMP/http.log" 2>&1 &
PID=$!
if ! wait_for "$TMP/http.log" "serving" 10 "$PID"; then
    echo "demo: tern_http did not start:" >&2
    cat "$TMP/http.log" >&2
    exit 1
fi
echo "== tern_http started: $(head -1 "$TMP/http.log")"

echo
echo "== curl -i http://$TIP/"
if ! ip netns exec "$NS" timeout 10 curl -sS -i -m 8 "http://$TIP/"; then
    echo "demo: curl failed" >&2
    exit 1
fi

echo
echo "== wrk -t 2 -c 16 -d ${SECONDS_OF_LOAD}s http://$TIP/"
ip netns exec "$NS" timeout $((SECONDS_OF_LOAD + 20)) \
    wrk -t 2 -c 16 -d "${SECONDS_OF_LOAD}s" --timeout 5s "http://$TIP/" >"$TMP/wrk.out" 2>&1 &
WRK=$!
sleep 1
# The socket table while wrk's connections are open, asked by ternstat
# on tern_http's control socket.
timeout 10 "$TERNSTAT" "$TMP/control" sockets >"$TMP/ternstat.out" 2>&1
wait "$WRK"
wrk_rc=$?
cat "$TMP/wrk.out"

netns_stop "$PID" 10
rc=$NETNS_RC
PID=
echo
echo "== ternstat $TMP/control sockets, under load"
cat "$TMP/ternstat.out"
echo
echo "== tern_http's output: its summary and counters"
sed 1d "$TMP/http.log"
echo
if [ "$wrk_rc" = 0 ] && [ "$rc" = 0 ] && ! grep -qE 'Socket errors|Non-2xx' "$TMP/wrk.out"; then
    echo "== demo OK: $(awk '/Requests\/sec/ {print $2}' "$TMP/wrk.out") requests/s, no socket error, no non-2xx answer (the namespace goes now)"
    exit 0
fi
echo "== demo FAILED (wrk exit $wrk_rc, tern_http exit $rc)"
exit 1
