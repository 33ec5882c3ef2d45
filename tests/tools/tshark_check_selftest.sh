#!/bin/sh
# The pcap checker must pass a clean capture and fail a corrupted one;
# otherwise every test that relies on it proves nothing.
gen="$1"
dir="${TERN_TEST_TMP:-/tmp}"
here=$(dirname "$0")
clean="$dir/selftest-clean.$$.pcap"
bad="$dir/selftest-corrupt.$$.pcap"
trap 'rm -f "$clean" "$bad"' EXIT
"$gen" clean "$clean" || { echo "FAIL: generator (clean)"; exit 1; }
"$gen" corrupt "$bad" || { echo "FAIL: generator (corrupt)"; exit 1; }
sh "$here/tshark_check.sh" "$clean" || { echo "FAIL: a clean capture was rejected"; exit 1; }
if sh "$here/tshark_check.sh" "$bad" >/dev/null; then
    echo "FAIL: a capture with corrupted frames passed the check"
    exit 1
fi
echo "PASS: the checker accepts a clean capture and rejects a corrupted one"
