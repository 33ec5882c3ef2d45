# Tern's gdb commands: the state of Tern stacks, read from a live process
# or a core file without the program's help (no function of the program
# is called; everything is read from memory through the debug
# information).
#
# Load it with
#
#     (gdb) source tools/gdb/tern.py
#     gdb -batch -nx -ex 'source tools/gdb/tern.py' -ex 'tern all' PROGRAM CORE
#
# Commands. STACK is any expression that gives a struct tern_stack * (an
# address such as 0x5555555592a0, a variable, $1); without it a command
# covers every stack `tern stacks` finds.
#
#   tern stacks                 find the stacks and summarise each: time,
#                               threaded or owned, live sockets, timers,
#                               TIME_WAIT records, requests, packets,
#                               interfaces and their addresses
#   tern stack STACK [-f]       check STACK is a stack (-f: go on even if it
#                               does not look like one) and print everything
#                               about it, as `tern all`
#   tern sockets [STACK]        the socket table: id, handle (and handle
#                               table slot), protocol, TCP state, lifecycle
#                               references, local and peer address, queues
#                               (datagrams, bytes to read, bytes to send),
#                               flags; for TCP a second line with sequence
#                               numbers, srtt, rto, cwnd, ssthresh,
#                               retransmits and the deadlines armed; then
#                               listeners' requests and TIME_WAIT records
#   tern pcbs [STACK]           every PCB table (udp, icmp, tcp, ...) with
#                               each PCB, where it is filed (bind bucket,
#                               listen bucket, connection hash) and what
#                               owns it (a socket, a TIME_WAIT record, a
#                               listener's request)
#   tern timewait [STACK]       TIME_WAIT records: 4-tuple, sequence numbers,
#                               window, time left
#   tern listeners [STACK]      listening sockets with their request queue
#                               (handshakes in progress) and accept queue
#   tern timers [STACK]         armed timers on the wheel: name, callback,
#                               when due, the object that owns each
#   tern counters [STACK] [-a] [TEXT]
#                               counters by name (nonzero only unless -a;
#                               only names containing TEXT if given)
#   tern all [STACK]            all of the above
#
# Settings:
#   set tern-scan-max-mib N     skip writable mappings larger than N MiB
#                               when searching memory for stacks (1024)
#   set tern-verbose on         say which candidates the search rejected
#
# How stacks are found. The library keeps no global list of stacks (it has
# no writable globals at all), so `tern stacks` looks for them: (1) every
# frame of every thread whose arguments or locals are struct tern_stack
# pointers, and (2) a search of the process's writable memory (live:
# /proc/PID/maps; core: the core's writable PT_LOAD segments) for the
# stack's magic number (TERN_STACK_MAGIC, read from src/core/stack.h when
# the sources are at hand). Each candidate is checked (magic, its socket
# list's links, its PCB tables' names, its handle table) before it is
# believed. A freed stack has its magic cleared, so it is not found.
#
# Counter names come from the string table in the binary (counters.c's
# counter_descs), else from src/obs/counters.h's X-macro list, else from
# the enum tern_counter_id in the debug information.
#
# Layouts are read through gdb's type information, never hard-coded, so the
# program must have debug information (the default RelWithDebInfo build
# has). When a field the commands look for is missing (the library
# changed), they print what they can and end with a line saying what they
# could not read.

import os
import re
import struct

import gdb

LIST_LIMIT = 1000000      # entries walked on one list at most
CHUNK = 4 << 20           # bytes read at once while searching memory
DEFAULT_STACK_MAGIC = 0x57ac4e11
DEFAULT_TICK_NS = 1000000


# ---------------------------------------------------------------- settings

class _ScanMax(gdb.Parameter):
    """Largest writable mapping (MiB) searched for stacks."""
    set_doc = "Set the largest mapping (MiB) tern searches for stacks."
    show_doc = "Show the largest mapping (MiB) tern searches for stacks."

    def __init__(self):
        super().__init__("tern-scan-max-mib", gdb.COMMAND_DATA, gdb.PARAM_ZUINTEGER)
        self.value = 1024

    def get_show_string(self, sval):
        return "tern searches mappings of at most %s MiB" % sval


class _Verbose(gdb.Parameter):
    """Whether tern reports the candidates it rejected."""
    set_doc = "Set whether tern reports rejected stack candidates."
    show_doc = "Show whether tern reports rejected stack candidates."

    def __init__(self):
        super().__init__("tern-verbose", gdb.COMMAND_DATA, gdb.PARAM_BOOLEAN)
        self.value = False

    def get_show_string(self, sval):
        return "tern verbose: %s" % sval


SCAN_MAX = _ScanMax()
VERBOSE = _Verbose()


# ------------------------------------------------------------ the sources

_src_cache = {}


def _source_dirs():
    """Where src/ may be: $TERN_SRC, beside this file, or where the debug
    information says the library was compiled."""
    dirs = []
    if os.environ.get("TERN_SRC"):
        dirs.append(os.environ["TERN_SRC"])
    here = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else None
    if here:
        dirs.append(os.path.normpath(os.path.join(here, "..", "..", "src")))
    for fn in ("tern_stack_new", "tern_counter_name"):
        try:
            sym = gdb.lookup_global_symbol(fn)
            if sym is None:
                sym = gdb.lookup_symbol(fn)[0]
            if sym is not None and sym.symtab is not None:
                # .../src/core/stack.c -> .../src
                dirs.append(os.path.dirname(os.path.dirname(sym.symtab.fullname())))
        except (gdb.error, RuntimeError):
            pass
    return dirs


def _source_text(rel):
    """The text of src/REL, or None."""
    if rel in _src_cache:
        return _src_cache[rel]
    text = None
    for d in _source_dirs():
        p = os.path.join(d, rel)
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                text = f.read()
            break
        except OSError:
            continue
    _src_cache[rel] = text
    return text


def _source_define(rel, name, default):
    """An integer #define from a source file, or default."""
    text = _source_text(rel)
    if text:
        m = re.search(r"#define\s+%s\s+\(?\s*(0[xX][0-9a-fA-F]+|\d+)\s*[uUlL]*" % name, text)
        if m:
            return int(m.group(1), 0)
    return default


# ---------------------------------------------------------------- types

_type_cache = {}


def T(name):
    """A type by name ('struct tern_socket'), or None."""
    if name not in _type_cache:
        try:
            _type_cache[name] = gdb.lookup_type(name)
        except gdb.error:
            _type_cache[name] = None
    return _type_cache[name]


def _member_offset(t, path):
    """Byte offset of a (dotted) member path in type t, or None."""
    off = 0
    t = t.strip_typedefs()
    for part in path.split("."):
        found = None
        for f in t.fields():
            if f.name == part:
                found = f
                break
        if found is None or not hasattr(found, "bitpos"):
            return None
        off += found.bitpos // 8
        t = found.type.strip_typedefs()
    return off


_off_cache = {}


def offsetof(tname, path):
    key = (tname, path)
    if key not in _off_cache:
        t = T(tname)
        _off_cache[key] = None if t is None else _member_offset(t, path)
    return _off_cache[key]


def _clear_caches(*_):
    _type_cache.clear()
    _off_cache.clear()
    _src_cache.clear()
    _stack_cache.clear()


# ------------------------------------------------------ reading memory

class Ctx:
    """One command's reading: collects what could not be read."""

    def __init__(self):
        self.missing = {}
        self.problems = []

    def miss(self, what, why):
        self.missing.setdefault(what, why)

    def problem(self, text):
        if text not in self.problems:
            self.problems.append(text)

    def get(self, v, path):
        """v.path as a gdb.Value, or None (noted) if a member is missing."""
        cur = v
        for part in path.split("."):
            try:
                cur = cur[part]
            except gdb.error:
                tn = str(cur.type.strip_typedefs()) if cur is not None else "?"
                self.miss("%s.%s" % (tn, part), "no such field")
                return None
        return cur

    def num(self, v, path, default=None):
        x = self.get(v, path)
        if x is None:
            return default
        try:
            return int(x)
        except gdb.MemoryError as e:
            self.problem("cannot read %s at %s: %s" % (path, _addr_of(v), e))
        except gdb.error as e:
            self.miss(path, str(e))
        return default

    def enum(self, v, path, prefix="", names=None):
        """An enum member's name, without prefix, lower case unless names
        maps it; the number if it is not an enum value."""
        x = self.get(v, path)
        if x is None:
            return "?"
        try:
            n = int(x)
        except gdb.error as e:
            self.problem("cannot read %s: %s" % (path, e))
            return "?"
        name = _enum_name(x.type, n)
        if name is None:
            return str(n)
        if names and name in names:
            return names[name]
        if prefix and name.startswith(prefix):
            name = name[len(prefix):]
        return name

    def cstr(self, v, path, limit=64):
        x = self.get(v, path)
        if x is None:
            return None
        try:
            p = int(x)
        except gdb.error:
            return None
        return read_cstr(p, limit)

    def report(self):
        out = []
        for p in self.problems:
            out.append("tern: %s\n" % p)
        if self.missing:
            out.append("tern: could not read: %s\n" % ", ".join(
                "%s (%s)" % (k, v) for k, v in sorted(self.missing.items())))
        return "".join(out)


def _enum_name(t, n):
    t = t.strip_typedefs()
    if t.code != gdb.TYPE_CODE_ENUM:
        return None
    for f in t.fields():
        if f.enumval == n:
            return f.name
    return None


def _addr_of(v):
    try:
        return "%#x" % int(v.address)
    except (gdb.error, TypeError, AttributeError):
        return "?"


def _inferior():
    return gdb.selected_inferior()


_ENDIAN = []


def _little():
    if not _ENDIAN:
        try:
            _ENDIAN.append("big" not in gdb.execute("show endian", to_string=True))
        except gdb.error:
            _ENDIAN.append(True)
    return _ENDIAN[0]


def _psize():
    return gdb.lookup_type("void").pointer().sizeof


def read_bytes(addr, n):
    """n bytes at addr, or None."""
    try:
        return bytes(_inferior().read_memory(addr, n))
    except (gdb.MemoryError, gdb.error, ValueError, OverflowError):
        return None


def read_uint(addr, size):
    b = read_bytes(addr, size)
    if b is None:
        return None
    return int.from_bytes(b, "little" if _little() else "big")


def read_ptr(addr):
    return read_uint(addr, _psize())


def read_cstr(p, limit=64):
    if not p:
        return None
    b = read_bytes(p, limit)
    if b is None:
        # near the end of a mapping: byte by byte
        out = bytearray()
        for i in range(limit):
            c = read_bytes(p + i, 1)
            if c is None or c == b"\0":
                break
            out += c
        return out.decode("utf-8", "replace") if out else None
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def at(addr, tname):
    """The object of type tname at addr, as a gdb.Value."""
    t = T(tname)
    return gdb.Value(addr).cast(t.pointer()).dereference()


def list_nodes(ctx, head, what, limit=LIST_LIMIT):
    """Addresses of the nodes of the intrusive list whose head is at
    `head`, checking each node's back link; stops (noted) at a broken one."""
    off_next = offsetof("struct tern_list", "next")
    off_prev = offsetof("struct tern_list", "prev")
    if off_next is None or off_prev is None:
        ctx.miss("struct tern_list.next/prev", "no such type or field")
        return []
    nodes, seen = [], set()
    cur = head
    while True:
        nxt = read_ptr(cur + off_next)
        if nxt is None:
            ctx.problem("%s: cannot read the list node at %#x after %d entries"
                        % (what, cur, len(nodes)))
            break
        if nxt == head:
            break
        back = read_ptr(nxt + off_prev)
        if back != cur:
            ctx.problem("%s: broken list: node %#x points back to %s, not %#x"
                        % (what, nxt, "?" if back is None else "%#x" % back, cur))
            if back is None:
                break
        if nxt in seen:
            ctx.problem("%s: the list loops at %#x after %d entries" % (what, nxt, len(nodes)))
            break
        seen.add(nxt)
        nodes.append(nxt)
        if len(nodes) >= limit:
            ctx.problem("%s: stopped after %d entries" % (what, limit))
            break
        cur = nxt
    return nodes


def nonempty_heads(ctx, arr, what):
    """(index, head address) of every non-empty list head in an array (any
    number of dimensions) of struct tern_list, read in one go."""
    lt = T("struct tern_list")
    off_next = offsetof("struct tern_list", "next")
    if arr is None or lt is None or off_next is None:
        return []
    try:
        base = int(arr.address)
        total = arr.type.sizeof
    except gdb.error as e:
        ctx.problem("%s: %s" % (what, e))
        return []
    return _heads_at(ctx, base, total // lt.sizeof, what)


def _heads_at(ctx, base, count, what):
    lt = T("struct tern_list")
    off_next = offsetof("struct tern_list", "next")
    size = lt.sizeof
    ps = _psize()
    raw = read_bytes(base, count * size)
    if raw is None:
        ctx.problem("%s: cannot read %d list heads at %#x" % (what, count, base))
        return []
    order = "<" if _little() else ">"
    fmt = order + ("Q" if ps == 8 else "I")
    out = []
    for i in range(count):
        (nxt,) = struct.unpack_from(fmt, raw, i * size + off_next)
        head = base + i * size
        if nxt != head:
            out.append((i, head))
    return out


def ip4(a):
    if a is None:
        return "?"
    return "%d.%d.%d.%d" % ((a >> 24) & 255, (a >> 16) & 255, (a >> 8) & 255, a & 255)


def endpoint(addr, port):
    if addr is None or port is None:
        return "?"
    return "%s:%s" % (ip4(addr), port if port else "*")


# ------------------------------------------------------- finding stacks

_stack_cache = {}


def _stack_magic():
    return _source_define(os.path.join("core", "stack.h"), "TERN_STACK_MAGIC",
                          DEFAULT_STACK_MAGIC)


def _tick_ns():
    return _source_define(os.path.join("core", "timer.h"), "TERN_TIMER_TICK_NS",
                          DEFAULT_TICK_NS)


def _target_kind():
    inf = _inferior()
    conn = getattr(inf, "connection", None)
    if conn is not None and conn.type:
        return conn.type  # "core", "native", "remote", ...
    text = gdb.execute("info target", to_string=True)
    return "core" if "core dump file" in text else "native"


def _core_path():
    text = gdb.execute("info files", to_string=True)
    m = re.search(r"Local core dump file:\s*`([^']+)'", text)
    return m.group(1) if m else None


def _core_writable_loads(path):
    """(start, end) of each writable PT_LOAD with contents in an ELF core."""
    try:
        with open(path, "rb") as f:
            ident = f.read(64)
            if ident[:4] != b"\x7fELF":
                return None
            is64 = ident[4] == 2
            order = "<" if ident[5] == 1 else ">"
            if is64:
                phoff, = struct.unpack_from(order + "Q", ident, 32)
                phentsize, phnum = struct.unpack_from(order + "HH", ident, 54)
            else:
                phoff, = struct.unpack_from(order + "I", ident, 28)
                phentsize, phnum = struct.unpack_from(order + "HH", ident, 42)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return None
    out = []
    for i in range(phnum):
        e = table[i * phentsize:(i + 1) * phentsize]
        if is64:
            p_type, p_flags, _off, vaddr, _pa, filesz, _memsz, _al = struct.unpack_from(
                order + "IIQQQQQQ", e)
        else:
            p_type, _off, vaddr, _pa, filesz, _memsz, p_flags, _al = struct.unpack_from(
                order + "IIIIIIII", e)
        if p_type == 1 and (p_flags & 2) and filesz > 0:
            out.append((vaddr, vaddr + filesz, "core segment"))
    return out


def _core_sections_fallback():
    text = gdb.execute("info files", to_string=True)
    out = []
    for m in re.finditer(r"(0x[0-9a-f]+) - (0x[0-9a-f]+) is load\w*", text):
        out.append((int(m.group(1), 16), int(m.group(2), 16), "core section"))
    return out


def _live_writable_maps(pid):
    out = []
    try:
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) < 5 or parts[1][1] != "w":
                    continue
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                name = parts[5].strip() if len(parts) > 5 else ""
                out.append((lo, hi, name))
        return out
    except OSError:
        pass
    # Not local (gdbserver): ask gdb.
    try:
        text = gdb.execute("info proc mappings", to_string=True)
    except gdb.error:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].startswith("0x") and "w" in parts[4]:
            out.append((int(parts[0], 16), int(parts[1], 16),
                        parts[5] if len(parts) > 5 else ""))
    return out


def _writable_regions(ctx):
    kind = _target_kind()
    if kind == "core":
        path = _core_path()
        regions = _core_writable_loads(path) if path else None
        if regions is None:
            ctx.problem("could not read the core's program headers (%s): searching every "
                        "core section" % path)
            regions = _core_sections_fallback()
        return regions
    pid = _inferior().pid
    if not pid:
        return []
    return _live_writable_maps(pid)


def _scan_magic(ctx, regions, magic, moff, align):
    """Addresses a (with a % align == 0) holding magic at a + moff."""
    limit = int(SCAN_MAX.value or 0) << 20
    needle = magic.to_bytes(4, "little" if _little() else "big")
    hits, skipped = [], []
    for lo, hi, name in regions:
        if limit and hi - lo > limit:
            skipped.append((lo, hi, name))
            continue
        addr = lo
        while addr < hi:
            n = min(CHUNK, hi - addr)
            buf = read_bytes(addr, n)
            pieces = [(addr, buf)] if buf is not None else [
                (p, read_bytes(p, min(4096, hi - p))) for p in range(addr, addr + n, 4096)]
            for base, b in pieces:
                if b is None:
                    continue
                i = b.find(needle)
                while i >= 0:
                    a = base + i - moff
                    if a % align == 0:
                        hits.append(a)
                    i = b.find(needle, i + 1)
            addr += n
    if skipped and VERBOSE.value:
        for lo, hi, name in skipped:
            gdb.write("tern: not searched (over tern-scan-max-mib): %#x-%#x %s\n" % (lo, hi, name))
    return hits, skipped


def _frame_candidates():
    """struct tern_stack pointers among the arguments and locals of every
    frame of every thread: {address: 'thread N frame #k fn'}."""
    out = {}
    inf = _inferior()
    try:
        keep_thread = gdb.selected_thread()
        keep_frame = gdb.selected_frame()
    except gdb.error:
        return out
    try:
        for th in inf.threads():
            try:
                th.switch()
                f = gdb.newest_frame()
            except gdb.error:
                continue
            level = 0
            while f is not None and level < 64:
                _frame_stack_ptrs(f, "thread %d frame #%d %s" % (th.num, level, f.name() or "?"),
                                  out)
                try:
                    f = f.older()
                except gdb.error:
                    break
                level += 1
    finally:
        try:
            keep_thread.switch()
            keep_frame.select()
        except gdb.error:
            pass
    return out


def _frame_stack_ptrs(frame, where, out):
    try:
        block = frame.block()
    except RuntimeError:
        return
    while block is not None:
        for sym in block:
            if not (sym.is_argument or sym.is_variable):
                continue
            t = sym.type
            if t is None:
                continue
            t = t.strip_typedefs()
            if t.code != gdb.TYPE_CODE_PTR:
                continue
            tgt = t.target().strip_typedefs()
            if tgt.code != gdb.TYPE_CODE_STRUCT or tgt.tag != "tern_stack":
                continue
            try:
                p = int(sym.value(frame))
            except (gdb.error, TypeError):
                continue
            if p:
                out.setdefault(p, where)
        if block.function is not None:
            break
        block = block.superblock


def check_stack(ctx, addr):
    """(looks like a stack, [reasons it does not])."""
    why = []
    st = T("struct tern_stack")
    if st is None:
        return False, ["no struct tern_stack in the debug information"]
    s = at(addr, "struct tern_stack")
    magic = ctx.num(s, "magic")
    if magic is None:
        return False, ["cannot read its magic"]
    if magic != _stack_magic():
        why.append("magic %#x is not %#x" % (magic, _stack_magic()))
    head = ctx.get(s, "socks.all")
    if head is not None:
        try:
            h = int(head.address)
            nxt = read_ptr(h + offsetof("struct tern_list", "next"))
            prv = read_ptr(h + offsetof("struct tern_list", "prev"))
            if nxt is None or prv is None:
                why.append("its socket list cannot be read")
            elif read_ptr(nxt + offsetof("struct tern_list", "prev")) != h or \
                    read_ptr(prv + offsetof("struct tern_list", "next")) != h:
                why.append("its socket list's links do not point back at it")
        except gdb.error:
            why.append("its socket list cannot be read")
    for f in _pcb_table_fields(s):
        name = ctx.cstr(s, f + ".name", 16)
        if name is None or not re.match(r"^[a-z0-9]+$", name):
            why.append("PCB table %s has no sane name (%r)" % (f, name))
    cap = ctx.num(s, "socks.handles.cap")
    mx = ctx.num(s, "socks.handles.max")
    used = ctx.num(s, "socks.handles.used")
    if cap is not None and mx is not None and (cap > mx or (used or 0) > cap):
        why.append("handle table sizes make no sense (used %s, cap %s, max %s)" % (used, cap, mx))
    if cap:
        slots = ctx.num(s, "socks.handles.slots")
        if not slots or read_bytes(slots, 1) is None:
            why.append("its handle table cannot be read")
    return not why, why


def _pcb_table_fields(s):
    st = s.type.strip_typedefs()
    out = []
    for f in st.fields():
        ft = f.type.strip_typedefs()
        if ft.code == gdb.TYPE_CODE_STRUCT and ft.tag == "tern_pcb_table":
            out.append(f.name)
    return out


def find_stacks(ctx):
    """[(address, [how it was found])] of the stacks that pass check_stack."""
    key = (_inferior().num, _inferior().pid, _stop_gen[0])
    if key in _stack_cache:
        return _stack_cache[key]
    st = T("struct tern_stack")
    if st is None:
        ctx.problem("no struct tern_stack in the debug information: is this a Tern "
                    "program built with -g?")
        return []
    found = {}
    for addr, where in _frame_candidates().items():
        found.setdefault(addr, []).append(where)
    moff = offsetof("struct tern_stack", "magic")
    if moff is None:
        ctx.miss("struct tern_stack.magic", "no such field: memory not searched")
    else:
        regions = _writable_regions(ctx)
        hits, skipped = _scan_magic(ctx, regions, _stack_magic(), moff,
                                    min(st.alignof if hasattr(st, "alignof") else 8, 8))
        for a in hits:
            found.setdefault(a, []).append("memory search")
        if skipped:
            ctx.problem("%d writable mapping(s) over %s MiB not searched (set "
                        "tern-scan-max-mib)" % (len(skipped), SCAN_MAX.value))
    good = []
    for addr in sorted(found):
        ok, why = check_stack(ctx, addr)
        if ok:
            good.append((addr, found[addr]))
        elif VERBOSE.value:
            gdb.write("tern: %#x (%s) is not a stack: %s\n" % (addr, ", ".join(found[addr]),
                                                               "; ".join(why)))
    _stack_cache[key] = good
    return good


_stop_gen = [0]


def _bump(*_):
    _stop_gen[0] += 1
    _stack_cache.clear()


for _ev in ("stop", "cont", "exited", "new_objfile", "clear_objfiles", "memory_changed",
            "inferior_call"):
    _reg = getattr(gdb.events, _ev, None)
    if _reg is not None:
        _reg.connect(_clear_caches if _ev in ("new_objfile", "clear_objfiles") else _bump)


# ------------------------------------------------------------ the stack

def stack_summary(ctx, addr, how):
    s = at(addr, "struct tern_stack")
    out = ["stack %#x  (found by: %s)\n" % (addr, ", ".join(how))]
    now = ctx.num(s, "now")
    rt = ctx.num(s, "rt")
    mode = "?" if rt is None else ("owned (no runtime thread)" if rt == 0 else
                                   "threaded (runtime %#x%s)" % (rt, _runtime_detail(ctx, rt)))
    out.append("  %s, now %s, %s\n" % (
        mode, "?" if now is None else "%.9f s" % (now / 1e9),
        "tearing down" if ctx.num(s, "in_teardown") else "running"))
    out.append("  sockets %s live (handles %s used of %s slots, max %s), timers %s armed, "
               "TIME_WAIT %s, requests %s, packets %s live\n" % (
                   _q(ctx.num(s, "socks.live")), _q(ctx.num(s, "socks.handles.used")),
                   _q(ctx.num(s, "socks.handles.cap")), _q(ctx.num(s, "socks.handles.max")),
                   _q(ctx.num(s, "wheel.armed")), _q(ctx.num(s, "tcp_timewait_count")),
                   _q(ctx.num(s, "tcp_req_count")), _q(ctx.num(s, "pool.live"))))
    ifaces = ctx.get(s, "ifaces")
    if ifaces is not None:
        try:
            lo, hi = ifaces.type.strip_typedefs().range()
        except gdb.error:
            lo, hi = 0, -1
        for i in range(lo, hi + 1):
            ifp = ifaces[i]
            if not ctx.num(ifp, "used"):
                continue
            mac = ctx.get(ifp, "mac")
            try:
                macs = ":".join("%02x" % int(mac[k]) for k in range(6)) if mac is not None else "?"
            except gdb.error:
                macs = "?"
            addrs = []
            n = ctx.num(ifp, "naddrs", 0) or 0
            arr = ctx.get(ifp, "addrs")
            for k in range(min(n, 64)):
                if arr is None:
                    break
                addrs.append("%s/%s" % (ip4(ctx.num(arr[k], "addr")), ctx.num(arr[k], "prefixlen")))
            out.append("  if %s: mac %s mtu %s link %#x  %s\n" % (
                ctx.num(ifp, "index"), macs, ctx.num(ifp, "mtu"), ctx.num(ifp, "link", 0) or 0,
                " ".join(addrs)))
    return "".join(out)


def _runtime_detail(ctx, rt):
    t = T("struct tern_runtime")
    if t is None:
        return ""
    r = at(rt, "struct tern_runtime")
    inside = ctx.num(r, "inside")
    stopping = ctx.num(r, "stopping")
    out = ", %s call(s) inside%s" % (_q(inside), ", stopping" if stopping else "")
    # Frames written after the lock is dropped (runtime/tx.c): what waits
    # for a sender, whether one is writing, what was sent and not freed.
    off_q = offsetof("struct tern_runtime", "tx.q")
    off_done = offsetof("struct tern_runtime", "tx.done")
    if off_q is not None and off_done is not None:
        q = len(list_nodes(ctx, rt + off_q, "runtime tx queue"))
        done = len(list_nodes(ctx, rt + off_done, "runtime tx done"))
        out += ", frames for links: %d queued%s, %d sent not yet freed" % (
            q, " (a sender is writing)" if ctx.num(r, "tx.busy") else "", done)
    return out


def _q(x):
    return "?" if x is None else str(x)


# ------------------------------------------------------------ sockets

LIFE_NAMES = {"SOCK_LIFE_BOTH": "user+proto", "SOCK_LIFE_USER_ONLY": "user",
              "SOCK_LIFE_PROTO_ONLY": "proto", "SOCK_LIFE_DEAD": "dead"}
KIND_NAMES = {"SOCK_KIND_UDP": "udp", "SOCK_KIND_PING": "icmp", "SOCK_KIND_TCP": "tcp",
              "SOCK_KIND_EPOLL": "epoll"}
PCB_KIND_NAMES = {"TERN_PCB_SOCKET": "socket", "TERN_PCB_TIMEWAIT": "timewait",
                  "TERN_PCB_REQUEST": "request"}

SOCK_HEADER = "%-6s %-10s %-5s %-5s %-12s %-10s %-21s %-21s %6s %8s %8s %6s %s\n" % (
    "id", "handle", "slot", "proto", "state", "refs", "local", "peer", "rx-q", "rx-bytes",
    "tx-bytes", "drops", "flags")
ROW = "%-6s %-10s %-5s %-5s %-12s %-10s %-21s %-21s %6s %8s %8s %6s %s\n"


def sockets_of(ctx, s):
    head = ctx.get(s, "socks.all")
    off = offsetof("struct tern_socket", "all_node")
    if head is None or off is None:
        ctx.miss("struct tern_socket.all_node", "no such field")
        return []
    return [n - off for n in list_nodes(ctx, int(head.address), "the socket list")]


def handle_slots(ctx, s):
    """{socket address: slot index} from the handle table."""
    out = {}
    slots = ctx.num(s, "socks.handles.slots")
    cap = ctx.num(s, "socks.handles.cap")
    st = T("struct tern_handle_slot")
    soff = offsetof("struct tern_handle_slot", "so")
    if not slots or not cap or st is None or soff is None:
        return out
    raw = read_bytes(slots, cap * st.sizeof)
    if raw is None:
        ctx.problem("cannot read the handle table at %#x (%d slots)" % (slots, cap))
        return out
    ps = _psize()
    order = "little" if _little() else "big"
    for i in range(cap):
        so = int.from_bytes(raw[i * st.sizeof + soff:i * st.sizeof + soff + ps], order)
        if so:
            out[so] = i
    return out


def _flags(ctx, so):
    fl = []
    for name, label in (("pcb.table", "bound"), ("pcb.reuseaddr", "reuseaddr"),
                        ("pcb.reuseport", "reuseport"), ("nonblock", "nonblock"),
                        ("so_error", "error"), ("shut_rd", "shut-rd"), ("shut_wr", "shut-wr")):
        v = ctx.num(so, name)
        if v:
            fl.append(label if name != "so_error" else "error=%d" % v)
    return " ".join(fl)


def socket_row(ctx, addr, slots):
    so = at(addr, "struct tern_socket")
    sid = ctx.num(so, "id")
    handle = ctx.num(so, "handle")
    kind = ctx.enum(so, "kind", "SOCK_KIND_", KIND_NAMES)
    life = ctx.enum(so, "life", "SOCK_LIFE_", LIFE_NAMES)
    tcb = ctx.num(so, "tcb", 0) or 0
    tp = at(tcb, "struct tern_tcpcb") if tcb and T("struct tern_tcpcb") else None
    state = ctx.enum(tp, "state", "TCPS_") if tp is not None else "-"
    laddr, lport = ctx.num(so, "pcb.laddr"), ctx.num(so, "pcb.lport")
    connected = ctx.num(so, "pcb.connected")
    local = endpoint(laddr, lport)
    peer = endpoint(ctx.num(so, "pcb.faddr"), ctx.num(so, "pcb.fport")) if connected else "*:*"
    drops = "-"
    if tp is not None:
        rxq = "-"
        rxb = ctx.num(tp, "rcv.len")
        txb = ctx.num(tp, "snd.len")
    elif kind in ("udp", "icmp") and T("struct tern_sock_dgram"):
        # A datagram socket's queue sits right behind the socket, in the
        # same block (src/sock/socket.h, tern_sock_tail).
        dg = at(addr + T("struct tern_socket").sizeof, "struct tern_sock_dgram")
        rxq = ctx.num(dg, "rcvq_count")
        rxb = ctx.num(dg, "rcvq_bytes")
        drops = ctx.num(dg, "rx_dropped")
        txb = "-"
    else:
        rxq = rxb = txb = "-"
    fl = _flags(ctx, so)
    if addr in slots:
        slot = str(slots[addr])
    else:
        slot = "-"
        if handle is not None and handle >= 0:
            fl += " !no-handle-slot"
    row = ROW % (_q(sid), "%#x" % handle if handle is not None and handle >= 0 else "-", slot,
                 kind, state, life, local, peer, _q(rxq), _q(rxb), _q(txb),
                 _q(drops), fl.strip())
    return row, tp


def _ms(ns):
    return "?" if ns is None else "%.3f ms" % (ns / 1e6)


def tcp_detail(ctx, tp, at_stack_now):
    parts = []
    for f in ("iss", "snd_una", "snd_nxt", "snd_max", "snd_wnd", "irs", "rcv_nxt"):
        v = ctx.num(tp, f)
        if v is not None:
            parts.append("%s=%d" % (f, v))
    line1 = "       tcp " + " ".join(parts)
    parts = []
    for f in ("srtt", "rttvar", "rto"):
        v = ctx.num(tp, f)
        if v is not None:
            parts.append("%s=%s" % (f, _ms(v)))
    for f in ("cwnd", "ssthresh", "mss", "retransmits", "total_retransmits", "dupacks",
              "reordering"):
        v = ctx.num(tp, f)
        if v is not None:
            parts.append("%s=%s" % (f, "inf" if f == "ssthresh" and v == 0xffffffff else v))
    if ctx.num(tp, "in_recovery"):
        parts.append("in-recovery")
    ooo_at = ctx.num(tp, "ooo", 0)
    ooo = ctx.num(at(ooo_at, "struct tern_tcp_reass"), "held") if ooo_at else None
    if ooo:
        parts.append("ooo=%d" % ooo)
    line2 = "           " + " ".join(parts)
    return (line1 + "\n" + line2 + "\n" + tcp_deadlines(ctx, tp, at_stack_now) +
            tcp_events(ctx, tp, at_stack_now))


_EV_NAMES = ["rx", "tx", "state", "retransmit", "timer", "drop"]
_FLAG_NAMES = "FSRPAUEC"


def tcp_events(ctx, tp, now):
    """The connection's recent events (src/transport/tcp/tcp_trace.h),
    oldest first; nothing in layouts without them."""
    try:
        names = [f.name for f in tp.type.strip_typedefs().fields()]
    except (gdb.error, TypeError):
        return ""
    if "events" not in names:
        return ""
    cap, nxt = ctx.num(tp, "events_cap"), ctx.num(tp, "events_next")
    if not cap or not nxt:
        return ""
    n = min(cap, nxt)
    st = T("enum tern_tcp_state")
    out = ["           last %d of %d events:\n" % (n, nxt)]
    now_us = (now // 1000) & 0xffffffff if now is not None else None
    for i in range(n):
        try:
            e = tp["events"][(nxt - n + i) % cap]
            ev, state = int(e["ev"]), int(e["state"])
            flags = int(e["flags"])
            t = int(e["t_us"])
        except gdb.error as err:
            ctx.miss("struct tern_tcp_event", str(err))
            return "".join(out)
        fl = "".join(_FLAG_NAMES[b] for b in range(8) if flags & (1 << b)) or "."
        ago = "-%.6fs" % (((now_us - t) & 0xffffffff) / 1e6) if now_us is not None else "?"
        sname = "?"
        if st is not None:
            for f in st.fields():
                if f.enumval == state:
                    sname = f.name[len("TCPS_"):]
        # aux: the window of rx/tx, the other events' detail (tcp_trace.h).
        aux = "wnd" if ev < 2 else "detail"
        out.append("             %s %-10s %-12s %-6s seq %d ack %d len %d %s %d\n" % (
            ago, _EV_NAMES[ev] if ev < len(_EV_NAMES) else "?", sname, fl, int(e["seq"]),
            int(e["ack"]), int(e["len"]), aux, int(e["aux"])))
    return "".join(out)


def tcp_deadlines(ctx, tp, now):
    dl = ctx.get(tp, "deadline")
    et = T("enum tern_tcp_timer")
    if dl is None:
        return ""
    parts = []
    try:
        lo, hi = dl.type.strip_typedefs().range()
    except gdb.error:
        return ""
    for k in range(lo, hi + 1):
        try:
            d = int(dl[k])
        except gdb.error:
            continue
        if not d:
            continue
        name = _enum_name(et, k) if et is not None else None
        name = (name or str(k)).replace("TERN_TCPT_", "").lower()
        parts.append("%s in %s" % (name, _ms(d - now)) if now is not None else
                     "%s at %.6f s" % (name, d / 1e9))
    if not parts:
        return ""
    return "           deadlines: " + ", ".join(parts) + "\n"


def cmd_sockets(ctx, addr):
    s = at(addr, "struct tern_stack")
    now = ctx.num(s, "now")
    out = ["sockets of stack %#x\n" % addr, SOCK_HEADER]
    slots = handle_slots(ctx, s)
    listeners = []
    seen = set()
    for a in sockets_of(ctx, s):
        seen.add(a)
        row, tp = socket_row(ctx, a, slots)
        out.append(row)
        if tp is not None:
            out.append(tcp_detail(ctx, tp, now))
            if ctx.enum(tp, "state", "TCPS_") == "LISTEN":
                listeners.append(tp)
                lq = listen_queues(ctx, tp)
                out.append("           listen: backlog %s, %s request(s), %s waiting for accept\n"
                           % (_q(ctx.num(lq, "backlog") if lq is not None else None),
                              _q(ctx.num(lq, "req_q_len") if lq is not None else None),
                              _q(ctx.num(lq, "accept_q_len") if lq is not None else None)))
                for r in requests_of(ctx, tp):
                    out.append(request_row(ctx, r, s))
    for tw in timewait_of(ctx, s):
        out.append(timewait_row(ctx, tw, s))
    # A slot that names a socket not on the list: freed, or never listed.
    for so, i in sorted(slots.items(), key=lambda x: x[1]):
        if so not in seen:
            ctx.problem("handle table slot %d names %#x, which is not on the socket list "
                        "(freed?)" % (i, so))
    live = ctx.num(s, "socks.live")
    if live is not None and live != len(seen):
        ctx.problem("the stack counts %d live sockets but %d are on its list" % (live, len(seen)))
    return "".join(out)


# ------------------------------------------------- listeners, TIME_WAIT

def listen_queues(ctx, tp):
    """Where a listener's queues are: struct tern_tcp_lq behind tp->lq
    (allocated by listen), or the TCB itself in layouts before that.
    None for a TCB that never listened."""
    try:
        tp.type.strip_typedefs().fields()
        names = [f.name for f in tp.type.strip_typedefs().fields()]
    except (gdb.error, TypeError):
        names = []
    if "lq" not in names:
        return tp
    ptr = ctx.get(tp, "lq")
    if ptr is None or int(ptr) == 0:
        return None
    return ptr.dereference()


def requests_of(ctx, tp):
    lq = listen_queues(ctx, tp)
    if lq is None:
        return []
    head = ctx.get(lq, "req_q")
    off = offsetof("struct tern_tcp_req", "node")
    if head is None or off is None:
        if off is None:
            ctx.miss("struct tern_tcp_req.node", "no such type or field")
        return []
    return [n - off for n in list_nodes(ctx, int(head.address), "a listener's request queue")]


def children_of(ctx, tp):
    lq = listen_queues(ctx, tp)
    if lq is None:
        return []
    head = ctx.get(lq, "accept_q")
    off = offsetof("struct tern_tcpcb", "child_node")
    if head is None or off is None:
        return []
    return [n - off for n in list_nodes(ctx, int(head.address), "a listener's accept queue")]


def _timer_due(ctx, timer, s):
    exp = ctx.num(timer, "expires_tick")
    now_tick = ctx.num(s, "wheel.now_tick")
    armed = ctx.num(timer, "armed")
    if exp is None or now_tick is None:
        return "?"
    if armed == 0:
        return "not armed"
    return "%d ms" % ((exp - now_tick) * _tick_ns() // 1000000)


def request_row(ctx, raddr, s):
    r = at(raddr, "struct tern_tcp_req")
    local = endpoint(ctx.num(r, "p.laddr"), ctx.num(r, "p.lport"))
    peer = endpoint(ctx.num(r, "p.faddr"), ctx.num(r, "p.fport"))
    return ROW % ("-", "-", "-", "tcp", "SYN_RECEIVED", "request", local, peer, "-", "-", "-",
                  "-", "synack-retries %s, resend in %s (request %#x)" % (
                      _q(ctx.num(r, "retries")), _timer_due(ctx, ctx.get(r, "timer"), s), raddr))


def timewait_of(ctx, s):
    head = ctx.get(s, "tcp_tw")
    off = offsetof("struct tern_tcp_tw", "node")
    if head is None or off is None:
        if off is None:
            ctx.miss("struct tern_tcp_tw.node", "no such type or field")
        return []
    return [n - off for n in list_nodes(ctx, int(head.address), "the TIME_WAIT list")]


def timewait_row(ctx, twaddr, s):
    tw = at(twaddr, "struct tern_tcp_tw")
    local = endpoint(ctx.num(tw, "pcb.laddr"), ctx.num(tw, "pcb.lport"))
    peer = endpoint(ctx.num(tw, "pcb.faddr"), ctx.num(tw, "pcb.fport"))
    return ROW % (_q(ctx.num(tw, "id")), "-", "-", "tcp", "TIME_WAIT", "record", local, peer,
                  "-", "-", "-", "-", "expires in %s" % _timer_due(ctx, ctx.get(tw, "timer"), s))


def cmd_timewait(ctx, addr):
    s = at(addr, "struct tern_stack")
    tws = timewait_of(ctx, s)
    out = ["TIME_WAIT records of stack %#x: %d (the stack counts %s)\n" % (
        addr, len(tws), _q(ctx.num(s, "tcp_timewait_count")))]
    for a in tws:
        tw = at(a, "struct tern_tcp_tw")
        out.append("  #%s %s -> %s  snd_nxt=%s rcv_nxt=%s wnd=%s ts=%s expires in %s (record %#x)\n"
                   % (_q(ctx.num(tw, "id")),
                      endpoint(ctx.num(tw, "pcb.laddr"), ctx.num(tw, "pcb.lport")),
                      endpoint(ctx.num(tw, "pcb.faddr"), ctx.num(tw, "pcb.fport")),
                      _q(ctx.num(tw, "snd_nxt")), _q(ctx.num(tw, "rcv_nxt")),
                      _q(ctx.num(tw, "rcv_wnd")), "yes" if ctx.num(tw, "ts_ok") else "no",
                      _timer_due(ctx, ctx.get(tw, "timer"), s), a))
    return "".join(out)


def cmd_listeners(ctx, addr):
    s = at(addr, "struct tern_stack")
    out = ["listeners of stack %#x\n" % addr]
    n = 0
    for a in sockets_of(ctx, s):
        so = at(a, "struct tern_socket")
        tcb = ctx.num(so, "tcb", 0)
        if not tcb:
            continue
        tp = at(tcb, "struct tern_tcpcb")
        if ctx.enum(tp, "state", "TCPS_") != "LISTEN":
            continue
        n += 1
        reqs, kids = requests_of(ctx, tp), children_of(ctx, tp)
        lq = listen_queues(ctx, tp)
        lqn = (lambda f: ctx.num(lq, f)) if lq is not None else (lambda f: None)
        out.append("  #%s %s backlog %s: %d request(s) (counted %s), %d waiting for accept "
                   "(counted %s)\n" % (
                       _q(ctx.num(so, "id")), endpoint(ctx.num(so, "pcb.laddr"),
                                                       ctx.num(so, "pcb.lport")),
                       _q(lqn("backlog")), len(reqs), _q(lqn("req_q_len")),
                       len(kids), _q(lqn("accept_q_len"))))
        for r in reqs:
            rv = at(r, "struct tern_tcp_req")
            out.append("      request %s <- %s iss=%s irs=%s retries=%s resend in %s (%#x)\n" % (
                endpoint(ctx.num(rv, "p.laddr"), ctx.num(rv, "p.lport")),
                endpoint(ctx.num(rv, "p.faddr"), ctx.num(rv, "p.fport")),
                _q(ctx.num(rv, "p.iss")), _q(ctx.num(rv, "p.irs")), _q(ctx.num(rv, "retries")),
                _timer_due(ctx, ctx.get(rv, "timer"), s), r))
        for k in kids:
            kt = at(k, "struct tern_tcpcb")
            kso = ctx.num(kt, "so", 0)
            ksv = at(kso, "struct tern_socket") if kso else None
            out.append("      child #%s %s <- %s %s, refs %s\n" % (
                _q(ctx.num(ksv, "id")) if ksv is not None else "?",
                endpoint(ctx.num(ksv, "pcb.laddr"), ctx.num(ksv, "pcb.lport")) if ksv is not None else "?",
                endpoint(ctx.num(ksv, "pcb.faddr"), ctx.num(ksv, "pcb.fport")) if ksv is not None else "?",
                ctx.enum(kt, "state", "TCPS_"),
                ctx.enum(ksv, "life", "SOCK_LIFE_", LIFE_NAMES) if ksv is not None else "?"))
    if n == 0:
        out.append("  none\n")
    return "".join(out)


# ---------------------------------------------------------------- PCBs

def _pcb_owner(ctx, pcb_addr):
    pcb = at(pcb_addr, "struct tern_inpcb")
    kind = ctx.enum(pcb, "kind", "TERN_PCB_", PCB_KIND_NAMES)
    if kind == "?" or kind.isdigit():
        # kind is a plain uint8_t: name it by the enum's members
        k = ctx.num(pcb, "kind")
        et = T("enum tern_pcb_kind")
        name = _enum_name(et, k) if et is not None and k is not None else None
        kind = PCB_KIND_NAMES.get(name, name or _q(k))
    if kind == "socket":
        off = offsetof("struct tern_socket", "pcb")
        if off is None:
            return kind, "socket ?"
        so = at(pcb_addr - off, "struct tern_socket")
        tcb = ctx.num(so, "tcb", 0)
        st = ctx.enum(at(tcb, "struct tern_tcpcb"), "state", "TCPS_") if tcb else ""
        return kind, "socket #%s %s %s" % (_q(ctx.num(so, "id")), st,
                                            ctx.enum(so, "life", "SOCK_LIFE_", LIFE_NAMES))
    if kind == "timewait":
        off = offsetof("struct tern_tcp_tw", "pcb")
        tw = at(pcb_addr - off, "struct tern_tcp_tw") if off is not None else None
        return kind, "TIME_WAIT record of #%s" % (_q(ctx.num(tw, "id")) if tw is not None else "?")
    if kind == "request":
        off = offsetof("struct tern_tcp_req", "pcb")
        if off is None:
            return kind, "request"
        r = at(pcb_addr - off, "struct tern_tcp_req")
        ltp = ctx.num(r, "listener", 0)
        lso = ctx.num(at(ltp, "struct tern_tcpcb"), "so", 0) if ltp else 0
        lid = ctx.num(at(lso, "struct tern_socket"), "id") if lso else None
        return kind, "request on listener #%s" % _q(lid)
    return kind, "?"


def cmd_pcbs(ctx, addr):
    s = at(addr, "struct tern_stack")
    out = ["PCB tables of stack %#x\n" % addr]
    boff = offsetof("struct tern_inpcb", "bnode")
    hoff = offsetof("struct tern_inpcb", "hnode")
    lt = T("struct tern_list")
    for f in _pcb_table_fields(s):
        t = ctx.get(s, f)
        taddr = int(t.address)
        name = ctx.cstr(t, "name", 16) or f
        mask = ctx.num(t, "conn_mask")
        pcbs = {}  # address -> set of places
        for index, off in (("bind", boff), ("listen", hoff)):
            ix = ctx.get(t, index)
            heads = ctx.num(ix, "heads", 0) if ix is not None else 0
            imask = ctx.num(ix, "mask") if ix is not None else None
            if not heads or imask is None or lt is None:
                continue
            if imask + 1 > 65536:
                ctx.problem("%s: a %s index of %d buckets is not believed" % (name, index, imask + 1))
                continue
            for i, h in _heads_at(ctx, heads, imask + 1, "%s %s index" % (name, index)):
                for n in list_nodes(ctx, h, "%s %s bucket %d" % (name, index, i)):
                    pcbs.setdefault(n - off, set()).add("%s[%d]" % (index, i))
        conn = ctx.num(t, "conn", 0)
        if conn and mask is not None and lt is not None:
            if mask + 1 > (1 << 24):
                ctx.problem("%s: a connection hash of %d buckets is not believed" % (name, mask + 1))
            else:
                for i, h in _heads_at(ctx, conn, mask + 1, name + " connection hash"):
                    for n in list_nodes(ctx, h, "%s connection bucket %d" % (name, i)):
                        pcbs.setdefault(n - hoff, set()).add("conn[%d]" % i)
        out.append("table %s (%#x): %s PCBs, %s in the connection hash of %s buckets\n" % (
            name, taddr, _q(ctx.num(t, "count")), _q(ctx.num(t, "conn_count")),
            _q(None if mask is None else mask + 1)))
        for p in sorted(pcbs):
            pcb = at(p, "struct tern_inpcb")
            kind, owner = _pcb_owner(ctx, p)
            flags = [n for n in ("reuseaddr", "reuseport", "listening", "connected", "bound_addr",
                                 "bound_port", "connect_port") if ctx.num(pcb, n)]
            if ctx.num(pcb, "group"):
                g = at(ctx.num(pcb, "group"), "struct tern_reuseport_group")
                flags.append("group(%s members)" % _q(ctx.num(g, "n")))
            tab = ctx.num(pcb, "table")
            if tab != taddr:
                flags.append("!table=%s" % ("?" if tab is None else "%#x" % tab))
            out.append("  %#x %-8s %-21s %-21s %-28s %s  [%s]\n" % (
                p, kind, endpoint(ctx.num(pcb, "laddr"), ctx.num(pcb, "lport")),
                endpoint(ctx.num(pcb, "faddr"), ctx.num(pcb, "fport"))
                if ctx.num(pcb, "connected") else "*:*",
                owner, " ".join(flags), " ".join(sorted(pcbs[p]))))
        if ctx.num(t, "count") is not None:
            in_bind = sum(1 for p in pcbs if any(x.startswith("bind") for x in pcbs[p]))
            if in_bind != ctx.num(t, "count"):
                out.append("  (the table counts %d, %d are in its bind buckets)\n" % (
                    ctx.num(t, "count"), in_bind))
    return "".join(out)


# -------------------------------------------------------------- timers

def _owner_tcb(ctx, a, s):
    tp = at(a, "struct tern_tcpcb")
    so = ctx.num(tp, "so", 0)
    sv = at(so, "struct tern_socket") if so else None
    d = tcp_deadlines(ctx, tp, ctx.num(s, "now")).strip()
    return "socket #%s %s %s -> %s%s" % (
        _q(ctx.num(sv, "id")) if sv is not None else "?", ctx.enum(tp, "state", "TCPS_"),
        endpoint(ctx.num(sv, "pcb.laddr"), ctx.num(sv, "pcb.lport")) if sv is not None else "?",
        endpoint(ctx.num(sv, "pcb.faddr"), ctx.num(sv, "pcb.fport")) if sv is not None else "?",
        "; " + d if d else "")


def _owner_tw(ctx, a, s):
    tw = at(a, "struct tern_tcp_tw")
    return "TIME_WAIT record of #%s %s -> %s" % (
        _q(ctx.num(tw, "id")), endpoint(ctx.num(tw, "pcb.laddr"), ctx.num(tw, "pcb.lport")),
        endpoint(ctx.num(tw, "pcb.faddr"), ctx.num(tw, "pcb.fport")))


def _owner_req(ctx, a, s):
    r = at(a, "struct tern_tcp_req")
    return "request %s <- %s" % (endpoint(ctx.num(r, "p.laddr"), ctx.num(r, "p.lport")),
                                 endpoint(ctx.num(r, "p.faddr"), ctx.num(r, "p.fport")))


def _owner_arp(ctx, a, s):
    e = at(a, "struct tern_arp_entry")
    return "ARP entry %s on if %s, %s" % (ip4(ctx.num(e, "ip")), _q(ctx.num(e, "ifindex")),
                                          ctx.enum(e, "state", "ARP_").lower())


def _owner_reasm(ctx, a, s):
    q = at(a, "struct tern_reasm_queue")
    return "reassembly %s -> %s id %s" % (ip4(ctx.num(q, "src")), ip4(ctx.num(q, "dst")),
                                          _q(ctx.num(q, "id")))


# timer name -> (owning struct, member, describer)
TIMER_OWNERS = {
    "tcp": ("struct tern_tcpcb", "timer", _owner_tcb),
    "tcp-timewait": ("struct tern_tcp_tw", "timer", _owner_tw),
    "tcp-synack": ("struct tern_tcp_req", "timer", _owner_req),
    "arp": ("struct tern_arp_entry", "timer", _owner_arp),
    "ip-reasm": ("struct tern_reasm_queue", "timer", _owner_reasm),
}


def _fn_name(p):
    if not p:
        return "-"
    try:
        b = gdb.block_for_pc(p)
        if b is not None and b.function is not None:
            return b.function.name
    except (RuntimeError, gdb.error):
        pass
    try:
        text = gdb.execute("info symbol %#x" % p, to_string=True)
        return text.split(" in ")[0].strip()
    except gdb.error:
        return "%#x" % p


def cmd_timers(ctx, addr):
    s = at(addr, "struct tern_stack")
    slots = ctx.get(s, "wheel.slots")
    toff = offsetof("struct tern_timer", "node")
    now_tick = ctx.num(s, "wheel.now_tick")
    armed = ctx.num(s, "wheel.armed")
    rows = []
    per_level = None
    try:
        per_level = slots[0].type.strip_typedefs().sizeof // T("struct tern_list").sizeof
    except (gdb.error, TypeError, AttributeError):
        pass
    for i, h in nonempty_heads(ctx, slots, "the timer wheel"):
        for n in list_nodes(ctx, h, "timer wheel slot %d" % i):
            ta = n - toff
            t = at(ta, "struct tern_timer")
            name = ctx.cstr(t, "name", 32) or "?"
            exp = ctx.num(t, "expires_tick")
            due = "?" if exp is None or now_tick is None else \
                "%d ms" % ((exp - now_tick) * _tick_ns() // 1000000)
            owner = "?"
            if name in TIMER_OWNERS:
                tname, member, describe = TIMER_OWNERS[name]
                off = offsetof(tname, member)
                if off is not None:
                    try:
                        owner = describe(ctx, ta - off, s)
                    except gdb.error as e:
                        owner = "? (%s)" % e
            where = "level %d slot %d" % divmod(i, per_level) if per_level else "slot %d" % i
            bad = "" if ctx.num(t, "armed") else "  !NOT ARMED (corrupt or freed?)"
            rows.append((exp if exp is not None else 0,
                         "  %-13s due in %-10s %-24s %s  [%s, timer %#x]%s\n" % (
                             name, due, _fn_name(ctx.num(t, "fn", 0)), owner, where, ta, bad)))
    rows.sort(key=lambda r: r[0])
    out = ["timers of stack %#x: %d on the wheel (the wheel counts %s armed), now tick %s\n" % (
        addr, len(rows), _q(armed), _q(now_tick))]
    out.extend(r[1] for r in rows)
    if armed is not None and armed != len(rows):
        ctx.problem("the wheel counts %d armed timers but %d are on it" % (armed, len(rows)))
    return "".join(out)


# ------------------------------------------------------------ counters

def counter_names(ctx, n):
    """A list of n names (index = enum tern_counter_id) and where they came
    from."""
    try:
        sym = gdb.lookup_static_symbol("counter_descs")
    except (AttributeError, gdb.error):
        sym = None
    if sym is not None:
        try:
            v = sym.value()
            lo, hi = v.type.strip_typedefs().range()
            names = []
            for i in range(lo, hi + 1):
                e = v[i]
                try:
                    nm = e["name"]
                    names.append(nm.string() if nm.type.strip_typedefs().code ==
                                 gdb.TYPE_CODE_ARRAY else read_cstr(int(nm), 64))
                except gdb.error:
                    names.append(None)
            if len(names) == n and all(names):
                return names, "the binary's counter table"
        except gdb.error:
            pass
    text = _source_text(os.path.join("obs", "counters.h"))
    if text:
        names = re.findall(r'X\(\s*\w+\s*,\s*"([^"]+)"', text)
        if len(names) == n:
            return names, "src/obs/counters.h"
    et = T("enum tern_counter_id")
    if et is not None:
        names = [None] * n
        for f in et.fields():
            if 0 <= f.enumval < n:
                names[f.enumval] = f.name.replace("TERN_C_", "").lower()
        if all(names):
            return names, "enum tern_counter_id"
    ctx.problem("no counter names (no counter table, header or enum): numbered instead")
    return ["counter[%d]" % i for i in range(n)], "numbers"


def cmd_counters(ctx, addr, all_=False, match=None):
    s = at(addr, "struct tern_stack")
    arr = ctx.get(s, "counters")
    if arr is None:
        return "counters of stack %#x: none readable\n" % addr
    lo, hi = arr.type.strip_typedefs().range()
    n = hi - lo + 1
    names, source = counter_names(ctx, n)
    raw = read_bytes(int(arr.address), arr.type.sizeof)
    esz = arr.type.sizeof // n
    order = "little" if _little() else "big"
    out = ["counters of stack %#x (%d, names from %s)%s\n" % (
        addr, n, source, "" if all_ else ", nonzero only")]
    if raw is None:
        ctx.problem("cannot read the counters at %#x" % int(arr.address))
        return "".join(out)
    shown = 0
    for i in range(n):
        v = int.from_bytes(raw[i * esz:(i + 1) * esz], order)
        if (v or all_) and (not match or match in names[i]):
            out.append("  %-36s %14d\n" % (names[i], v))
            shown += 1
    if not shown:
        out.append("  (none)\n")
    return "".join(out)


# ------------------------------------------------------------ commands

def _stacks_for(ctx, arg, force=False):
    """[(address, how)] for an optional STACK expression."""
    if arg:
        try:
            v = gdb.parse_and_eval(arg)
            addr = int(v)
        except gdb.error as e:
            raise gdb.GdbError("tern: %s: %s" % (arg, e))
        ok, why = check_stack(ctx, addr)
        if not ok:
            msg = "tern: %#x does not look like a struct tern_stack: %s" % (addr, "; ".join(why))
            if not force:
                raise gdb.GdbError(msg + " (-f to read it anyway)")
            gdb.write(msg + "\n")
        return [(addr, ["given"])]
    found = find_stacks(ctx)
    if not found:
        gdb.write("tern: no stack found (a stack whose magic is gone was freed; "
                  "give its address as `tern stack ADDR -f` to read it anyway)\n")
    return found


class TernPrefix(gdb.Command):
    """Tern's commands: tern stacks, stack, sockets, pcbs, timewait, listeners,
timers, counters, all. See the header of tools/gdb/tern.py."""

    def __init__(self):
        super().__init__("tern", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class _Sub(gdb.Command):
    name = None

    def __init__(self):
        super().__init__("tern " + self.name, gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        ctx = Ctx()
        try:
            self.run(ctx, gdb.string_to_argv(arg))
        finally:
            rep = ctx.report()
            if rep:
                gdb.write(rep)

    @staticmethod
    def _split(argv):
        flags = [a for a in argv if a.startswith("-") and not a.lstrip("-").isdigit()]
        rest = [a for a in argv if a not in flags]
        return flags, rest


def _per_stack(fn):
    def run(self, ctx, argv):
        flags, rest = self._split(argv)
        for addr, how in _stacks_for(ctx, " ".join(rest), "-f" in flags):
            gdb.write(fn(ctx, addr))
    return run


class Stacks(_Sub):
    """tern stacks: find the stacks and summarise each."""
    name = "stacks"

    def run(self, ctx, argv):
        found = find_stacks(ctx)
        gdb.write("%d stack(s)\n" % len(found))
        for addr, how in found:
            gdb.write(stack_summary(ctx, addr, how))


def _everything(ctx, addr, how):
    return "".join([stack_summary(ctx, addr, how), cmd_sockets(ctx, addr),
                    cmd_listeners(ctx, addr), cmd_timewait(ctx, addr), cmd_pcbs(ctx, addr),
                    cmd_timers(ctx, addr), cmd_counters(ctx, addr)])


class Stack(_Sub):
    """tern stack STACK [-f]: check STACK and print everything about it."""
    name = "stack"

    def run(self, ctx, argv):
        flags, rest = self._split(argv)
        if not rest:
            raise gdb.GdbError("usage: tern stack STACK [-f]")
        for addr, how in _stacks_for(ctx, " ".join(rest), "-f" in flags):
            gdb.write(_everything(ctx, addr, how))


class All(_Sub):
    """tern all [STACK]: everything about every stack (or STACK)."""
    name = "all"

    def run(self, ctx, argv):
        flags, rest = self._split(argv)
        found = _stacks_for(ctx, " ".join(rest), "-f" in flags)
        if not rest:
            gdb.write("%d stack(s)\n" % len(found))
        for addr, how in found:
            gdb.write(_everything(ctx, addr, how))


class Sockets(_Sub):
    """tern sockets [STACK]: the socket table."""
    name = "sockets"
    run = _per_stack(cmd_sockets)


class Pcbs(_Sub):
    """tern pcbs [STACK]: the PCB tables."""
    name = "pcbs"
    run = _per_stack(cmd_pcbs)


class Timewait(_Sub):
    """tern timewait [STACK]: TIME_WAIT records."""
    name = "timewait"
    run = _per_stack(cmd_timewait)


class Listeners(_Sub):
    """tern listeners [STACK]: listeners with their request and accept queues."""
    name = "listeners"
    run = _per_stack(cmd_listeners)


class Timers(_Sub):
    """tern timers [STACK]: armed timers and what owns each."""
    name = "timers"
    run = _per_stack(cmd_timers)


class Counters(_Sub):
    """tern counters [STACK] [-a] [TEXT]: counters by name."""
    name = "counters"

    def run(self, ctx, argv):
        flags, rest = self._split(argv)
        expr, match = None, None
        if rest:
            # An expression if it evaluates, else a name filter.
            try:
                gdb.parse_and_eval(rest[0])
                expr = rest[0]
                match = rest[1] if len(rest) > 1 else None
            except gdb.error:
                match = rest[0]
        for addr, how in _stacks_for(ctx, expr, "-f" in flags):
            gdb.write(cmd_counters(ctx, addr, "-a" in flags, match))


TernPrefix()
for _c in (Stacks, Stack, All, Sockets, Pcbs, Timewait, Listeners, Timers, Counters):
    _c()
