#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (run inside lab host namespaces).

  bench.py data-cfg OUT                     trafgen config: one 60-byte UDP frame h1 -> 239.1.1.1:5001
  bench.py v2-cfg OUT FIRST COUNT           trafgen config: COUNT IGMPv2 reports (h1), distinct groups
                                            236.(FIRST+i) counting from FIRST, Router Alert, 60 bytes
  bench.py v3-send HOST N [PER]             send IGMPv3 reports (MODE_IS_EXCLUDE{}, PER records each)
                                            for N groups 235.0.0.0+i out of eth0 (scapy, paced)
  bench.py join  N GROUP PORT               join latency: N x (IP_ADD_MEMBERSHIP -> first datagram)
  bench.py leave N GROUP PORT QUIET_S       leave latency: N x (IP_DROP_MEMBERSHIP -> last frame on eth0)
Latency commands print one JSON line: {"samples_ms":[...], "timeouts":K}.
"""
import json
import socket
import struct
import sys
import time

RX = "/sys/class/net/eth0/statistics/rx_packets"


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


def v2_cfg(out, first, count):
    with open(out, "w") as fh:
        for i in range(first, first + count):
            g = socket.inet_ntoa(struct.pack("!I", (236 << 24) + i))
            ig = struct.pack("!BBH4s", 0x16, 0, 0, socket.inet_aton(g))
            ig = ig[:2] + struct.pack("!H", csum(ig)) + ig[4:]
            fh.write(cfg_line(eth(mcast_mac(g), ipv4("10.77.0.1", g, 2, ig, 1, b"\x94\x04\x00\x00"))))


def v3_send(host, n, per):
    from scapy.all import conf  # noqa
    s = conf.L2socket(iface="eth0")
    src = "10.77.0.%d" % host
    mac = bytes([2, 0, 0, 0, 0, host])
    sent = 0
    for base in range(0, n, per):
        recs = b"".join(struct.pack("!BBH4s", 2, 0, 0, struct.pack("!I", (235 << 24) + i))
                        for i in range(base, min(n, base + per)))
        ig = struct.pack("!BBHHH", 0x22, 0, 0, 0, (len(recs) // 8)) + recs
        ig = ig[:2] + struct.pack("!H", csum(ig)) + ig[4:]
        ip = ipv4(src, "224.0.0.22", 2, ig, 1, b"\x94\x04\x00\x00")
        s.send(mcast_mac("224.0.0.22") + mac + b"\x08\x00" + ip)
        sent += 1
        if sent % 20 == 0:
            time.sleep(0.004)  # stay far below the veth backlog (netdev_max_backlog)
    s.close()
    print(json.dumps({"reports": sent, "groups": n}))


def rx():
    with open(RX) as f:
        return int(f.read())


def wait_quiet(quiet, limit):
    """Until rx_packets has not moved for `quiet` s (bounded by `limit` s); returns the
    monotonic time of the last change seen."""
    t_end = time.monotonic() + limit
    last_v, last_t = rx(), time.monotonic()
    while time.monotonic() < t_end:
        time.sleep(0.0005)
        v = rx()
        now = time.monotonic()
        if v != last_v:
            last_v, last_t = v, now
        elif now - last_t >= quiet:
            return last_t, True
    return last_t, False


def mreq(group):
    return struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0"))


def new_sock(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IP, 49, 0)  # IP_MULTICAST_ALL off
    s.bind(("", port))
    return s


def join(n, group, port):
    out, timeouts = [], 0
    for _ in range(n):
        wait_quiet(0.03, 3)  # not a member any more: the stream has stopped here
        s = new_sock(port)
        s.settimeout(2.0)
        t0 = time.monotonic()
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq(group))
        try:
            s.recv(2048)
            out.append((time.monotonic() - t0) * 1e3)
        except socket.timeout:
            timeouts += 1
        s.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, mreq(group))
        s.close()
    print(json.dumps({"samples_ms": out, "timeouts": timeouts}))


def leave(n, group, port, quiet):
    out, timeouts = [], 0
    for _ in range(n):
        wait_quiet(0.03, 3)
        s = new_sock(port)
        s.settimeout(2.0)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq(group))
        try:
            s.recv(2048)
        except socket.timeout:
            timeouts += 1
            s.close()
            continue
        time.sleep(0.2)
        t0 = time.monotonic()
        s.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, mreq(group))
        last, ok = wait_quiet(quiet, 10)
        s.close()
        if ok:
            out.append((last - t0) * 1e3)
        else:
            timeouts += 1
    print(json.dumps({"samples_ms": out, "timeouts": timeouts}))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "data-cfg":
        data_cfg(a[1])
    elif a[0] == "v2-cfg":
        v2_cfg(a[1], int(a[2]), int(a[3]))
    elif a[0] == "v3-send":
        v3_send(int(a[1]), int(a[2]), int(a[3]) if len(a) > 3 else 100)
    elif a[0] == "join":
        join(int(a[1]), a[2], int(a[3]))
    elif a[0] == "leave":
        leave(int(a[1]), a[2], int(a[3]), float(a[4]))
    else:
        sys.exit(__doc__)
