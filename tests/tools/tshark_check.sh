#!/bin/sh
# Decode a pcap with tshark, checksums verified, and fail on any malformed
# packet, bad checksum, or expert note of warning level or worse.
#   tshark_check.sh FILE.pcap [TOLERATED]
# TOLERATED is an optional display filter for warnings the caller expects
# of its own traffic (the caller writes down why, where it passes it).
# "ACKed segment that wasn't captured" always fails: no capture taken at a
# stack's link can legitimately show one.
# Exit 0: clean and non-empty. 1: problems (printed). 2: cannot check.
f="$1"
extra="${2:-}"
[ -s "$f" ] || { echo "tshark_check: no pcap at '$f'"; exit 2; }
command -v tshark >/dev/null 2>&1 || { echo "tshark_check: tshark is not installed"; exit 2; }
opts="-o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE"
# Test payloads are byte patterns, not application protocols. The
# dissectors that guess a protocol from the first bytes of a TCP or UDP
# payload are turned off: otherwise a pattern that happens to look like,
# say, Thrift is reported as a malformed Thrift message, which says
# nothing about the stack.
heur=$(tshark -G heuristic-decodes 2>/dev/null | awk '$1 == "tcp" || $1 == "udp" { print $2 }' | sort -u)
for p in $heur; do
    opts="$opts --disable-protocol $p"
done
# Likewise the dissectors chosen by port: an ephemeral port the kernel
# picks may be one Wireshark ties to a protocol (57000 is IRC's), and the
# pattern is then "malformed IRC". Payloads on ports from 1024 up are
# plain data; the well-known ports below (HTTP on 80, which tern_http
# really speaks) keep their dissectors.
opts="$opts -d tcp.port==1024-65535,data -d udp.port==1024-65535,data"
total=$(tshark -r "$f" -T fields -e frame.number 2>/dev/null | wc -l)
if [ "$total" -eq 0 ]; then
    echo "tshark_check: $f holds no packets (or tshark cannot read it)"
    tshark -r "$f" 2>&1 | grep -v 'Running as user' | head -5
    exit 1
fi
# Severity: warning is 0x00600000 (6291456), error 0x00800000. Flow
# control working as designed (a receiver's window filling up or
# closing, and its probes) is reported by Wireshark as a warning too; it
# is not a fault, so those alone do not fail the check.
# A TCP checksum written 0xffff where 0x0000 is computed is the same
# number in one's complement (RFC 1624); Linux sometimes sends it, and the
# checksum status still says good, so that warning alone is not a fault.
# A D-SACK block (RFC 2883) is a warning to Wireshark, but it is a
# receiver doing its job: saying that data came twice (a retransmission
# that was not needed, a tail-loss probe, the network's duplicate).
tolerated='tcp.analysis.zero_window || tcp.analysis.window_full || tcp.analysis.zero_window_probe || tcp.analysis.zero_window_probe_ack || tcp.checksum.ffff || tcp.options.sack.dsack'
if [ -n "$extra" ]; then
    tolerated="$tolerated || ($extra)"
fi
filter="_ws.malformed || (_ws.expert.severity >= 6291456 && !($tolerated)) || tcp.analysis.ack_lost_segment || ip.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0 || (tcp.checksum.status == 0 && !tcp.checksum.ffff)"
bad=$(tshark -r "$f" $opts -Y "$filter" 2>&1 | grep -v 'Running as user')
if [ -n "$bad" ]; then
    echo "tshark_check: problems in $f ($total packets):"
    echo "$bad" | head -40
    tshark -r "$f" $opts -Y "$filter" -T fields -e frame.number -e _ws.expert.message 2>/dev/null | head -20
    exit 1
fi
if [ -n "$extra" ]; then
    n=$(tshark -r "$f" $opts -Y "_ws.expert.severity >= 6291456 && ($extra)" -T fields -e frame.number 2>/dev/null | wc -l)
    echo "tshark_check: $f: $total packets, no malformed packet, no bad checksum, no warning but $n tolerated ($extra)"
else
    echo "tshark_check: $f: $total packets, no malformed packet, no bad checksum, no warning"
fi
exit 0
