#!/bin/bash
# Real clients against the examples: the Linux kernel's curl, wrk and
# Python sockets talk to tern_http, tern_echo and tern_bulk across a TAP
# device, and tern_echo's client and tern_nc talk to kernel servers,
# inside a network namespace this script creates and always deletes.
#
#   examples_peer.sh BUILD/examples TMPDIR
#
# Namespace tern-ex-PID: tern0 (TAP) holds 192.0.2.1/24 for the kernel;
# each example in turn is 192.0.2.2/24 on the same device (one process at
# a time can hold a TAP device). No other route exists.
#   1. tern_http, recorded to a pcap: a small page (byte for byte), HEAD,
#      a 404, a malformed request (400), two pipelined requests on one
#      connection; the pcap must decode cleanly in tshark.
#   2. tern_http again, unrecorded: a 50 MB file whose sha256 must match,
#      a client that hangs up mid-answer (counted as aborted), a bounded
#      wrk run with no socket error and no non-2xx answer, the socket
#      table on SIGUSR1 and from ternstat on its control socket.
#  2b. tern_http --owned (its one thread drives the stack): the 50 MB
#      file again and a bounded wrk run, both clean.
#   3. tern_echo server, recorded: Python TCP echo (three connections at
#      once, every byte checked) and UDP echo (1 to 20000 bytes).
#   4. tern_bulk: a Python client asks `stat`, `lots N` for several N
#      (checking the pattern), an unknown command, and `q`.
#   5. tern_echo client and tern_nc against kernel servers (TCP, UDP),
#      and tern_nc listening for a kernel client; --gw: tern_nc through a
#      default route to 198.51.100.1, an address of the kernel off the link.
# Every example must then exit 0 on SIGTERM with a summary line saying
# "0 errors" (under ASan a leak would make the exit status non-zero).
#
# Exit 0: all passed. 1: a check failed. 77: cannot run here (not root,
# no /dev/net/tun, a tool missing). Every wait is bounded: the bounds add
# up to about 8 minutes, inside CTest's 10 (so that the trap always
# deletes the namespace); a run that passes takes about 10 s.
set -u

EX=${1:-}
TMP=${2:-}
if [ -z "$EX" ] || [ -z "$TMP" ]; then
    echo "usage: $0 BUILD/examples TMPDIR" >&2
    exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/netns.sh"
TSHARK_CHECK="$HERE/../tools/tshark_check.sh"
PY=/usr/bin/python3 # the system's, not a pyenv shim

if ! why=$(netns_can_run); then
    echo "SKIP: $why"
    exit 77
fi
for tool in curl wrk sha256sum timeout; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: '$tool' is not installed (scripts/setup.sh)"; exit 77; }
done
[ -x "$PY" ] || { echo "SKIP: $PY is missing"; exit 77; }
for p in tern_http tern_echo tern_bulk tern_nc; do
    [ -x "$EX/$p" ] || { echo "FAIL: $EX/$p is not built"; exit 1; }
done
EX=$(cd "$EX" && pwd)
TERNSTAT=$EX/../tools/ternstat
[ -x "$TERNSTAT" ] || { echo "FAIL: $TERNSTAT is not built"; exit 1; }
mkdir -p "$TMP" || { echo "FAIL: cannot create $TMP"; exit 1; }
TMP=$(cd "$TMP" && pwd)/examples_peer-$$
rm -rf "$TMP"
mkdir -p "$TMP/www/sub"

NS=tern-ex-$$
DEV=tern0
KIP=192.0.2.1
TIP=192.0.2.2
LINK=(--tap "$DEV" --addr "$TIP/24")

PID=
KPID=
cleanup() {
    for p in $PID $KPID; do
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    netns_delete
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

FAILED=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }
nsx() { ip netns exec "$NS" "$@"; }

netns_make "$NS" "$DEV" "$KIP/24"
rc=$?
[ "$rc" -eq 0 ] || exit "$rc"
echo "examples_peer: namespace $NS, $DEV $KIP/24 (kernel) <-> $TIP/24 (Tern)"

# start NAME ARGS...: run an example in the namespace, wait for its
# "serving" line. Its output goes to $TMP/NAME.log.
start() {
    local name=$1
    shift
    ip -n "$NS" neigh flush dev "$DEV" 2>/dev/null
    ip netns exec "$NS" "$@" >"$TMP/$name.log" 2>&1 &
    PID=$!
    if ! wait_for "$TMP/$name.log" "serving" 10 "$PID"; then
        fail "$name did not start"
        sed 's/^/  | /' "$TMP/$name.log"
        return 1
    fi
}

# stop NAME: SIGTERM; it must exit 0 with a summary line of 0 errors.
stop() {
    local name=$1 rc
    netns_stop "$PID" 10
    rc=$NETNS_RC
    PID=
    local summary
    summary=$(grep -E '^tern_[a-z]+: (served|answered|completed) ' "$TMP/$name.log" | tail -1)
    echo "  $name: ${summary:-no summary line}"
    if [ "$rc" != 0 ]; then
        fail "$name exit status ${rc} after SIGTERM"
        tail -30 "$TMP/$name.log" | sed 's/^/  | /'
    elif ! echo "$summary" | grep -q ", 0 errors$"; then
        fail "$name summary reports errors"
    else
        pass "$name stopped cleanly on SIGTERM"
    fi
}

# ---- 1. HTTP, small fetches, recorded ----
WWW=$TMP/www
printf '<!doctype html>\n<title>Tern</title>\n<p>Served by a TCP/IP stack in a process.</p>\n' >"$WWW/index.html"
head -c 3000 /dev/urandom >"$WWW/sub/small.bin"
if start http1 "$EX/tern_http" "${LINK[@]}" --root "$WWW" --pcap "$TMP/http-small.pcap"; then
    URL=http://$TIP
    if nsx timeout 10 curl -sS -m 8 -o "$TMP/index.got" "$URL/" && cmp -s "$TMP/index.got" "$WWW/index.html"; then
        pass "curl GET / returns index.html byte for byte"
    else
        fail "curl GET /"
    fi
    if nsx timeout 10 curl -sS -m 8 -o "$TMP/small.got" "$URL/sub/small.bin" && cmp -s "$TMP/small.got" "$WWW/sub/small.bin"; then
        pass "curl GET /sub/small.bin (3000 bytes) byte for byte"
    else
        fail "curl GET /sub/small.bin"
    fi
    code=$(nsx timeout 10 curl -s -m 8 -o /dev/null -w '%{http_code}' "$URL/missing.html")
    [ "$code" = 404 ] && pass "curl GET /missing.html: 404" || fail "curl GET /missing.html: '$code', not 404"
    head=$(nsx timeout 10 curl -sS -m 8 -I "$URL/sub/small.bin" | tr -d '\r')
    if echo "$head" | grep -q '^HTTP/1.1 200' && echo "$head" | grep -qi '^content-length: 3000$'; then
        pass "curl HEAD: 200 with Content-Length 3000"
    else
        fail "curl HEAD"
        echo "$head" | sed 's/^/  | /'
    fi
    if out=$(nsx timeout 15 "$PY" - "$TIP" 80 "$WWW/index.html" 2>&1 <<'EOF'
import socket, sys
addr, port, index = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "rb").read()

def read_response(f):
    status = f.readline()
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, v = line.decode().split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status.decode().strip(), headers, body

bad = 0
# Two requests in one write on one connection: two answers, in order.
s = socket.create_connection((addr, port), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /nothing HTTP/1.1\r\nHost: t\r\n\r\n")
f = s.makefile("rb")
st1, h1, b1 = read_response(f)
st2, h2, b2 = read_response(f)
if not (st1.startswith("HTTP/1.1 200") and b1 == index and st2.startswith("HTTP/1.1 404")):
    print("  pipelined: %r %r / %r" % (st1, b1[:40], st2)); bad += 1
else:
    print("  pipelined: 200 with index.html, then 404, on one connection")
s.close()
# Malformed requests: 400, then the server closes.
for req in (b"GARBAGE\r\n\r\n", b"GET nopath HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nno colon\r\n\r\n"):
    s = socket.create_connection((addr, port), timeout=5)
    s.sendall(req)
    f = s.makefile("rb")
    st, h, b = read_response(f)
    rest = f.read()
    if not st.startswith("HTTP/1.1 400") or rest != b"":
        print("  %r: %r then %r" % (req, st, rest[:40])); bad += 1
    else:
        print("  %r: 400 and close" % req)
    s.close()
# HTTP/1.0 without keep-alive: the server closes after the answer.
s = socket.create_connection((addr, port), timeout=5)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
f = s.makefile("rb")
st, h, b = read_response(f)
if not (st.startswith("HTTP/1.1 200") and b == index and f.read() == b""):
    print("  HTTP/1.0: %r" % st); bad += 1
else:
    print("  HTTP/1.0: 200 and close")
sys.exit(1 if bad else 0)
EOF
    ); then
        pass "Python: pipelining, 400 for malformed requests, HTTP/1.0 close"
        echo "$out"
    else
        fail "Python HTTP checks"
        echo "$out"
    fi
    stop http1
    if out=$("$TSHARK_CHECK" "$TMP/http-small.pcap" 2>&1); then
        pass "HTTP pcap decodes cleanly: $out"
    else
        fail "HTTP pcap check"
        echo "$out"
    fi
fi

# ---- 2. HTTP, 50 MB, a hang-up, wrk ----
head -c 50000000 /dev/urandom >"$WWW/big.bin"
want=$(sha256sum <"$WWW/big.bin" | cut -d' ' -f1)
if start http2 "$EX/tern_http" "${LINK[@]}" --root "$WWW" --control "$TMP/http2.ctl"; then
    URL=http://$TIP
    got=$(nsx timeout 60 curl -sS -m 55 "$URL/big.bin" | sha256sum | cut -d' ' -f1)
    if [ "$got" = "$want" ]; then
        pass "curl GET /big.bin: 50 MB, sha256 matches"
    else
        fail "curl GET /big.bin: sha256 $got, want $want"
    fi
    if out=$(nsx timeout 15 "$PY" - "$TIP" 80 2>&1 <<'EOF'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
got = 0
while got < 200000:
    chunk = s.recv(65536)
    if not chunk:
        print("  the answer ended after %d bytes" % got); sys.exit(1)
    got += len(chunk)
# Unread data in our buffer: close() sends a RST mid-answer.
s.close()
print("  hung up after %d bytes of the 50 MB answer" % got)
EOF
    ); then
        echo "$out"
    else
        fail "Python hang-up client"
        echo "$out"
    fi
    code=$(nsx timeout 10 curl -s -m 8 -o /dev/null -w '%{http_code}' "$URL/")
    [ "$code" = 200 ] && pass "the server still answers after the hang-up" || fail "GET / after the hang-up: '$code'"
    nsx timeout 30 wrk -t 2 -c 8 -d 4s --timeout 5s "$URL/" >"$TMP/wrk.out" 2>&1 &
    WRK=$!
    sleep 1.5
    kill -USR1 "$PID" 2>/dev/null # the socket table, under load
    timeout 10 "$TERNSTAT" "$TMP/http2.ctl" sockets >"$TMP/ternstat.out" 2>&1
    ternstat_rc=$?
    wait "$WRK"
    wrk_rc=$?
    sed 's/^/  wrk| /' "$TMP/wrk.out"
    reqs=$(awk '/requests in/ {print $1}' "$TMP/wrk.out")
    if [ "$wrk_rc" != 0 ]; then
        fail "wrk exit status $wrk_rc"
    elif grep -q 'Socket errors' "$TMP/wrk.out"; then
        fail "wrk reports socket errors: $(grep 'Socket errors' "$TMP/wrk.out")"
    elif grep -q 'Non-2xx' "$TMP/wrk.out"; then
        fail "wrk reports non-2xx answers: $(grep 'Non-2xx' "$TMP/wrk.out")"
    elif [ -z "$reqs" ] || [ "$reqs" -le 0 ]; then
        fail "wrk made no request"
    else
        pass "wrk 4 s, 8 connections: $reqs requests, no socket error, no non-2xx"
    fi
    if wait_for "$TMP/http2.log" "ESTABLISHED" 3 "$PID"; then
        pass "SIGUSR1 printed the socket table with wrk's connections"
    else
        fail "no socket table with ESTABLISHED connections after SIGUSR1"
    fi
    if [ "$ternstat_rc" = 0 ] && grep -q "LISTEN" "$TMP/ternstat.out" &&
        grep -q "ESTABLISHED" "$TMP/ternstat.out"; then
        pass "ternstat on --control: the listener and wrk's connections"
    else
        fail "ternstat on --control (exit $ternstat_rc):"
        sed 's/^/  | /' "$TMP/ternstat.out"
    fi
    stop http2
    aborted=$(sed -n 's/.*; \([0-9]*\) aborted by the client.*/\1/p' "$TMP/http2.log" | tail -1)
    if [ -n "$aborted" ] && [ "$aborted" -ge 1 ]; then
        pass "the hang-up was counted ($aborted aborted answer(s))"
    else
        fail "the hang-up mid-answer was not counted as aborted ('$aborted')"
    fi
fi

# ---- 2b. HTTP in owned mode: the serving thread drives the stack ----
if start http_owned "$EX/tern_http" "${LINK[@]}" --root "$WWW" --owned; then
    URL=http://$TIP
    if grep -q "(owned mode)" "$TMP/http_owned.log"; then
        pass "tern_http --owned says it runs in owned mode"
    else
        fail "tern_http --owned: no '(owned mode)' in its serving line"
    fi
    got=$(nsx timeout 60 curl -sS -m 55 "$URL/big.bin" | sha256sum | cut -d' ' -f1)
    if [ "$got" = "$want" ]; then
        pass "owned mode: curl GET /big.bin: 50 MB, sha256 matches"
    else
        fail "owned mode: curl GET /big.bin: sha256 $got, want $want"
    fi
    nsx timeout 30 wrk -t 2 -c 16 -d 3s --timeout 5s "$URL/" >"$TMP/wrk-owned.out" 2>&1
    wrk_rc=$?
    sed 's/^/  wrk| /' "$TMP/wrk-owned.out"
    reqs=$(awk '/requests in/ {print $1}' "$TMP/wrk-owned.out")
    if [ "$wrk_rc" != 0 ] || grep -q 'Socket errors\|Non-2xx' "$TMP/wrk-owned.out" ||
        [ -z "$reqs" ] || [ "$reqs" -le 0 ]; then
        fail "owned mode: wrk (exit $wrk_rc, '$reqs' requests) had errors or made no request"
    else
        pass "owned mode: wrk 3 s, 16 connections: $reqs requests, no socket error, no non-2xx"
    fi
    stop http_owned
fi
rm -f "$WWW/big.bin"

# ---- 3. Echo server, recorded ----
if start echo "$EX/tern_echo" server "${LINK[@]}" --pcap "$TMP/echo.pcap"; then
    if out=$(nsx timeout 30 "$PY" - "$TIP" 7 2>&1 <<'EOF'
import socket, sys, threading
addr, port = sys.argv[1], int(sys.argv[2])
N = 300000
def pattern(n, salt):
    return bytes(((i * 7919) ^ (i >> 9) ^ salt) & 0xff for i in range(n))
results = {}
def one(k):
    data = pattern(N, k)
    s = socket.create_connection((addr, port), timeout=10)
    w = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
    w.start()
    got = bytearray()
    while True:
        c = s.recv(65536)
        if not c:
            break
        got += c
    w.join()
    s.close()
    results[k] = bytes(got) == data
ts = [threading.Thread(target=one, args=(k,)) for k in range(3)]
[t.start() for t in ts]
[t.join() for t in ts]
print("  TCP: %s" % ", ".join("conn %d %s" % (k, "intact" if ok else "DIFFERS") for k, ok in sorted(results.items())))
bad = sum(1 for ok in results.values() if not ok) + (3 - len(results))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(3)
for salt, n in enumerate([1, 100, 1472, 3000, 20000], 1):
    msg = pattern(n, salt)
    u.sendto(msg, (addr, port))
    try:
        data, peer = u.recvfrom(65535)
    except socket.timeout:
        print("  UDP %5d bytes: no echo" % n); bad += 1; continue
    ok = data == msg and peer == (addr, port)
    print("  UDP %5d bytes: %s" % (n, "matches" if ok else "DIFFERS"))
    bad += 0 if ok else 1
sys.exit(1 if bad else 0)
EOF
    ); then
        pass "Python TCP echo (3 x 300 kB at once) and UDP echo (1..20000 bytes)"
        echo "$out"
    else
        fail "Python echo clients"
        echo "$out"
    fi
    stop echo
    if out=$("$TSHARK_CHECK" "$TMP/echo.pcap" 2>&1); then
        pass "echo pcap decodes cleanly: $out"
    else
        fail "echo pcap check"
        echo "$out"
    fi
fi

# ---- 4. Bulk server ----
if start bulk "$EX/tern_bulk" "${LINK[@]}"; then
    if out=$(nsx timeout 30 "$PY" - "$TIP" 7777 2>&1 <<'EOF'
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
def pattern(n):
    return bytes((i + (i >> 8) + (i >> 16) + (i >> 24)) & 0xff for i in range(n))
def read_exactly(s, n):
    buf = bytearray()
    while len(buf) < n:
        c = s.recv(min(1 << 20, n - len(buf)))
        if not c:
            break
        buf += c
    return bytes(buf)
bad = 0
s = socket.create_connection((addr, port), timeout=10)
s.sendall(b"stat\n")
r = read_exactly(s, 3)
print("  stat: %r" % r); bad += r != b"OK\n"
for n in [0, 1, 255, 256, 65537, 1000000, 3000000]:
    s.sendall(b"lots %d\r\n" % n)
    got, want = read_exactly(s, n), pattern(n)
    ok = got == want
    if not ok:
        first = next((i for i in range(min(len(got), n)) if got[i] != want[i]), len(got))
        print("  lots %d: %d bytes, differs at %d" % (n, len(got), first)); bad += 1
    else:
        print("  lots %d: pattern intact" % n)
s.sendall(b"stat\n")
r = read_exactly(s, 3)
print("  stat after lots: %r" % r); bad += r != b"OK\n"
s.sendall(b"bogus\n")
r = s.recv(100)
print("  bogus: %r" % r); bad += not r.startswith(b"ERR")
s.sendall(b"q\n")
r = s.recv(100)
print("  q: %s" % ("closed" if r == b"" else repr(r))); bad += r != b""
s.close()
sys.exit(1 if bad else 0)
EOF
    ); then
        pass "Python bulk client: stat, lots N (0 to 3 MB) pattern intact, unknown command, q"
        echo "$out"
    else
        fail "Python bulk client"
        echo "$out"
    fi
    stop bulk
fi

# ---- 5. Tern clients against kernel servers ----
nsx timeout 30 "$PY" -u - "$KIP" 7007 >"$TMP/kserver.log" 2>&1 <<'EOF' &
import socket, sys, threading
addr, port = sys.argv[1], int(sys.argv[2])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((addr, port))
l.listen(4)
print("kernel: serving", flush=True)
# First an echo client, then a netcat that wants its line upper-cased.
c, _ = l.accept()
while True:
    d = c.recv(65536)
    if not d:
        break
    c.sendall(d)
c.close()
c, _ = l.accept()
data = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    data += d
c.sendall(data.upper())
c.close()
print("kernel: done", flush=True)
EOF
KPID=$!
if wait_for "$TMP/kserver.log" "kernel: serving" 5 "$KPID"; then
    if nsx timeout 30 "$EX/tern_echo" client "${LINK[@]}" --to "$KIP:7007" --bytes 2000000 >"$TMP/echo-client.log" 2>&1 &&
        grep -q "TCP echo of 2000000 bytes matches" "$TMP/echo-client.log"; then
        pass "tern_echo client: 2 MB through the kernel's echo, every byte checked"
    else
        fail "tern_echo client against the kernel"
        sed 's/^/  | /' "$TMP/echo-client.log"
    fi
    got=$(printf 'hello from tern_nc\n' | nsx timeout 15 "$EX/tern_nc" "${LINK[@]}" "$KIP" 7007 2>"$TMP/nc.log")
    if [ "$got" = "HELLO FROM TERN_NC" ]; then
        pass "tern_nc: stdin to a kernel server and its answer to stdout"
    else
        fail "tern_nc: got '$got'"
        sed 's/^/  | /' "$TMP/nc.log"
    fi
else
    fail "kernel server did not start"
fi
kill "$KPID" 2>/dev/null
wait "$KPID" 2>/dev/null
KPID=

# tern_nc over UDP to a kernel echo, then listening for a kernel client.
nsx timeout 20 "$PY" -u - "$KIP" 7009 >"$TMP/kudp.log" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(15)
print("kernel: serving", flush=True)
data, peer = s.recvfrom(65535)
s.sendto(data[::-1], peer)
print("kernel: done", flush=True)
EOF
KPID=$!
if wait_for "$TMP/kudp.log" "kernel: serving" 5 "$KPID"; then
    got=$(printf 'datagram one' | nsx timeout 15 "$EX/tern_nc" "${LINK[@]}" -u -w 2 "$KIP" 7009 2>"$TMP/ncu.log")
    if [ "$got" = "eno margatad" ]; then
        pass "tern_nc -u: a datagram to a kernel socket and its answer"
    else
        fail "tern_nc -u: got '$got'"
        sed 's/^/  | /' "$TMP/ncu.log"
    fi
else
    fail "kernel UDP server did not start"
fi
kill "$KPID" 2>/dev/null
wait "$KPID" 2>/dev/null
KPID=
nsx timeout 15 "$EX/tern_nc" "${LINK[@]}" -l 7010 </dev/null >"$TMP/ncl.out" 2>"$TMP/ncl.log" &
KPID=$!
if wait_for "$TMP/ncl.log" "listening" 5 "$KPID" &&
    nsx timeout 10 "$PY" - "$TIP" 7010 2>&1 <<'EOF'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"to the listener\n")
s.shutdown(socket.SHUT_WR)
rest = s.recv(100)  # tern_nc's stdin is empty: its FIN
sys.exit(0 if rest == b"" else 1)
EOF
then
    wait "$KPID"
    rc=$?
    KPID=
    if [ "$rc" = 0 ] && [ "$(cat "$TMP/ncl.out")" = "to the listener" ]; then
        pass "tern_nc -l: a kernel client's bytes to stdout, both sides closed"
    else
        fail "tern_nc -l: exit $rc, output '$(cat "$TMP/ncl.out")'"
        sed 's/^/  | /' "$TMP/ncl.log"
    fi
else
    fail "tern_nc -l did not take the kernel client"
    sed 's/^/  | /' "$TMP/ncl.log"
fi

# --gw: a default route through the kernel to an address off the link
# (198.51.100.1 on the namespace's lo; the kernel takes it as its own).
ip -n "$NS" addr add 198.51.100.1/32 dev lo
nsx timeout 20 "$PY" -u - 198.51.100.1 7011 >"$TMP/kgw.log" 2>&1 <<'EOF' &
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(1)
print("kernel: serving", flush=True)
c, peer = l.accept()
data = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    data += d
c.sendall(b"%s from %s" % (data.strip(), peer[0].encode()))
c.close()
EOF
KPID=$!
if wait_for "$TMP/kgw.log" "kernel: serving" 5 "$KPID"; then
    got=$(printf 'routed' | nsx timeout 15 "$EX/tern_nc" "${LINK[@]}" --gw "$KIP" 198.51.100.1 7011 2>"$TMP/ncgw.log")
    if [ "$got" = "routed from $TIP" ]; then
        pass "--gw: tern_nc reaches 198.51.100.1 through its default route"
    else
        fail "--gw: tern_nc got '$got'"
        sed 's/^/  | /' "$TMP/ncgw.log"
    fi
else
    fail "kernel server on 198.51.100.1 did not start"
fi
kill "$KPID" 2>/dev/null
wait "$KPID" 2>/dev/null
KPID=

if [ "$FAILED" = 0 ]; then
    echo "examples_peer: ALL PASSED"
    rm -rf "$TMP"
    exit 0
fi
echo "examples_peer: FAILED (logs and pcaps in $TMP)"
exit 1
