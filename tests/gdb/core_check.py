"""A program dies on a failed invariant; gdb with tools/gdb/tern.py reads
its core, and the process itself while it is stopped at the abort, and must
list the sockets that were open with their states.

    core_check.py CRASH_TARGET TERN_PY TMPDIR SANITIZED(0|1)

How the core is made, without touching machine-wide settings: when
/proc/sys/kernel/core_pattern names a file relative to the working directory
(the kernel's default, "core"), the program runs in a fresh directory with a
core limit of its own and the kernel writes the core there. Otherwise (a
pipe to systemd-coredump or apport, or an absolute path) gdb runs the
program and writes the core with `gcore` when it stops at the abort; that
is not done for sanitizer builds, whose shadow memory gcore would write out
in full (tens of GB): those check the live process only, and say so.

The truth the output is held against: the socket table tern_panic printed
before aborting (every row must be in gdb's table, same id, handle, state,
references and addresses), and what crash_target.c set up (a UDP socket
with two datagrams, a listener with a request and a child waiting, an
ESTABLISHED connection with 1000 bytes unread, CLOSE_WAIT, a TIME_WAIT
record, a threaded third stack).

TERN_CORE_METHOD=gcore takes the gcore way even where the kernel's would do.
Exit 77 (skip) only when gdb is missing."""

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

GDB_TIMEOUT = 120
# Nothing this test writes may grow past this (a core, gcore's output).
FILE_LIMIT = 1 << 30

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def limits():
    resource.setrlimit(resource.RLIMIT_CORE, (FILE_LIMIT, FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


def env_for(sanitized):
    env = dict(os.environ)
    if sanitized:
        # The sanitizers set the core limit to 0 unless told; their shadow
        # is marked not to be dumped, so the core stays small.
        for var in ("ASAN_OPTIONS", "TSAN_OPTIONS"):
            opts = env.get(var, "")
            env[var] = (opts + ":" if opts else "") + "disable_coredump=0"
    return env


def run(cmd, cwd, env):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=GDB_TIMEOUT, preexec_fn=limits)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def gdb_cmd(ext, commands, program, core=None):
    cmd = ["gdb", "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off"]
    pre = commands[0]
    for c in pre:
        cmd += ["-ex", c]
    cmd += ["-ex", "source " + ext]
    for c in commands[1]:
        cmd += ["-ex", c]
    cmd += [program] + ([core] if core else [])
    return cmd


TERN_COMMANDS = ["tern stacks", "tern sockets", "tern listeners", "tern timewait", "tern pcbs",
                 "tern timers", "tern counters", "tern stack 0x10"]


# ---------------------------------------------------------------- parsing

def panic_table(stderr):
    """(stack address, [row dicts]) from what tern_panic printed."""
    m = re.search(r"tern: sockets of stack (0x[0-9a-f]+):\n(.*?)\ntern: timers:", stderr, re.S)
    if not m:
        return None, []
    lines = m.group(2).splitlines()
    head = lines[0].split()
    rows = []
    for line in lines[1:]:
        # Indented lines belong to the row above them (TCP details, recent
        # events, a listener's requests printed under it as rows of their
        # own start in column 0).
        if line.startswith("\t") or line.startswith(" "):
            continue
        f = line.split()
        if len(f) < 7:
            continue
        rows.append(dict(zip(head[:7], f[:7])))
    return m.group(1), rows


def gdb_tables(out):
    """{stack address: [row dicts]} from `tern sockets` output."""
    tables = {}
    cur = None
    head = None
    for line in out.splitlines():
        m = re.match(r"sockets of stack (0x[0-9a-f]+)$", line)
        if m:
            cur = tables.setdefault(m.group(1), [])
            head = None
            continue
        if cur is None:
            continue
        if line.startswith("id "):
            head = line.split()
            continue
        if head is None or line.startswith(" ") or not line.strip():
            if not line.startswith(" "):
                cur = None
            continue
        f = line.split()
        if len(f) < len(head) - 1:
            cur = None
            continue
        row = dict(zip(head, f[:len(head) - 1]))
        row["flags"] = " ".join(f[len(head) - 1:])
        row["line"] = line
        cur.append(row)
    return tables


def section(out, title_re):
    """The lines of the section whose first line matches title_re, up to
    the next line that starts in column 0 with a lowercase word and a
    known section title."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if re.match(title_re, line):
            body = [line]
            for nxt in lines[i + 1:]:
                if re.match(r"(sockets|listeners|TIME_WAIT records|PCB tables|timers|counters) "
                            r"of stack|stack 0x|\d+ stack\(s\)", nxt):
                    break
                body.append(nxt)
            return "\n".join(body)
    return ""


# ---------------------------------------------------------------- checks

KEYS = ("id", "handle", "proto", "state", "refs", "local", "peer")


def check_output(label, out, crash_stack, panic_rows):
    if "Python Exception" in out or "Traceback" in out:
        fail("%s: the extension raised an exception:\n%s" % (label, out))
    m = re.search(r"^(\d+) stack\(s\)$", out, re.M)
    if not m or m.group(1) != "3":
        fail("%s: expected 3 stacks, got %s" % (label, m.group(1) if m else "no count"))
    if re.search(r"tern: could not read", out):
        fail("%s: the extension could not read a field (the library changed? update "
             "tools/gdb/tern.py):\n%s" % (label, "\n".join(
                 l for l in out.splitlines() if l.startswith("tern:"))))
    if not re.search(r"threaded \(runtime 0x", out):
        fail("%s: the threaded stack is not shown as threaded" % label)
    if not re.search(r"frames for links: \d+ queued(?: \(a sender is writing\))?, \d+ sent not "
                     r"yet freed", out):
        fail("%s: the threaded stack's deferred frames are not shown" % label)
    tables = gdb_tables(out)
    rows = tables.get(crash_stack)
    if rows is None:
        fail("%s: no socket table for the stack that failed (%s); tables for %s" % (
            label, crash_stack, ", ".join(tables) or "none"))
        return
    # Every row tern_panic printed is in gdb's table, field for field.
    for want in panic_rows:
        if not any(all(r.get(k) == want[k] for k in KEYS) for r in rows):
            fail("%s: gdb's table lacks the socket %s" % (
                label, " ".join("%s=%s" % (k, want[k]) for k in KEYS)))
    if len(rows) != len(panic_rows):
        fail("%s: gdb lists %d rows for the failed stack, tern_panic %d" % (
            label, len(rows), len(panic_rows)))

    # Each connection's recent events (tcp_trace.h), read from memory: the
    # established ones have segments in and out among them.
    if not re.search(r"last \d+ of \d+ events:", out):
        fail("%s: no connection's events are listed" % label)
    elif not re.search(r"^ +-\d+\.\d+s (rx|tx) +ESTABLISHED", out, re.M):
        fail("%s: no rx or tx event of an established connection" % label)

    # What crash_target.c set up, independently of tern_panic's table.
    def has(desc, **want):
        if not any(all(r.get(k) == v or (callable(v) and v(r.get(k))) for k, v in want.items())
                   for r in rows):
            fail("%s: no %s in gdb's table:\n%s" % (label, desc, "\n".join(
                r["line"] for r in rows)))

    peer2 = lambda p: p is not None and p.startswith("192.0.2.2:")
    has("UDP socket with two datagrams", proto="udp", local="192.0.2.1:5353", **{"rx-q": "2"})
    has("listener", proto="tcp", state="LISTEN", local="192.0.2.1:80", refs="user+proto")
    has("accepted connection with 1000 bytes unread", state="ESTABLISHED", refs="user+proto",
        peer=peer2, **{"rx-bytes": "1000"})
    has("half-closed connection", state="CLOSE_WAIT", peer=peer2)
    has("child waiting for accept", state="ESTABLISHED", refs="proto", handle="-")
    has("request", state="SYN_RECEIVED", refs="request", peer="192.0.2.100:40000")
    has("TIME_WAIT record", state="TIME_WAIT", refs="record", peer="192.0.2.2:81")
    if not any(any(r.get("local") == "0.0.0.0:7" and r.get("proto") == "udp" for r in t)
               for t in tables.values()):
        fail("%s: the threaded stack's UDP socket on 0.0.0.0:7 is missing" % label)

    lis = section(out, r"listeners of stack %s" % crash_stack)
    if not re.search(r"1 request\(s\).*1 waiting for accept", lis) or \
            "<- 192.0.2.100:40000" not in lis:
        fail("%s: the listener's queues are not listed:\n%s" % (label, lis))
    tw = section(out, r"TIME_WAIT records of stack %s" % crash_stack)
    if not re.search(r"-> 192\.0\.2\.2:81 .*expires in \d+ ms", tw):
        fail("%s: the TIME_WAIT record is not listed:\n%s" % (label, tw))
    pcbs = section(out, r"PCB tables of stack %s" % crash_stack)
    for kind in ("socket", "request", "timewait"):
        if not re.search(r"^\s+0x[0-9a-f]+ %s " % kind, pcbs, re.M):
            fail("%s: no %s PCB in the tcp table:\n%s" % (label, kind, pcbs))
    if not re.search(r"^\s+0x[0-9a-f]+ timewait .*connect_port", pcbs, re.M):
        fail("%s: the TIME_WAIT record of a connect()ed socket lacks connect_port:\n%s"
             % (label, pcbs))
    for index in ("bind", "listen"):
        if not re.search(r"\b%s\[\d+\]" % index, pcbs):
            fail("%s: no PCB found through the %s index:\n%s" % (label, index, pcbs))
    timers = section(out, r"timers of stack %s" % crash_stack)
    for name, owner in (("tcp-synack", "request 192.0.2.1:80 <- 192.0.2.100:40000"),
                        ("tcp-timewait", "TIME_WAIT record of #")):
        if not re.search(r"^\s+%s\s+due in \d+ ms .*%s" % (name, re.escape(owner)), timers, re.M):
            fail("%s: timer %s (owner %s) not listed:\n%s" % (label, name, owner, timers))
    counters = section(out, r"counters of stack %s" % crash_stack)
    if "names from the binary's counter table" not in counters or \
            not re.search(r"^\s+tcp\.conn_established\s+4$", counters, re.M) or \
            not re.search(r"^\s+udp\.rx\s+2$", counters, re.M):
        fail("%s: counters not read by name:\n%s" % (label, counters))
    if "does not look like a struct tern_stack" not in out:
        fail("%s: `tern stack 0x10` did not refuse a bad address" % label)


def main():
    target, ext, tmp = (os.path.abspath(a) for a in sys.argv[1:4])
    sanitized = sys.argv[4] == "1"
    if shutil.which("gdb") is None:
        print("SKIP: gdb is not installed (scripts/setup.sh installs it)")
        return 77
    os.makedirs(tmp, exist_ok=True)
    work = tempfile.mkdtemp(prefix="core_check.", dir=tmp)
    env = env_for(sanitized)
    try:
        pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    except OSError:
        pattern = "|unknown"
    kernel_core = not pattern.startswith("|") and "/" not in pattern
    if os.environ.get("TERN_CORE_METHOD") == "gcore":
        kernel_core = False  # to try the other way by hand
    use_gcore = not kernel_core and not sanitized
    print("core_pattern %r: %s" % (pattern, "the kernel writes the core here" if kernel_core
                                   else "gdb's gcore writes the core" if use_gcore
                                   else "no core (sanitizer build): the live process only"))

    # 1. The live process, stopped by gdb at the abort.
    gcore_path = os.path.join(work, "gcore")
    cmds = list(TERN_COMMANDS) + (["gcore " + gcore_path] if use_gcore else [])
    rc, out, err = run(gdb_cmd(ext, (["run"], cmds), target), work, env)
    live_out = out + err
    crash_stack, panic_rows = panic_table(live_out)
    if not panic_rows:
        fail("live: tern_panic's socket table not found in the output:\n" + live_out)
    else:
        print("live: tern_panic listed %d rows for stack %s" % (len(panic_rows), crash_stack))
        if "received signal SIGABRT" not in live_out:
            fail("live: the program did not stop on SIGABRT:\n" + live_out)
        check_output("live", live_out, crash_stack, panic_rows)

    # 2. The core.
    core = None
    if kernel_core:
        before = set(os.listdir(work))
        rc, out, err = run([target], work, env)
        if rc != -6:
            fail("the program did not die of SIGABRT (status %d):\n%s" % (rc, err))
        crash_stack, panic_rows = panic_table(err)
        new = sorted(set(os.listdir(work)) - before)
        if len(new) != 1:
            fail("expected one core file in %s, found %s (core limit %d)" % (
                work, new, resource.getrlimit(resource.RLIMIT_CORE)[0]))
        else:
            core = os.path.join(work, new[0])
    elif use_gcore:
        core = gcore_path if os.path.exists(gcore_path) else None
        if core is None:
            fail("gcore wrote no core")
    if core:
        print("core: %s (%d bytes), stack %s" % (core, os.path.getsize(core), crash_stack))
        rc, out, err = run(gdb_cmd(ext, ([], TERN_COMMANDS), target, core), work, env)
        core_out = out + err
        if "Program terminated with signal SIGABRT" not in core_out:
            fail("core: gdb does not see a SIGABRT core:\n" + core_out)
        check_output("core", core_out, crash_stack, panic_rows)
        if failures:
            print("---- gdb on the core said:\n" + core_out)

    if failures:
        print("%d check(s) failed; files kept in %s" % (len(failures), work))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("ok: gdb lists the open sockets with their states (live%s)" % (
        " and core" if core else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
