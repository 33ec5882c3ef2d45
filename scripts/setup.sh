#!/bin/sh
# Installs what building, testing and benchmarking Tern need on Debian 12
# (liblwip-dev: lwIP beside Tern in the benchmarks; librsvg2-bin and
# fonts-dejavu-core: tools/tseq's pictures as PNG, with their text; gdb:
# reading cores with tools/gdb/tern.py; systemtap-sdt-dev and bpftrace:
# the USDT probes and their test; curl and wrk: the real clients of the
# examples, in the tests and `make demo`), as root.
# Does nothing (and needs no network) when everything is already there.
set -eu
pkgs="cmake make gcc libc6-dev pkg-config libcmocka-dev systemtap-sdt-dev bpftrace tshark iproute2 iputils-ping python3 procps liblwip-dev librsvg2-bin fonts-dejavu-core gdb curl wrk"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages:$missing (run as root to install them)" >&2
    exit 1
fi
echo "setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; the answer does not matter here.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends $missing
