#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (run inside lab host namespaces).

  bench.py data-cfg OUT                     trafgen config: one 60-byte UDP frame h1 -> 239.1.1.1:5001
  bench.py v3-send HOST N [PER [FIRST]]     send IGMPv3 reports (MODE_IS_EXCLUDE{}, PER records each)
                                            for N groups 235.0.0.0+FIRST+i out of eth0 (scapy, paced)
  bench.py join  N GROUP PORT               join latency: N x (the host's report on the wire -> the
                                            first datagram of GROUP on eth0)
  bench.py leave N GROUP PORT QUIET_S       leave latency: N x (the host's leave on the wire -> the
                                            last datagram of GROUP on eth0, none for QUIET_S after)
  bench.py bpf-mem PID                      the BPF maps process PID holds (its fds): bytes_memlock of
                                            the group maps (GROUPS, GROUPS6) and of all, as JSON
  bench.py data6-cfg OUT                    trafgen config: one 64-byte UDP frame fd77::1 -> ff0e::101:5001
  bench.py hold6 GROUP PORT READY           join IPv6 GROUP on eth0 (IPV6_JOIN_GROUP), touch READY, sleep
  bench.py join6 / leave6 ...               join and leave latency as above, for an IPv6 GROUP: the
                                            host's MLD report (ICMPv6 143, or 131/132) on the wire
Latency commands print one JSON line: {"samples_ms":[...], "syscall_ms":[...], "timeouts":K}.
Times are the kernel's packet timestamps (SO_TIMESTAMPNS) of an AF_PACKET socket on eth0, which
sees the host's outgoing reports and the incoming stream alike; syscall_ms is from the
IP_ADD/DROP_MEMBERSHIP (IPV6_JOIN/LEAVE_GROUP) call instead (it includes the host's own report delay).
"""
import json
import select
import socket
import struct
import sys
import time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ttl, options=b""):
    ihl = (20 + len(options)) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload), 0, 0x4000,
                    ttl, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)) + options
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def mcast_mac(g):
    o = socket.inet_aton(g)
    return bytes([1, 0, 0x5E, o[1] & 0x7F, o[2], o[3]])


H1_MAC = bytes([2, 0, 0, 0, 0, 1])


def eth(dst_mac, payload):
    f = dst_mac + H1_MAC + b"\x08\x00" + payload
    return f + b"\0" * max(0, 60 - len(f))


def cfg_line(frame):
    return "{ " + ", ".join("0x%02x" % x for x in frame) + " }\n"


def data_cfg(out):
    udp = struct.pack("!HHHH", 5001, 5001, 8 + 18, 0) + b"\0" * 18
    f = eth(mcast_mac("239.1.1.1"), ipv4("10.77.0.1", "239.1.1.1", 17, udp, 16))
    assert len(f) == 60
    open(out, "w").write(cfg_line(f))


H1_IP6 = "fd77::1"
GROUP6 = "ff0e::101"


def mcast_mac6(g):
    return b"\x33\x33" + socket.inet_pton(socket.AF_INET6, g)[12:]


def data6_cfg(out):
    src, dst = socket.inet_pton(socket.AF_INET6, H1_IP6), socket.inet_pton(socket.AF_INET6, GROUP6)
    payload = b"\0\0"
    udp = struct.pack("!HHHH", 5001, 5001, 8 + len(payload), 0) + payload
    # RFC 8200 §8.1: the UDP checksum is mandatory over IPv6 (pseudo-header first).
    ck = csum(src + dst + struct.pack("!I", len(udp)) + b"\0\0\0\x11" + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", ck) + udp[8:]
    ip6 = struct.pack("!IHBB", 6 << 28, len(udp), 17, 16) + src + dst
    f = mcast_mac6(GROUP6) + H1_MAC + b"\x86\xdd" + ip6 + udp
    assert len(f) == 64
    open(out, "w").write(cfg_line(f))


def hold6(group, port, ready):
    s = new_sock6(port)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6(group))
    open(ready, "w").close()
    while True:
        time.sleep(3600)


def v3_send(host, n, per, first=0):
    from scapy.all import conf  # noqa
    s = conf.L2socket(iface="eth0")
    src = "10.77.0.%d" % host
    mac = bytes([2, 0, 0, 0, 0, host])
    sent = 0
    for base in range(first, first + n, per):
        recs = b"".join(struct.pack("!BBH4s", 2, 0, 0, struct.pack("!I", (235 << 24) + i))
                        for i in range(base, min(first + n, base + per)))
        ig = struct.pack("!BBHHH", 0x22, 0, 0, 0, (len(recs) // 8)) + recs
        ig = ig[:2] + struct.pack("!H", csum(ig)) + ig[4:]
        ip = ipv4(src, "224.0.0.22", 2, ig, 1, b"\x94\x04\x00\x00")
        s.send(mcast_mac("224.0.0.22") + mac + b"\x08\x00" + ip)
        sent += 1
        if sent % 20 == 0:
            time.sleep(0.004)  # stay far below the veth backlog (netdev_max_backlog)
    s.close()
    print(json.dumps({"reports": sent, "groups": n}))


ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4


class Wire:
    """An AF_PACKET socket on eth0 with kernel timestamps: the host's IGMP
    reports going out and GROUP's datagrams coming in."""

    def __init__(self, group):
        self.group = socket.inet_aton(group)
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.s.bind(("eth0", 0))

    def next(self, timeout):
        """(kind, t) of the next interesting frame within `timeout` s, or None: kind is
        'data' (GROUP in), 'join' or 'leave' (our report for GROUP out)."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                return None
            data, anc, _, addr = self.s.recvmsg(2048, socket.CMSG_SPACE(16))
            t = None
            for level, typ, val in anc:
                if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", val[:16])
                    t = sec + nsec * 1e-9
            kind = self.classify(data, addr[2] == PACKET_OUTGOING)
            if kind and t is not None:
                return kind, t

    def classify(self, f, outgoing):
        if len(f) < 34 or f[12:14] != b"\x08\x00":
            return None
        ihl = (f[14] & 0x0F) * 4
        proto, dst = f[23], f[30:34]
        if proto == 17 and not outgoing and dst == self.group:
            return "data"
        if proto != 2 or not outgoing:
            return None
        ig = f[14 + ihl:]
        if len(ig) < 8:
            return None
        if ig[0] in (0x12, 0x16) and ig[4:8] == self.group:
            return "join"
        if ig[0] == 0x17 and ig[4:8] == self.group:
            return "leave"
        if ig[0] == 0x22:  # v3: the record for GROUP says which
            n, off = struct.unpack("!H", ig[6:8])[0], 8
            for _ in range(n):
                if len(ig) < off + 8:
                    break
                rtype, aux, nsrc = ig[off], ig[off + 1], struct.unpack("!H", ig[off + 2:off + 4])[0]
                if ig[off + 4:off + 8] == self.group:
                    # TO_EX / IS_EX: joined; TO_IN / IS_IN with no sources: left.
                    if rtype in (2, 4):
                        return "join"
                    if rtype in (1, 3) and nsrc == 0:
                        return "leave"
                off += 8 + 4 * nsrc + 4 * aux
        return None

    def quiet(self, quiet, limit):
        """Until no datagram of GROUP for `quiet` s (at most `limit` s); returns the
        timestamp of the last one seen (or None) and whether it went quiet."""
        last, end = None, time.monotonic() + limit
        while time.monotonic() < end:
            ev = self.next(quiet)
            if ev is None:
                return last, True
            if ev[0] == "data":
                last = ev[1]
        return last, False


class Wire6(Wire):
    """Wire for an IPv6 GROUP: the host's MLD reports going out (behind their
    Hop-by-Hop header) and GROUP's datagrams coming in."""

    def __init__(self, group):
        super().__init__("0.0.0.0")
        self.group = socket.inet_pton(socket.AF_INET6, group)

    def classify(self, f, outgoing):
        if len(f) < 54 or f[12:14] != b"\x86\xdd":
            return None
        nh, dst, at = f[20], f[38:54], 54
        if nh == 17 and not outgoing and dst == self.group:
            return "data"
        if not outgoing:
            return None
        while nh in (0, 60) and len(f) >= at + 2:  # Hop-by-Hop, Destination Options
            nh, at = f[at], at + (f[at + 1] + 1) * 8
        m = f[at:]
        if nh != 58 or len(m) < 8:
            return None
        if m[0] in (131, 132) and m[8:24] == self.group:  # MLDv1 report, done
            return "join" if m[0] == 131 else "leave"
        if m[0] == 143:  # MLDv2: the record for GROUP says which (RFC 3810 §5.2.12)
            n, off = struct.unpack("!H", m[6:8])[0], 8
            for _ in range(n):
                if len(m) < off + 20:
                    break
                rtype, aux, nsrc = m[off], m[off + 1], struct.unpack("!H", m[off + 2:off + 4])[0]
                if m[off + 4:off + 20] == self.group:
                    if rtype in (2, 4):
                        return "join"
                    if rtype in (1, 3) and nsrc == 0:
                        return "leave"
                off += 20 + 16 * nsrc + 4 * aux
        return None


def mreq6(group):
    return socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", socket.if_nametoindex("eth0"))


def new_sock6(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    return s


class V4:
    wire, sock, level = Wire, staticmethod(lambda p: new_sock(p)), socket.IPPROTO_IP
    add, drop = socket.IP_ADD_MEMBERSHIP, socket.IP_DROP_MEMBERSHIP
    mreq = staticmethod(lambda g: mreq(g))


class V6:
    wire, sock, level = Wire6, staticmethod(lambda p: new_sock6(p)), socket.IPPROTO_IPV6
    add, drop = socket.IPV6_JOIN_GROUP, socket.IPV6_LEAVE_GROUP
    mreq = staticmethod(lambda g: mreq6(g))


def mreq(group):
    return struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0"))


def new_sock(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IP, 49, 0)  # IP_MULTICAST_ALL off
    s.bind(("", port))
    return s


def out(samples, syscall, timeouts):
    print(json.dumps({"samples_ms": samples, "syscall_ms": syscall, "timeouts": timeouts}))


def join(n, group, port, fam=V4):
    w = fam.wire(group)
    samples, syscall, timeouts = [], [], 0
    for _ in range(n):
        w.quiet(0.03, 3)  # not a member any more: the stream has stopped here
        s = fam.sock(port)
        t_call = time.time()
        s.setsockopt(fam.level, fam.add, fam.mreq(group))
        t_join = t_data = None
        end = time.monotonic() + 2
        while t_data is None and time.monotonic() < end:
            ev = w.next(end - time.monotonic())
            if ev is None:
                break
            if ev[0] == "join" and t_join is None:
                t_join = ev[1]
            elif ev[0] == "data" and t_join is not None:
                t_data = ev[1]
        if t_data is None:
            timeouts += 1
        else:
            samples.append((t_data - t_join) * 1e3)
            syscall.append((t_data - t_call) * 1e3)
        s.setsockopt(fam.level, fam.drop, fam.mreq(group))
        s.close()
    out(samples, syscall, timeouts)


def leave(n, group, port, quiet, fam=V4):
    w = fam.wire(group)
    samples, syscall, timeouts = [], [], 0
    for _ in range(n):
        w.quiet(0.03, 3)
        s = fam.sock(port)
        s.setsockopt(fam.level, fam.add, fam.mreq(group))
        ev, end = None, time.monotonic() + 3
        while time.monotonic() < end:
            ev = w.next(end - time.monotonic())
            if ev is None or ev[0] == "data":
                break
        if ev is None:
            timeouts += 1
            s.close()
            continue
        w.quiet(10, 0.05)  # a steady member for a moment
        t_call = time.time()
        s.setsockopt(fam.level, fam.drop, fam.mreq(group))
        t_leave, last, end = None, None, time.monotonic() + 10
        while time.monotonic() < end:
            ev = w.next(quiet)
            if ev is None:
                break
            if ev[0] == "leave" and t_leave is None:
                t_leave = ev[1]
            elif ev[0] == "data":
                last = ev[1]
        s.close()
        if ev is not None or t_leave is None or last is None:
            timeouts += 1
        else:
            samples.append(max(0.0, last - t_leave) * 1e3)
            syscall.append(max(0.0, last - t_call) * 1e3)
    out(samples, syscall, timeouts)


GROUP_MAPS = ("GROUPS", "GROUPS6")


def bpf_mem(pid):
    """The kernel's memory (bytes_memlock, which for a hash without prealloc is its bucket
    array plus its entries) of the maps PID holds open: the daemon's maps only, whatever
    else runs on the box. Inner maps held only by an outer map are not counted."""
    import glob
    import subprocess
    ids = set()
    for f in glob.glob("/proc/%d/fdinfo/*" % pid):
        try:
            for line in open(f):
                if line.startswith("map_id:"):
                    ids.add(int(line.split()[1]))
        except OSError:
            pass
    maps = [m for m in json.loads(subprocess.check_output(["bpftool", "map", "show", "--json"]))
            if m["id"] in ids]
    groups = [m for m in maps if m.get("name") in GROUP_MAPS]
    print(json.dumps({"maps": len(maps), "all_bytes": sum(m.get("bytes_memlock", 0) for m in maps),
                      "group_bytes": sum(m.get("bytes_memlock", 0) for m in groups),
                      "group_max_entries": max((m["max_entries"] for m in groups), default=0)}))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "data-cfg":
        data_cfg(a[1])
    elif a[0] == "bpf-mem":
        bpf_mem(int(a[1]))
    elif a[0] == "v3-send":
        v3_send(int(a[1]), int(a[2]), int(a[3]) if len(a) > 3 else 100, int(a[4]) if len(a) > 4 else 0)
    elif a[0] == "join":
        join(int(a[1]), a[2], int(a[3]))
    elif a[0] == "leave":
        leave(int(a[1]), a[2], int(a[3]), float(a[4]))
    elif a[0] == "data6-cfg":
        data6_cfg(a[1])
    elif a[0] == "hold6":
        hold6(a[1], int(a[2]), a[3])
    elif a[0] == "join6":
        join(int(a[1]), a[2], int(a[3]), V6)
    elif a[0] == "leave6":
        leave(int(a[1]), a[2], int(a[3]), float(a[4]), V6)
    else:
        sys.exit(__doc__)
