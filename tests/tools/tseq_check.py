#!/usr/bin/python3
"""The tseq test (CTest tools.tseq): pictures of a connection are valid
images with every retransmission marked.

    tseq_check.py TSEQ_TRANSFER TSEQ_TOOL TMPDIR

1. A transfer with loss in the simulator (tests/tools/tseq_transfer.c,
   two Tern stacks on the in-memory wire, 2% of frames lost each way)
   writes a pcap of the sender's link and the sender's TCP_INFO over time.
   tools/tseq draws it as SVG and PNG with the cwnd panel. The SVG must
   parse as XML; its retransmission elements must be as many as Tern's
   tcp.retransmit counter says the sender sent, and sit at the same times
   and sequence numbers as the segments tshark's own TCP analysis calls
   retransmissions. The PNG must decode (signature, chunk CRCs, IHDR,
   zlib, row filters) to the SVG's size, with red (retransmission) pixels
   inside the plot.
2. Hand-made captures with known answers, to pin what the sim cannot
   choose: a sequence number that wraps, window scaling taken from the
   handshake, SACK and D-SACK blocks, a capture without its handshake
   (--wscale), IPv6, pcapng, and a transfer with no loss, whose picture
   has no red in its plot at all.

Exit 0 when everything holds; 1 with the reasons otherwise.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib

SVG_NS = "{http://www.w3.org/2000/svg}"
REXMIT_RGB = (0xD6, 0x27, 0x28)
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg)
    return cond


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240, **kw)
    if p.returncode != 0:
        print("command failed (%d): %s\n%s%s" % (p.returncode, " ".join(cmd), p.stdout, p.stderr))
        sys.exit(1)
    return p.stdout


# ---------------------------------------------------------------- SVG

def classes(el):
    return (el.get("class") or "").split()


def svg_facts(path):
    root = ET.parse(path).getroot()  # raises on anything but well-formed XML
    if root.tag != SVG_NS + "svg":
        raise ValueError("root element is %s, not svg" % root.tag)
    by_class = {}
    for el in root.iter():
        for c in classes(el):
            by_class.setdefault(c, []).append(el)
    plot = None
    for cp in root.iter(SVG_NS + "clipPath"):
        if cp.get("id") == "plot":
            r = cp.find(SVG_NS + "rect")
            plot = tuple(int(float(r.get(k))) for k in ("x", "y", "width", "height"))
    rexmits = []
    for el in by_class.get("rexmit", []):
        t = el.find(SVG_NS + "title")
        m = re.match(r"retransmission at ([0-9.]+) s: (-?\d+)\.\.(-?\d+)", t.text if t is not None else "")
        if m:
            rexmits.append((float(m.group(1)), int(m.group(2)), int(m.group(3))))
    return {"width": int(root.get("width")), "height": int(root.get("height")),
            "by_class": by_class, "plot": plot, "rexmits": rexmits}


# ---------------------------------------------------------------- PNG

def png_decode(path):
    """(width, height, rows of RGB tuples) from an 8-bit PNG, checked as a
    decoder would: signature, every chunk's CRC, IHDR first, IEND last,
    the zlib stream, each row's filter."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    i, chunks = 8, []
    while i < len(data):
        if i + 8 > len(data):
            raise ValueError("chunk header cut short")
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + n]
        crc = struct.unpack(">I", data[i + 8 + n:i + 12 + n])[0]
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError("bad CRC in %s chunk" % kind)
        chunks.append((kind, body))
        i += 12 + n
    if chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise ValueError("IHDR not first or IEND not last")
    w, h, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or ctype not in (0, 2, 4, 6) or interlace:
        raise ValueError("unexpected PNG form: depth %d colour type %d interlace %d"
                         % (depth, ctype, interlace))
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise ValueError("image data is %d bytes, %dx%d wants %d" % (len(raw), w, h, h * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 0xFF
        elif f == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif f == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 0xFF
        elif f == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
        elif f != 0:
            raise ValueError("row %d has filter type %d" % (y, f))
        prev = line
        if bpp >= 3:
            rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        else:
            rows.append([(line[x],) * 3 for x in range(0, stride, bpp)])
    return w, h, rows


def red_pixels(rows, box):
    x0, y0, bw, bh = box
    n = 0
    for y in range(y0, y0 + bh):
        for px in rows[y][x0:x0 + bw]:
            if all(abs(a - b) <= 24 for a, b in zip(px, REXMIT_RGB)):
                n += 1
    return n


def check_images(tag, svg, png):
    facts = None
    try:
        facts = svg_facts(svg)
    except (ET.ParseError, ValueError) as e:
        check(False, "%s: SVG does not parse: %s" % (tag, e))
        return None, None
    w = h = rows = None
    try:
        w, h, rows = png_decode(png)
    except (ValueError, zlib.error, IndexError, struct.error) as e:
        check(False, "%s: PNG does not decode: %s" % (tag, e))
    if rows is not None:
        check((w, h) == (facts["width"], facts["height"]),
              "%s: PNG is %dx%d, the SVG %dx%d" % (tag, w, h, facts["width"], facts["height"]))
    if file_cmd := shutil.which("file"):
        out = subprocess.run([file_cmd, "-b", png], capture_output=True, text=True).stdout
        check(out.startswith("PNG image data"), "%s: file(1) says %r" % (tag, out.strip()))
    return facts, rows


# ---------------------------------------------------------------- 1: the simulator

def tshark_rexmits(pcap, sender_ip, sender_port):
    """(time from the connection's first packet, relative seq) of every
    segment from the sender that tshark's analysis calls a retransmission.
    Wireshark names one sent within 3 ms of the segment before it
    "out-of-order" (its guess for a capture in mid-path); from the
    sender's own link, a segment below the highest sequence sent is a
    retransmission whatever the gap, so both names count."""
    filt = ("ip.src == %s && tcp.srcport == %d && (tcp.len > 0 || tcp.flags.syn == 1 || "
            "tcp.flags.fin == 1) && (tcp.analysis.retransmission || tcp.analysis.out_of_order || "
            "tcp.analysis.spurious_retransmission || tcp.analysis.fast_retransmission)"
            % (sender_ip, sender_port))
    out = run(["tshark", "-r", pcap, "-o", "tcp.calculate_timestamps:TRUE",
               "-o", "tcp.relative_sequence_numbers:TRUE", "-Y", filt,
               "-T", "fields", "-e", "tcp.time_relative", "-e", "tcp.seq"])
    res = []
    for line in out.splitlines():
        if line.strip():
            t, seq = line.split("\t")
            res.append((float(t), int(seq)))
    return res


def sim_case(transfer, tseq, tmp):
    pcap, csv, svg, png = (os.path.join(tmp, "sim." + e) for e in ("pcap", "csv", "svg", "png"))
    out = run([transfer, pcap, csv])
    counters = dict(re.findall(r"^(tcp\.\w+|tcpinfo\.rows) (\d+)$", out, re.M))
    counters = {k: int(v) for k, v in counters.items()}
    print("simulator: %s" % counters)
    rexmit = counters.get("tcp.retransmit", 0)
    # A run without loss would test nothing: the seed is chosen to lose.
    check(rexmit > 0, "the lossy transfer retransmitted nothing")
    check(counters.get("tcpinfo.rows", 0) > 10, "TCP_INFO was hardly sampled")
    summ = json.loads(run([tseq, pcap, "-o", svg, "--png", png, "--cwnd", csv, "--json"]))
    print("tseq: %s" % {k: summ[k] for k in ("segments", "retransmissions", "acks", "sack_blocks",
                                             "wscale", "cwnd_samples")})
    facts, rows = check_images("sim", svg, png)
    if facts is None:
        return
    bc = facts["by_class"]
    n_svg = len(bc.get("rexmit", []))
    check(n_svg == rexmit, "SVG marks %d retransmissions, Tern's tcp.retransmit says %d"
          % (n_svg, rexmit))
    check(summ["retransmissions"] == n_svg, "tseq --json says %d retransmissions, the SVG has %d"
          % (summ["retransmissions"], n_svg))
    check(len(facts["rexmits"]) == n_svg, "a retransmission element lacks its title")
    # Each one where tshark sees a retransmission: same time, same seq.
    sender_ip, sender_port = summ["sender"].rsplit(":", 1)
    ts = sorted(tshark_rexmits(pcap, sender_ip, int(sender_port)))
    ours = sorted((t, start) for t, start, _end in facts["rexmits"])
    check(len(ts) == len(ours), "tshark finds %d retransmissions, the SVG %d" % (len(ts), len(ours)))
    for (t1, s1), (t2, s2) in zip(ts, ours):
        if not check(abs(t1 - t2) < 2e-6 and s1 == s2,
                     "tshark's retransmission at %.6f s seq %d is drawn at %.6f s seq %d"
                     % (t1, s1, t2, s2)):
            break
    # Everything else a Stevens graph shows is there.
    check(len(bc.get("seg", [])) == summ["new"] and summ["new"] > 100, "new data segments missing")
    for cls in ("ack", "rwin", "cwnd", "ssthresh"):
        el = bc.get(cls, [])
        check(len(el) == 1 and len(el[0].get("points", "").split()) > 10,
              "no %s line with points" % cls)
    check(len(bc.get("sack", [])) == summ["sack_blocks"] > 0, "SACK blocks not drawn")
    check(summ["wscale"] is not None and summ["wscale"] > 0,
          "the window scale of the handshake was not found")
    # The cwnd panel shades what TCP_INFO said: recovery after fast
    # retransmits, loss after timeouts.
    check(bool(bc.get("recovery")) == (counters.get("tcp.fast_retransmit", 0) > 0),
          "recovery periods drawn: %d, fast retransmits: %d"
          % (len(bc.get("recovery", [])), counters.get("tcp.fast_retransmit", 0)))
    check(bool(bc.get("loss")) == (counters.get("tcp.retransmit_timeout", 0) > 0),
          "loss periods drawn: %d, timeouts: %d"
          % (len(bc.get("loss", [])), counters.get("tcp.retransmit_timeout", 0)))
    check(summ["bytes_new"] == 1000000, "tseq counts %d new bytes, 1000000 were sent"
          % summ["bytes_new"])
    if rows is not None:
        red = red_pixels(rows, facts["plot"])
        check(red >= n_svg, "only %d red pixels in the plot for %d retransmissions" % (red, n_svg))


# ---------------------------------------------------------------- 2: hand-made captures

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Builder:
    """Ethernet frames of one TCP connection, IPv4 or IPv6, with correct
    checksums, written as a nanosecond pcap."""

    def __init__(self, v6):
        self.v6 = v6
        self.c = ("2001:db8::1", 40000) if v6 else ("198.51.100.1", 40000)
        self.s = ("2001:db8::2", 443) if v6 else ("203.0.113.2", 443)
        self.frames = []

    def seg(self, t, frm, seq, ack, flags, win, payload=b"", opts=b""):
        import socket
        src, dst = (self.c, self.s) if frm == "c" else (self.s, self.c)
        while len(opts) % 4:
            opts += b"\x01"
        off = (20 + len(opts)) // 4
        tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                          off << 4, flags, win, 0, 0) + opts + payload
        fam = socket.AF_INET6 if self.v6 else socket.AF_INET
        sa, da = socket.inet_pton(fam, src[0]), socket.inet_pton(fam, dst[0])
        if self.v6:
            pseudo = sa + da + struct.pack("!IxxxB", len(tcp), 6)
        else:
            pseudo = sa + da + struct.pack("!xBH", 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
        if self.v6:
            ip = struct.pack("!IHBB", 6 << 28, len(tcp), 6, 64) + sa + da
            et = 0x86DD
        else:
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0) + sa + da
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            et = 0x0800
        eth = (b"\x02\0\0\0\0\x02" if frm == "c" else b"\x02\0\0\0\0\x01")
        eth += (b"\x02\0\0\0\0\x01" if frm == "c" else b"\x02\0\0\0\0\x02") + struct.pack("!H", et)
        self.frames.append((t, eth + ip + tcp))

    def write(self, path, skip=0):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
            for t, fr in self.frames[skip:]:
                ns = int(round(t * 1e9))
                f.write(struct.pack("<IIII", ns // 10**9, ns % 10**9, len(fr), len(fr)) + fr)


def sack_opt(blocks):
    return b"\x01\x01" + struct.pack("!BB", 5, 2 + 8 * len(blocks)) + b"".join(
        struct.pack("!II", a & 0xFFFFFFFF, b & 0xFFFFFFFF) for a, b in blocks)


ISN_C, ISN_S = 0xFFFFF000, 1000  # the client's sequence numbers wrap 4095 bytes in
MSS = 1000


def handmade(v6, lossy):
    """SYN (client offers window scale 2, the server 7), ten 1000-byte
    segments; when lossy the fourth is lost (it is still captured: this is
    the sender's link) and SACKed around, retransmitted after six duplicate
    ACKs, and the tenth is sent again needlessly and reported by a D-SACK.
    Then both FINs."""
    b = Builder(v6)
    d0 = ISN_C + 1
    b.seg(0.000, "c", ISN_C, 0, 0x02, 65535, opts=b"\x02\x04\x03\xe8\x04\x02\x01\x03\x03\x02")
    b.seg(0.010, "s", ISN_S, d0, 0x12, 65535, opts=b"\x02\x04\x03\xe8\x04\x02\x01\x03\x03\x07")
    b.seg(0.020, "c", d0, ISN_S + 1, 0x10, 16384)
    for i in range(10):
        b.seg(0.020 + 0.001 * i, "c", d0 + i * MSS, ISN_S + 1, 0x18, 16384, bytes(MSS))
    if lossy:
        b.seg(0.031, "s", ISN_S + 1, d0 + 3 * MSS, 0x10, 512)
        for j in range(4, 10):
            b.seg(0.031 + 0.001 * (j - 3), "s", ISN_S + 1, d0 + 3 * MSS, 0x10, 512,
                  opts=sack_opt([(d0 + 4 * MSS, d0 + (j + 1) * MSS)]))
        b.seg(0.040, "c", d0 + 3 * MSS, ISN_S + 1, 0x18, 16384, bytes(MSS))
        b.seg(0.045, "s", ISN_S + 1, d0 + 10 * MSS, 0x10, 600)
        b.seg(0.046, "c", d0 + 9 * MSS, ISN_S + 1, 0x18, 16384, bytes(MSS))
        b.seg(0.051, "s", ISN_S + 1, d0 + 10 * MSS, 0x10, 600,
              opts=sack_opt([(d0 + 9 * MSS, d0 + 10 * MSS)]))
    else:
        b.seg(0.031, "s", ISN_S + 1, d0 + 5 * MSS, 0x10, 512)
        b.seg(0.035, "s", ISN_S + 1, d0 + 10 * MSS, 0x10, 600)
    b.seg(0.060, "c", d0 + 10 * MSS, ISN_S + 1, 0x11, 16384)
    b.seg(0.070, "s", ISN_S + 1, d0 + 10 * MSS + 1, 0x11, 600)
    b.seg(0.080, "c", d0 + 10 * MSS + 1, ISN_S + 2, 0x10, 16384)
    return b


def handmade_cases(tseq, tmp):
    want = {"segments": 14, "new": 12, "retransmissions": 2, "bytes_new": 10000,
            "bytes_retransmitted": 2000, "seq_max": 10002, "ack_max": 10002,
            "window_max": 600 << 7, "wscale": 7, "acks": 11, "dupacks": 7,
            "sack_blocks": 6, "dsack_blocks": 1, "handshake": True}
    for v6 in (False, True):
        tag = "handmade " + ("IPv6" if v6 else "IPv4")
        pcap = os.path.join(tmp, "hand%d.pcap" % v6)
        handmade(v6, True).write(pcap)
        summ = json.loads(run([tseq, pcap, "-o", pcap[:-5] + ".svg", "--json"]))
        for k, v in want.items():
            check(summ.get(k) == v, "%s: %s is %r, want %r" % (tag, k, summ.get(k), v))
        facts = svg_facts(pcap[:-5] + ".svg")
        bc = facts["by_class"]
        check(len(bc.get("rexmit", [])) == 2 and len(bc.get("dsack", [])) == 1
              and len(bc.get("sack", [])) == 6, "%s: SVG elements wrong" % tag)
        check(sorted(s for _t, s, _e in facts["rexmits"]) == [3001, 9001],
              "%s: retransmissions drawn at %r" % (tag, facts["rexmits"]))
        if not v6:
            # tshark reads the same capture the same way.
            n = len(tshark_rexmits(pcap, "198.51.100.1", 40000))
            check(n == 2, "%s: tshark finds %d retransmissions, want 2" % (tag, n))
            # The same packets as pcapng.
            ng = os.path.join(tmp, "hand.pcapng")
            run(["editcap", "-F", "pcapng", pcap, ng])
            summ_ng = json.loads(run([tseq, ng, "-o", ng + ".svg", "--json"]))
            check(summ_ng == summ, "pcapng: %r differs from pcap: %r" % (summ_ng, summ))
            # Without its handshake the window scale must be given.
            cut = os.path.join(tmp, "hand_nosyn.pcap")
            handmade(False, True).write(cut, skip=3)
            s2 = json.loads(run([tseq, "-q", cut, "-o", cut + ".svg", "--json"]))
            check(not s2["handshake"] and s2["warnings"] and s2["window_max"] == 600,
                  "no handshake: %r" % s2)
            s3 = json.loads(run([tseq, "-q", cut, "-o", cut + ".svg", "--wscale", "7", "--json"]))
            check(s3["window_max"] == 600 << 7 and s3["retransmissions"] == 2,
                  "no handshake, --wscale 7: %r" % s3)
    # No loss: no retransmission anywhere, and no red in the plot of the
    # PNG, so the red counted in the simulator case is the marking.
    pcap = os.path.join(tmp, "clean.pcap")
    handmade(False, False).write(pcap)
    svg, png = pcap[:-5] + ".svg", pcap[:-5] + ".png"
    summ = json.loads(run([tseq, pcap, "-o", svg, "--png", png, "--json"]))
    check(summ["retransmissions"] == 0 and summ["new"] == 12, "clean: %r" % summ)
    facts, rows = check_images("clean", svg, png)
    if facts and rows is not None:
        check(red_pixels(rows, facts["plot"]) == 0, "clean: red pixels in a plot without loss")
        check(not facts["by_class"].get("rexmit"), "clean: retransmission elements")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    transfer, tseq, tmpdir = sys.argv[1:]
    for tool in ("tshark", "editcap", "rsvg-convert"):
        if not shutil.which(tool):
            print("FAIL: %s is not installed (scripts/setup.sh installs it)" % tool)
            return 1
    tmp = os.path.join(tmpdir, "tseq-%d" % os.getpid())
    os.makedirs(tmp, exist_ok=True)
    sim_case(transfer, tseq, tmp)
    handmade_cases(tseq, tmp)
    if failures:
        print("%d check(s) failed; files in %s" % (len(failures), tmp))
        return 1
    shutil.rmtree(tmp)
    print("tseq: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
