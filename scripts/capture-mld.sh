#!/usr/bin/env bash
# Capture real kernel MLD frames (the test vectors of control/tests/mld_captured.rs
# and the fuzz corpus): a kernel host in one netns (MAC 02:00:00:00:00:0a) and a
# Linux bridge querier in another, joined by a veth pair; tcpdump on the bridge's
# port. The host joins and leaves with the socket API (IPV6_JOIN_GROUP,
# MCAST_JOIN_SOURCE_GROUP) at MLDv2 (the default) and at MLDv1
# (force_mld_version=1); the bridge sends MLDv2 then MLDv1 general queries.
#   scripts/capture-mld.sh OUT.pcap
set -euo pipefail
out=${1:?usage: capture-mld.sh OUT.pcap}
h=mldcap-h-$$ s=mldcap-s-$$
cleanup() { ip netns del "$h" 2>/dev/null || true; ip netns del "$s" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$h"; ip netns add "$s"
ip link add eth0 netns "$h" address 02:00:00:00:00:0a type veth peer name p1 netns "$s" address 02:00:00:00:00:01
for ns in "$h" "$s"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.accept_dad=0
done
ip netns exec "$h" sysctl -qw net.ipv6.conf.eth0.accept_dad=0
ip netns exec "$s" ip link add br0 address 02:00:00:00:00:02 type bridge mcast_snooping 1 mcast_querier 0
ip netns exec "$s" ip link set p1 master br0
ip netns exec "$s" ip link set p1 up
ip netns exec "$s" ip link set br0 up
ip netns exec "$s" tcpdump -i p1 -w "$out" -U ip6 2>/dev/null &
dump=$!
sleep 1
ip netns exec "$h" ip link set eth0 up
sleep 2
join=$(cat <<'PY'
import socket, struct, sys, time
IF = socket.if_nametoindex("eth0")
MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP = 46, 47
def ss(addr):
    # struct sockaddr_in6 in a 128-byte sockaddr_storage
    b = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, addr), 0)
    return b + bytes(128 - len(b))
def gsr(group, source):
    return struct.pack("=I4x", IF) + ss(group) + ss(source)
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
asm = socket.inet_pton(socket.AF_INET6, "ff3e::1:1") + struct.pack("=I", IF)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, asm); time.sleep(1.5)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_LEAVE_GROUP, asm); time.sleep(1.5)
if sys.argv[1] == "2":
    s.setsockopt(socket.IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP, gsr("ff3e::2:2", "2001:db8::1")); time.sleep(1.5)
    s.setsockopt(socket.IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP, gsr("ff3e::2:2", "2001:db8::2")); time.sleep(1.5)
    s.setsockopt(socket.IPPROTO_IPV6, MCAST_LEAVE_SOURCE_GROUP, gsr("ff3e::2:2", "2001:db8::1")); time.sleep(1.5)
    s.setsockopt(socket.IPPROTO_IPV6, MCAST_LEAVE_SOURCE_GROUP, gsr("ff3e::2:2", "2001:db8::2")); time.sleep(1.5)
PY
)
ip netns exec "$h" python3 -c "$join" 2
# A querier: the bridge (MLDv2, then MLDv1) queries its port.
ip netns exec "$s" ip link set br0 type bridge mcast_mld_version 2 mcast_querier 1
sleep 2
ip netns exec "$s" ip link set br0 type bridge mcast_querier 0
ip netns exec "$h" sysctl -qw net.ipv6.conf.eth0.force_mld_version=1
ip netns exec "$h" python3 -c "$join" 1
ip netns exec "$s" ip link set br0 type bridge mcast_mld_version 1 mcast_querier 1
sleep 2
kill "$dump"; wait "$dump" 2>/dev/null || true
