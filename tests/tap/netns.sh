# A network namespace with one TAP device, for scripts that put Tern on
# a TAP link beside the Linux kernel (sourced by bash scripts: the
# example tests, `make demo`, `make bench-http`).
#
#   netns_up NS DEV KERNEL_ADDR/LEN   make NS with lo up, IPv6 off, and
#                                     TAP device DEV holding KERNEL_ADDR;
#                                     no other route, nothing leaves it
#   netns_down NS                     kill what runs inside, delete NS
#   netns_can_run                     0 if root with /dev/net/tun, else
#                                     prints why and returns 1
#   netns_wait_for FILE PATTERN SECONDS PID
#                                     wait until FILE holds PATTERN;
#                                     1 after SECONDS or when PID is gone
#
# Names must be unique per run (the callers put their PID in them): other
# tests may run at the same time.

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
    return 0
}

netns_up() {
    local ns=$1 dev=$2 cidr=$3
    ip netns add "$ns" || return 1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 2>/dev/null
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 2>/dev/null
    ip -n "$ns" link set lo up &&
        ip -n "$ns" tuntap add dev "$dev" mode tap &&
        ip -n "$ns" addr add "$cidr" dev "$dev" &&
        ip -n "$ns" link set "$dev" up
}

netns_down() {
    local ns=$1 pid
    ip netns list 2>/dev/null | grep -q "^$ns\b" || return 0
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null
    done
    ip netns del "$ns" 2>/dev/null || echo "could not delete namespace $ns" >&2
}

netns_wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        kill -0 "$4" 2>/dev/null || { grep -q -- "$2" "$1" 2>/dev/null; return; }
        sleep 0.1
    done
    return 1
}

# Stop PID (a child of this shell) with SIGTERM and wait up to SECONDS;
# sets NETNS_RC to its exit status, or "none" (then it was killed). Not
# for $(...): a subshell cannot wait for its parent's children.
netns_stop() {
    local pid=$1 secs=${2:-10} i
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            NETNS_RC=$?
            return
        fi
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    NETNS_RC=none
}
