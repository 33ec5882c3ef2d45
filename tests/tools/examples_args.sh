#!/bin/bash
# The examples refuse bad command-line values with exit status 2 and a
# message naming the option and the allowed range, before touching any
# link (so this needs no root).
#
#   examples_args.sh BUILD/examples
set -u
EX=${1:?usage: $0 BUILD/examples}
FAILED=0
# expect PATTERN PROGRAM ARGS...: exit 2 and PATTERN on stderr.
expect() {
    local pattern=$1 out rc
    shift
    out=$(timeout 10 "$EX/$@" 2>&1 </dev/null)
    rc=$?
    if [ "$rc" = 2 ] && grep -qF -- "$pattern" <<<"$out"; then
        echo "PASS: $* -> $out"
    else
        echo "FAIL: $*: exit $rc, said '$out', want exit 2 and '$pattern'"
        FAILED=1
    fi
}
expect "--port: '99999' is not a number from 1 to 65535" tern_http --port 99999
expect "--port: '0' is not a number from 1 to 65535" tern_echo server --port 0
expect "--port: '7x' is not a number" tern_bulk --port 7x
expect "--max-conns: 'many' is not a number" tern_http --max-conns many
expect "--idle-ms: '-1' is not a number" tern_http --idle-ms -1
expect "--bytes: '-5' is not a number" tern_echo client --bytes -5
expect "--seed: '0x' is not a number" tern_http --seed 0x
expect "--port: '0x' is not a number" tern_http --port 0x
expect "--port: '' is not a number" tern_http --port ''
expect "--addr: '192.0.2.300/24' is not A.B.C.D/LEN" tern_http --addr 192.0.2.300/24
expect "--addr: '192.0.2.2/' is not A.B.C.D/LEN" tern_http --addr 192.0.2.2/
expect "--addr: '192.0.2.2/33' is not A.B.C.D/LEN" tern_http --addr 192.0.2.2/33
expect "--tap needs a value" tern_http --tap
expect "port: '70000' is not a number from 1 to 65535" tern_nc 192.0.2.1 70000
expect "'1.2.3' is not an IPv4 address" tern_nc 1.2.3 80
expect "-w: 'soon' is not a number" tern_nc -w soon 192.0.2.1 80
exit $FAILED
