#!/bin/bash
# Real peer: the Linux kernel against Tern across a TAP device, inside a
# network namespace this script creates and always deletes.
#
#   kernel_peer.sh PATH/TO/tap_peer TMPDIR
#
# Namespace tern-tap-PID: tern0 (TAP) holds 192.0.2.1/24 for the kernel,
# Tern (tap_peer) is 192.0.2.2/24 on the same device; lo is up; no other
# route exists, so nothing leaves the namespace (DESIGN.md, network
# hygiene). The kernel side runs a UDP echo server on 192.0.2.1:9000 for
# tap_peer's own checks, then checks Tern with ping, a UDP echo client
# (sizes 0..20000, fragmented by the kernel) against Tern's port 7, and a
# connected socket to a closed port (ICMP port unreachable from Tern).
# Finally tap_peer must exit 0 and its pcap must decode cleanly in tshark.
#
# Exit 0: all passed. 1: a check failed. 77: cannot run here (not root,
# no /dev/net/tun, no namespaces). Every wait is bounded; the worst case
# adds up to about 80 s, under CTest's 120 s timeout (a run that passes
# takes about 2 s).
set -u

TAP_PEER=${1:-}
TMP=${2:-}
if [ -z "$TAP_PEER" ] || [ -z "$TMP" ]; then
    echo "usage: $0 PATH/TO/tap_peer TMPDIR" >&2
    exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TSHARK_CHECK="$HERE/../tools/tshark_check.sh"
PY=/usr/bin/python3 # the system's, not a pyenv shim
. "$HERE/netns.sh"

netns_require kernel_peer ping timeout
[ -x "$PY" ] || { echo "SKIP: $PY is missing"; exit 77; }
[ -x "$TAP_PEER" ] || { echo "FAIL: tap_peer '$TAP_PEER' is not executable"; exit 1; }
TAP_PEER=$(cd "$(dirname "$TAP_PEER")" && pwd)/$(basename "$TAP_PEER")
mkdir -p "$TMP" || { echo "FAIL: cannot create $TMP"; exit 1; }
TMP=$(cd "$TMP" && pwd)

NS=tern-tap-$$
KERNEL_IP=192.0.2.1
TERN_IP=192.0.2.2
DEV=tern0
PCAP=$TMP/kernel_peer-$$.pcap
PEER_LOG=$TMP/kernel_peer-$$.tap_peer.log
ECHO_LOG=$TMP/kernel_peer-$$.echo.log
rm -f "$PCAP" "$PEER_LOG" "$ECHO_LOG"

PEER_PID=
ECHO_PID=
cleanup() {
    for pid in $PEER_PID $ECHO_PID; do
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    netns_delete
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILED=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }
# Foreground only: a function run with & would be a subshell, and $! its pid.
nsx() { ip netns exec "$NS" "$@"; }

netns_make "$NS" "$DEV" "$KERNEL_IP/24" || exit $?
echo "kernel_peer: namespace $NS, $DEV $KERNEL_IP/24 (kernel) <-> $TERN_IP/24 (Tern)"

# Kernel UDP echo server for tap_peer's checks; it ends by itself.
ip netns exec "$NS" timeout 90 "$PY" -u - "$KERNEL_IP" 9000 60 >"$ECHO_LOG" 2>&1 <<'EOF' &
import select, socket, sys, time
addr, port, life = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
print("echo: ready", flush=True)
end = time.monotonic() + life
while time.monotonic() < end:
    r, _, _ = select.select([s], [], [], 0.5)
    if r:
        data, peer = s.recvfrom(65535)
        s.sendto(data, peer)
        print("echo: %d bytes from %s:%d" % (len(data), peer[0], peer[1]), flush=True)
EOF
ECHO_PID=$!

if ! wait_for "$ECHO_LOG" "echo: ready" 5 "$ECHO_PID"; then
    fail "kernel echo server did not start"
    cat "$ECHO_LOG"
    exit 1
fi

ip netns exec "$NS" "$TAP_PEER" --tap "$DEV" --addr "$TERN_IP/24" --peer "$KERNEL_IP" \
    --pcap "$PCAP" --duration 60 >"$PEER_LOG" 2>&1 &
PEER_PID=$!
if ! wait_for "$PEER_LOG" "tap_peer: ready" 5 "$PEER_PID"; then
    fail "tap_peer did not become ready"
    sed 's/^/  | /' "$PEER_LOG"
    exit 1
fi
pass "tap_peer ready on $DEV as $TERN_IP"
ip -n "$NS" -4 route show | sed 's/^/kernel_peer:   kernel route: /'

# 1. ping from the kernel. The kernel may have learnt Tern's MAC from
#    Tern's own ARP request; forget it so that Tern has to answer an ARP
#    request too.
ip -n "$NS" neigh flush dev "$DEV" 2>/dev/null
if out=$(nsx timeout 10 ping -n -c 3 -W 2 -i 0.2 "$TERN_IP" 2>&1); then
    pass "kernel ping $TERN_IP: $(echo "$out" | grep -E 'packets transmitted' )"
else
    fail "kernel ping $TERN_IP"
    echo "$out" | sed 's/^/  | /'
fi

# 2. UDP echo from the kernel, byte for byte (0 and 20000 bytes included;
#    the kernel fragments 3000 and 20000, Tern reassembles and fragments
#    its echo, the kernel reassembles that).
if out=$(nsx timeout 20 "$PY" - "$TERN_IP" 7 2>&1 <<'EOF'
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
def pattern(n, salt):
    return bytes(((i * 7) ^ (i >> 8) ^ salt) & 0xff for i in range(n))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3.0)
bad = 0
for salt, n in enumerate([0, 1, 1472, 3000, 20000], 1):
    msg = pattern(n, salt)
    s.sendto(msg, (addr, port))
    try:
        data, peer = s.recvfrom(65535)
    except socket.timeout:
        print("  %5d bytes: no echo within 3 s" % n); bad += 1; continue
    if peer != (addr, port):
        print("  %5d bytes: answer from %s:%d" % (n, peer[0], peer[1])); bad += 1
    elif data != msg:
        first = next((i for i in range(min(len(data), n)) if data[i] != msg[i]), min(len(data), n))
        print("  %5d bytes: echo of %d bytes differs from byte %d" % (n, len(data), first)); bad += 1
    else:
        print("  %5d bytes: echo matches" % n)
sys.exit(1 if bad else 0)
EOF
); then
    pass "kernel UDP echo via Tern port 7 (0, 1, 1472, 3000, 20000 bytes)"
    echo "$out"
else
    fail "kernel UDP echo via Tern port 7"
    echo "$out"
fi

# 2b. TCP echo from the kernel: 2 MB with a position-dependent pattern
#     through Tern's TCP, both ways at once, then an orderly close.
if out=$(nsx timeout 30 "$PY" - "$TERN_IP" 7 2>&1 <<'EOF'
import socket, sys, threading
addr, port = sys.argv[1], int(sys.argv[2])
N = 2 * 1024 * 1024
data = bytes(((i * 7919) ^ (i >> 9)) & 0xff for i in range(N))
s = socket.create_connection((addr, port), timeout=20)
def writer():
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=writer)
t.start()
got = bytearray()
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
t.join()
s.close()
if bytes(got) != data:
    first = next((i for i in range(min(len(got), N)) if got[i] != data[i]), min(len(got), N))
    print("  echo of %d bytes differs from byte %d" % (len(got), first)); sys.exit(1)
print("  %d bytes echoed intact, then EOF" % len(got))
EOF
); then
    pass "kernel TCP client to Tern's TCP echo (2 MB both ways, FIN both ways)"
    echo "$out"
else
    fail "kernel TCP client to Tern's TCP echo"
    echo "$out"
fi

# 3. ICMP port unreachable from Tern reaches a connected kernel socket.
if out=$(nsx timeout 6 "$PY" - "$TERN_IP" 9999 2>&1 <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3.0)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b"anyone on 9999?")
try:
    s.recv(100)
    print("  got a datagram back"); sys.exit(1)
except ConnectionRefusedError:
    print("  recv: ConnectionRefusedError"); sys.exit(0)
except socket.timeout:
    print("  recv: timed out, no ICMP port unreachable"); sys.exit(1)
EOF
); then
    pass "kernel connected UDP to closed port 9999 gets ECONNREFUSED"
else
    fail "kernel connected UDP to closed port 9999 gets ECONNREFUSED"
    echo "$out"
fi

# tap_peer's own checks, then stop it.
if wait_for "$PEER_LOG" "tap_peer: checks done" 25 "$PEER_PID"; then
    pass "tap_peer finished its checks"
else
    fail "tap_peer did not finish its checks in time"
fi
kill -TERM "$PEER_PID" 2>/dev/null
wait_exit "$PEER_PID" 5
rc=$?
if [ "$rc" = 124 ]; then
    fail "tap_peer did not exit within 5 s of SIGTERM"
    rc=
fi
PEER_PID=
echo "---- tap_peer log ($PEER_LOG) ----"
cat "$PEER_LOG"
echo "---- end of tap_peer log ----"
if [ "$rc" = 0 ]; then
    pass "tap_peer's own checks (exit 0)"
else
    fail "tap_peer's own checks (exit ${rc:-none})"
fi

kill -TERM "$ECHO_PID" 2>/dev/null
wait "$ECHO_PID" 2>/dev/null
ECHO_PID=

if out=$("$TSHARK_CHECK" "$PCAP" 2>&1); then
    pass "pcap decodes cleanly: $out"
else
    fail "pcap check ($PCAP)"
    echo "$out"
fi

if [ "$FAILED" = 0 ]; then
    echo "kernel_peer: ALL PASSED"
    exit 0
fi
echo "kernel_peer: FAILED (logs and pcap in $TMP)"
exit 1
