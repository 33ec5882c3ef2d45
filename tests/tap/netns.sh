# Sourced by the TAP test scripts (bash), not run: a network namespace of
# the test's own with one TAP device in it, made and always deleted, and
# the waits those scripts share (the TAP tests, the example tests, `make
# demo`, `make bench-http`). No route leaves the namespace. Names must be
# unique per run (the callers put their PID in them).
#
#   netns_can_run               0 if root with /dev/net/tun and ip; else
#                               prints why and returns 1
#   netns_require WHO TOOL...   exit 77 (SKIP) unless netns_can_run and
#                               every TOOL is there
#   netns_make NS DEV ADDR/LEN  make NS: lo up, IPv6 off, TAP DEV holding
#                               ADDR/LEN and up. 0 done; 77 no namespace
#                               can be made here (printed as SKIP); 1 the
#                               setup failed (printed)
#   netns_delete                kill what is left inside, delete it (only
#                               if netns_make made it); for an EXIT trap
#   wait_for FILE PATTERN SECONDS PID
#                               until FILE holds PATTERN: 0; 1 when PID
#                               ended without it or time ran out
#   wait_exit PID SECONDS       PID's exit status, or 124 once it has been
#                               killed for outliving SECONDS
#   netns_stop PID SECONDS      SIGTERM to PID, then wait_exit; the status
#                               lands in NETNS_RC ("none" if it was killed)

NETNS_NAME=
netns_can_run() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "needs root (network namespace, TAP device)"
        return 1
    fi
    if [ ! -c /dev/net/tun ]; then
        echo "/dev/net/tun is missing"
        return 1
    fi
    command -v ip >/dev/null 2>&1 || { echo "'ip' is not installed"; return 1; }
}

netns_require() {
    local who=$1 tool why
    shift
    if ! why=$(netns_can_run); then
        echo "SKIP: $who: $why"
        exit 77
    fi
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: '$tool' is not installed"; exit 77; }
    done
}

netns_make() {
    local ns=$1 dev=$2 addr=$3 err
    if ! err=$(ip netns add "$ns" 2>&1); then
        echo "SKIP: cannot create a network namespace: $err"
        return 77
    fi
    NETNS_NAME=$ns
    # IPv6 off inside the namespace only: Tern speaks IPv4 here, and the
    # kernel's router solicitations and MLD reports would only add noise.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
    if ! { ip -n "$ns" link set lo up &&
           ip -n "$ns" tuntap add dev "$dev" mode tap &&
           ip -n "$ns" addr add "$addr" dev "$dev" &&
           ip -n "$ns" link set "$dev" up; }; then
        echo "FAIL: namespace setup ($ns: $dev with $addr)"
        return 1
    fi
    return 0
}

netns_delete() {
    [ -n "$NETNS_NAME" ] || return 0
    local pid
    # Any process still inside (there should be none) dies with it.
    for pid in $(ip netns pids "$NETNS_NAME" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null
    done
    ip netns del "$NETNS_NAME" 2>/dev/null || echo "could not delete namespace $NETNS_NAME"
    NETNS_NAME=
}

wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        kill -0 "$4" 2>/dev/null || { grep -q -- "$2" "$1" 2>/dev/null; return; }
        sleep 0.1
    done
    return 1
}

wait_exit() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then
            wait "$1"
            return
        fi
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 124
}

# Not for $(...): a subshell cannot wait for its parent's children.
netns_stop() {
    kill -TERM "$1" 2>/dev/null
    wait_exit "$1" "${2:-10}"
    NETNS_RC=$?
    [ "$NETNS_RC" -eq 124 ] && NETNS_RC=none
    return 0
}
