#!/bin/bash
# bpftrace on Tern's USDT probes during a transfer (issue 5): state
# changes, segments, retransmissions and drops must fire, with arguments
# that agree with the program's own counters.
#   probes_check.sh PATH/TO/tseq_transfer TMPDIR
# Exit 0 pass, 1 fail, 77 skip (no bpftrace, not root, or BPF refused).
set -u
PROG=${1:?usage: probes_check.sh PROGRAM TMPDIR}
TMP=${2:?usage: probes_check.sh PROGRAM TMPDIR}
command -v bpftrace >/dev/null 2>&1 || { echo "SKIP: bpftrace is not installed"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: bpftrace needs root"; exit 77; }
mkdir -p "$TMP"
OUT=$TMP/probes-$$.out
PROG=$(cd "$(dirname "$PROG")" && pwd)/$(basename "$PROG")
# The program writes a pcap and a CSV it needs; 2% loss, 300 kB.
timeout 120 bpftrace -e "
usdt:$PROG:tern:tcp_state { @state[arg2, arg3] = count(); }
usdt:$PROG:tern:tcp_tx { @tx[arg0] = count(); @maxlen = max(arg5); @flags_or = max(arg4 & 0xff); }
usdt:$PROG:tern:tcp_rx { @rx = count(); }
usdt:$PROG:tern:tcp_retransmit { @rexmit[arg0] = count(); }
usdt:$PROG:tern:drop { @drop[str(arg2)] = count(); }
usdt:$PROG:tern:sock_create { @created = count(); }
usdt:$PROG:tern:sock_free { @freed = count(); }
" -c "$PROG $TMP/probes-$$.pcap $TMP/probes-$$.csv 20000 300000 1" >"$OUT" 2>&1
rc=$?
rm -f "$TMP/probes-$$.pcap" "$TMP/probes-$$.csv"
if grep -qiE "permission denied|operation not permitted|failed to attach|bpf\(\) syscall" "$OUT" &&
   ! grep -q "^@tx" "$OUT"; then
    echo "SKIP: the kernel refused BPF here:"; head -5 "$OUT"; rm -f "$OUT"; exit 77
fi
fail() { echo "FAIL: $*"; echo "--- bpftrace output:"; cat "$OUT"; rm -f "$OUT"; exit 1; }
[ $rc -eq 0 ] || fail "bpftrace exited $rc"
grep -q "\[  PASSED  \] 1 test" "$OUT" || fail "the transfer itself failed"
# SYN_SENT(2) -> ESTABLISHED(4) on the client, LISTEN(1) seen, and the
# end of the connection (FIN_WAIT_1 = 5 or CLOSE_WAIT = 7).
grep -q "^@state\[2, 4\]: 1$" "$OUT" || fail "no SYN_SENT -> ESTABLISHED state probe"
grep -q "^@state\[0, 1\]: 1$" "$OUT" || fail "no CLOSED -> LISTEN state probe"
grep -qE "^@state\[4, (5|7)\]: 1$" "$OUT" || fail "no state probe for the close"
# Segments: a full-sized one (1448 payload bytes beside timestamps), and
# the same number of retransmissions as the sender's counter says.
grep -q "^@maxlen: 1448$" "$OUT" || fail "largest segment payload is not 1448"
grep -qE "^@rx: [0-9]+" "$OUT" || fail "no tcp_rx probe"
want=$(sed -n 's/^tcp.retransmit \([0-9]*\)$/\1/p' "$OUT")
[ -n "$want" ] && [ "$want" -gt 0 ] || fail "the program reported no retransmissions"
grep -qE "^@rexmit\[(0x)?[0-9a-f]+\]: $want$" "$OUT" || fail "no stack has $want tcp_retransmit probes"
grep -q "^@drop\[drop\." "$OUT" || fail "no drop probe"
created=$(sed -n 's/^@created: //p' "$OUT"); freed=$(sed -n 's/^@freed: //p' "$OUT")
[ -n "$created" ] && [ "$created" = "$freed" ] || fail "sockets created $created, freed $freed"
echo "PASS: probes fired: $(grep -c '^@' "$OUT") aggregates, $want retransmissions, sockets $created made and freed"
rm -f "$OUT"
exit 0
