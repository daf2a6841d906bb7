//! `mcast-tool`: a multicast host built on the kernel's IPv4 stack, run inside a lab
//! host namespace. Joins go through IP_ADD_MEMBERSHIP, so the kernel's own IGMP
//! host code (at the version set by `force_igmp_version`) sends reports and leaves.
//!
//! ```text
//! mcast-tool recv --group G [--group G2 ...] --port P [--iface eth0]
//!                 [--duration SECS] [--ready-file F]
//! mcast-tool send --group G --port P [--iface eth0] [--count N] [--interval-ms M]
//!                 [--ttl T] [--tag TAG] [--size BYTES] [--loop]
//! mcast-tool ping --dst IP [--count N] [--timeout-ms M]
//! mcast-tool reports --group FIRST --src IP --count N --rate PPS [--iface eth0]
//! mcast-tool spoof --group G --port P --src S [--src S2 ...] [--count N]
//!                  [--interval-ms M] [--iface eth0]
//! mcast-tool igmp --dst D --src IP --hex BYTES [--ttl 1] [--no-router-alert]
//!                 [--mac MAC] [--iface eth0]
//! mcast-tool sniff --group G --port P --out FILE [--iface eth0]
//! ```
//!
//! `recv --include S` (repeatable) joins each group for those sources only
//! (MCAST_JOIN_SOURCE_GROUP: the kernel host is in INCLUDE mode);
//! `recv --exclude S` (repeatable) joins each group for any source, then
//! blocks those (MCAST_BLOCK_SOURCE: EXCLUDE mode). SIGUSR1 drops what was
//! joined (every source of an INCLUDE filter, or the group), SIGUSR2 joins
//! it again.
//!
//! `spoof` sends UDP datagrams from any source address (AF_PACKET, so the
//! host's own address does not matter), payload `MCT1 tag=SOURCE seq=N`.
//! `igmp` sends one IGMP message whose bytes are given as hex (checksum and
//! all), in an IPv4 packet to `--dst` (and its MAC), TTL 1 and Router Alert
//! unless told otherwise. `sniff` counts datagrams to G:P arriving on the
//! interface per IPv4 source (an AF_PACKET socket: before the kernel's own
//! source filters) and keeps `--out` holding `{"SOURCE": N, ...}` until
//! SIGTERM.
//!
//! `reports` sends N raw IGMPv2 membership reports (Router Alert, TTL 1) for the
//! distinct groups FIRST, FIRST+1, ... at a steady PPS (paced on the clock, not
//! in bursts: trafgen's rate option does not pace on this kernel), prints
//! `{"sent":N,"seconds":S,"pps":R}`.
//!
//! `ping` exists because this machine has no ping binary: raw-socket ICMP echo,
//! prints `{"sent":N,"received":M}` and exits 0 iff at least one reply came back.
//!
//! `recv` protocol:
//! - After every join has returned it writes `joined\n` to the ready file
//!   (atomically: temp file + rename).
//! - SIGUSR1: drop membership of every group (the kernel sends leaves), keep the
//!   socket open and keep counting; then writes `left\n` to the ready file.
//!   Datagrams that still arrive are also counted in `after_leave`.
//! - SIGUSR2: join every group again, then writes `joined\n`.
//! - SIGTERM / SIGINT / end of `--duration`: drop memberships, print one JSON line
//!   on stdout and exit 0:
//!   `{"received":{"239.1.1.1":N,...},"by_tag":{"239.1.1.1":{"TAG":N}},
//!     "after_leave":{"239.1.1.1":N},"left":bool,"total":N}`
//!   Keys are the destination address of each datagram (IP_PKTINFO), every
//!   requested group is present even with 0.
//!
//! The socket sets IP_MULTICAST_ALL=0 so it only sees groups it joined itself,
//! even if another socket in the namespace joined more.
//!
//! `send` payload is ASCII `MCT1 tag=TAG seq=N` padded with '.' to `--size`.
//! Multicast loopback is off unless `--loop`, so a receiver on the sending host
//! only counts what comes back through the network.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

#[path = "mcast/raw.rs"]
mod raw;

static STOP: AtomicBool = AtomicBool::new(false);
static LEAVE: AtomicBool = AtomicBool::new(false);
static REJOIN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Only atomics: async-signal-safe.
    match sig {
        libc::SIGUSR1 => LEAVE.store(true, Ordering::SeqCst),
        libc::SIGUSR2 => REJOIN.store(true, Ordering::SeqCst),
        _ => STOP.store(true, Ordering::SeqCst),
    }
}

fn install_signal_handlers() -> Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGUSR2] {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler only
        // touches atomics. No SA_RESTART so a blocked recvmsg returns EINTR.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            bail!("sigaction({sig}): {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

struct Args {
    dst: Option<Ipv4Addr>,
    /// Every `--src` in order (`reports` uses the first, `spoof` all).
    srcs: Vec<Ipv4Addr>,
    rate: f64,
    timeout: Duration,
    groups: Vec<Ipv4Addr>,
    port: u16,
    iface: String,
    duration: Option<Duration>,
    ready_file: Option<String>,
    count: u64,
    interval: Duration,
    /// IP TTL; default 4 for `send`, 1 for `igmp`.
    ttl: Option<u32>,
    tag: String,
    size: usize,
    mcast_loop: bool,
    /// `recv --include S`: source-specific joins of every group.
    include: Vec<Ipv4Addr>,
    /// `recv --exclude S`: any-source joins with these sources blocked.
    exclude: Vec<Ipv4Addr>,
    /// `igmp --hex`: the IGMP message, bytes as given.
    hex: Option<Vec<u8>>,
    /// `igmp --mac`: source MAC (default: the interface's).
    mac: Option<[u8; 6]>,
    /// `igmp --no-router-alert`.
    no_ra: bool,
    /// `sniff --out`: where the per-source counts go.
    out: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>, sub: &str) -> Result<Args> {
    let mut a = Args {
        dst: None,
        srcs: Vec::new(),
        rate: 1000.0,
        timeout: Duration::from_millis(1000),
        groups: Vec::new(),
        port: 0,
        iface: "eth0".into(),
        duration: None,
        ready_file: None,
        count: 1,
        interval: Duration::from_millis(1),
        ttl: None,
        tag: "mcast-tool".into(),
        size: 0,
        mcast_loop: false,
        include: Vec::new(),
        exclude: Vec::new(),
        hex: None,
        mac: None,
        no_ra: false,
        out: None,
    };
    while let Some(flag) = it.next() {
        if flag == "--loop" || flag == "--no-router-alert" {
            a.mcast_loop |= flag == "--loop";
            a.no_ra |= flag == "--no-router-alert";
            continue;
        }
        let val = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| anyhow!("{flag} {val}: {e}");
        match flag.as_str() {
            "--dst" => a.dst = Some(val.parse().map_err(|e| bad(&e))?),
            "--src" => a.srcs.push(val.parse().map_err(|e| bad(&e))?),
            "--include" => a.include.push(val.parse().map_err(|e| bad(&e))?),
            "--exclude" => a.exclude.push(val.parse().map_err(|e| bad(&e))?),
            "--hex" => a.hex = Some(raw::parse_hex(&val).map_err(|e| bad(&e))?),
            "--mac" => a.mac = Some(raw::parse_mac(&val).map_err(|e| bad(&e))?),
            "--out" => a.out = Some(val),
            "--rate" => a.rate = val.parse().map_err(|e| bad(&e))?,
            "--timeout-ms" => a.timeout = Duration::from_millis(val.parse().map_err(|e| bad(&e))?),
            "--group" => a.groups.push(val.parse().map_err(|e| bad(&e))?),
            "--port" => a.port = val.parse().map_err(|e| bad(&e))?,
            "--iface" => a.iface = val,
            "--duration" => {
                a.duration = Some(Duration::from_secs_f64(val.parse().map_err(|e| bad(&e))?))
            }
            "--ready-file" => a.ready_file = Some(val),
            "--count" => a.count = val.parse().map_err(|e| bad(&e))?,
            "--interval-ms" => {
                a.interval = Duration::from_millis(val.parse().map_err(|e| bad(&e))?)
            }
            "--ttl" => a.ttl = Some(val.parse().map_err(|e| bad(&e))?),
            "--tag" => a.tag = val,
            "--size" => a.size = val.parse().map_err(|e| bad(&e))?,
            _ => bail!("unknown option {flag}"),
        }
    }
    if sub == "ping" {
        if a.dst.is_none() {
            bail!("--dst is required");
        }
        return Ok(a);
    }
    if sub == "igmp" {
        if a.dst.is_none() || a.srcs.len() != 1 || a.hex.is_none() {
            bail!("--dst, one --src and --hex are required");
        }
        return Ok(a);
    }
    if !a.include.is_empty() && !a.exclude.is_empty() {
        bail!("--include and --exclude do not go together (one filter mode per socket)");
    }
    if sub == "sniff" && a.out.is_none() {
        bail!("--out is required");
    }
    if sub == "spoof" && a.srcs.is_empty() {
        bail!("--src is required");
    }
    if a.groups.is_empty() {
        bail!("--group is required");
    }
    if sub == "reports" {
        if a.srcs.is_empty() || a.rate.is_nan() || a.rate <= 0.0 {
            bail!("--src and a positive --rate are required");
        }
        return Ok(a);
    }
    if a.port == 0 {
        bail!("--port is required");
    }
    Ok(a)
}

fn os_err(what: &str) -> anyhow::Error {
    anyhow!("{what}: {}", std::io::Error::last_os_error())
}

fn ifindex(name: &str) -> Result<i32> {
    let c = CString::new(name)?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(os_err(&format!("interface {name}")));
    }
    Ok(idx as i32)
}

fn in_addr(a: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from(a).to_be(),
    }
}

/// An owned UDP socket fd, closed on drop.
struct Sock(i32);

impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: we own the fd and close it exactly once.
        unsafe { libc::close(self.0) };
    }
}

impl Sock {
    fn udp() -> Result<Sock> {
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(os_err("socket"));
        }
        Ok(Sock(fd))
    }

    fn setopt<T>(&self, level: i32, name: i32, val: &T, what: &str) -> Result<()> {
        // SAFETY: val points to a live T and we pass its exact size.
        let rc = unsafe {
            libc::setsockopt(
                self.0,
                level,
                name,
                val as *const T as *const libc::c_void,
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os_err(what));
        }
        Ok(())
    }

    fn membership(&self, group: Ipv4Addr, ifindex: i32, join: bool) -> Result<()> {
        let mreq = libc::ip_mreqn {
            imr_multiaddr: in_addr(group),
            imr_address: in_addr(Ipv4Addr::UNSPECIFIED),
            imr_ifindex: ifindex,
        };
        let (opt, what) = if join {
            (libc::IP_ADD_MEMBERSHIP, "IP_ADD_MEMBERSHIP")
        } else {
            (libc::IP_DROP_MEMBERSHIP, "IP_DROP_MEMBERSHIP")
        };
        self.setopt(libc::IPPROTO_IP, opt, &mreq, &format!("{what} {group}"))
    }

    /// RFC 3678 protocol-independent source filter calls
    /// (MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP, MCAST_BLOCK_SOURCE).
    fn source_op(&self, opt: i32, group: Ipv4Addr, source: Ipv4Addr, ifindex: i32) -> Result<()> {
        let storage = |a: Ipv4Addr| {
            // SAFETY: sockaddr_storage is plain data; zeroed is valid, and a
            // sockaddr_in fits in it (that is what it is for).
            unsafe {
                let mut ss: libc::sockaddr_storage = std::mem::zeroed();
                std::ptr::write(
                    &mut ss as *mut libc::sockaddr_storage as *mut libc::sockaddr_in,
                    sockaddr(a, 0),
                );
                ss
            }
        };
        let req = libc::group_source_req {
            gsr_interface: ifindex as u32,
            gsr_group: storage(group),
            gsr_source: storage(source),
        };
        let what = match opt {
            libc::MCAST_JOIN_SOURCE_GROUP => "MCAST_JOIN_SOURCE_GROUP",
            libc::MCAST_LEAVE_SOURCE_GROUP => "MCAST_LEAVE_SOURCE_GROUP",
            _ => "MCAST_BLOCK_SOURCE",
        };
        self.setopt(
            libc::IPPROTO_IP,
            opt,
            &req,
            &format!("{what} {group} {source}"),
        )
    }
}

/// The socket's filter for every group: INCLUDE `include` (source-specific
/// joins) when given, else EXCLUDE `exclude` (an any-source join, then
/// each source blocked; `exclude` empty is a plain join).
struct Filter<'a> {
    include: &'a [Ipv4Addr],
    exclude: &'a [Ipv4Addr],
}

impl Filter<'_> {
    fn join(&self, s: &Sock, groups: &[Ipv4Addr], idx: i32) -> Result<()> {
        for &g in groups {
            if self.include.is_empty() {
                s.membership(g, idx, true)?;
                for &src in self.exclude {
                    s.source_op(libc::MCAST_BLOCK_SOURCE, g, src, idx)?;
                }
            } else {
                for &src in self.include {
                    s.source_op(libc::MCAST_JOIN_SOURCE_GROUP, g, src, idx)?;
                }
            }
        }
        Ok(())
    }

    /// Drops what `join` did: every source of an INCLUDE filter (the
    /// last one leaves the group), or the group (its block list with it).
    fn leave(&self, s: &Sock, groups: &[Ipv4Addr], idx: i32) -> Result<()> {
        for &g in groups {
            if self.include.is_empty() {
                s.membership(g, idx, false)?;
            } else {
                for &src in self.include {
                    s.source_op(libc::MCAST_LEAVE_SOURCE_GROUP, g, src, idx)?;
                }
            }
        }
        Ok(())
    }
}

fn sockaddr(addr: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: in_addr(addr),
        sin_zero: [0; 8],
    }
}

fn write_ready(path: &Option<String>, state: &str) -> Result<()> {
    if let Some(p) = path {
        let tmp = format!("{p}.tmp");
        std::fs::write(&tmp, format!("{state}\n")).with_context(|| format!("write {tmp}"))?;
        std::fs::rename(&tmp, p).with_context(|| format!("rename {tmp} -> {p}"))?;
    }
    Ok(())
}

fn payload_tag(buf: &[u8]) -> String {
    let text = String::from_utf8_lossy(buf);
    let mut words = text.split(' ');
    if words.next() != Some("MCT1") {
        return "other".into();
    }
    words
        .find_map(|w| w.strip_prefix("tag="))
        .map(|t| t.trim_end_matches('.').to_string())
        .unwrap_or_else(|| "other".into())
}

fn recv(a: Args) -> Result<()> {
    install_signal_handlers()?;
    let idx = ifindex(&a.iface)?;
    let s = Sock::udp()?;
    let one: libc::c_int = 1;
    let zero: libc::c_int = 0;
    s.setopt(libc::SOL_SOCKET, libc::SO_REUSEADDR, &one, "SO_REUSEADDR")?;
    s.setopt(libc::IPPROTO_IP, libc::IP_PKTINFO, &one, "IP_PKTINFO")?;
    s.setopt(
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_ALL,
        &zero,
        "IP_MULTICAST_ALL",
    )?;
    let rcvbuf: libc::c_int = 4 << 20;
    s.setopt(libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf, "SO_RCVBUF")?;
    // Wake up regularly to notice --duration even when nothing arrives.
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    s.setopt(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv, "SO_RCVTIMEO")?;
    let sa = sockaddr(Ipv4Addr::UNSPECIFIED, a.port);
    // SAFETY: sa is a valid sockaddr_in and we pass its size.
    let rc = unsafe {
        libc::bind(
            s.0,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(os_err(&format!("bind port {}", a.port)));
    }
    let filter = Filter {
        include: &a.include,
        exclude: &a.exclude,
    };
    filter.join(&s, &a.groups, idx)?;
    let mut joined = true;
    write_ready(&a.ready_file, "joined")?;

    let mut received: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_tag: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut after_leave: BTreeMap<String, u64> = BTreeMap::new();
    for g in &a.groups {
        received.insert(g.to_string(), 0);
        after_leave.insert(g.to_string(), 0);
    }
    let mut left = false;
    let deadline = a.duration.map(|d| Instant::now() + d);
    let mut buf = vec![0u8; 65536];
    let mut cbuf = [0u64; 64];
    loop {
        if STOP.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if LEAVE.swap(false, Ordering::SeqCst) && joined {
            filter.leave(&s, &a.groups, idx)?;
            joined = false;
            left = true;
            write_ready(&a.ready_file, "left")?;
        }
        if REJOIN.swap(false, Ordering::SeqCst) && !joined {
            filter.join(&s, &a.groups, idx)?;
            joined = true;
            write_ready(&a.ready_file, "joined")?;
        }
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: zeroed msghdr is valid; we then point it at live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        // SAFETY: msg references buf and cbuf, both alive and sized as declared.
        let n = unsafe { libc::recvmsg(s.0, &mut msg, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
                _ => return Err(anyhow!("recvmsg: {e}")),
            }
        }
        let mut dst = None;
        // SAFETY: CMSG_* walk the control buffer the kernel just filled, bounded by
        // msg_controllen; IP_PKTINFO data is an in_pktinfo.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                    let pi =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in_pktinfo);
                    dst = Some(Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr)));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let key = dst.map_or_else(|| "unknown".to_string(), |d| d.to_string());
        let tag = payload_tag(&buf[..n as usize]);
        *received.entry(key.clone()).or_default() += 1;
        *by_tag
            .entry(key.clone())
            .or_default()
            .entry(tag)
            .or_default() += 1;
        if left {
            *after_leave.entry(key).or_default() += 1;
        }
    }
    if joined {
        // Best effort: the socket close would drop them anyway.
        let _ = filter.leave(&s, &a.groups, idx);
    }
    let total: u64 = received.values().sum();
    let out = serde_json::json!({
        "received": received,
        "by_tag": by_tag,
        "after_leave": after_leave,
        "left": left,
        "total": total,
    });
    println!("{out}");
    Ok(())
}

fn send(a: Args) -> Result<()> {
    let idx = ifindex(&a.iface)?;
    let s = Sock::udp()?;
    let mreq = libc::ip_mreqn {
        imr_multiaddr: in_addr(Ipv4Addr::UNSPECIFIED),
        imr_address: in_addr(Ipv4Addr::UNSPECIFIED),
        imr_ifindex: idx,
    };
    s.setopt(
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_IF,
        &mreq,
        "IP_MULTICAST_IF",
    )?;
    let ttl: libc::c_int = a.ttl.unwrap_or(4) as libc::c_int;
    s.setopt(
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_TTL,
        &ttl,
        "IP_MULTICAST_TTL",
    )?;
    let lp: libc::c_int = a.mcast_loop.into();
    s.setopt(
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_LOOP,
        &lp,
        "IP_MULTICAST_LOOP",
    )?;
    for g in &a.groups {
        let sa = sockaddr(*g, a.port);
        // Paced on the clock (datagram N leaves at start + N × interval), so
        // the rate holds however long each send and sleep take.
        let start = Instant::now();
        for seq in 0..a.count {
            let mut payload = format!("MCT1 tag={} seq={seq}", a.tag).into_bytes();
            if payload.len() < a.size {
                payload.resize(a.size, b'.');
            }
            // SAFETY: payload and sa are live for the call and sized as passed.
            let n = unsafe {
                libc::sendto(
                    s.0,
                    payload.as_ptr() as *const libc::c_void,
                    payload.len(),
                    0,
                    &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            if n < 0 {
                return Err(os_err(&format!("sendto {g}:{}", a.port)));
            }
            if !a.interval.is_zero() && seq + 1 < a.count {
                let due = start + a.interval * (seq as u32 + 1);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
    }
    Ok(())
}

fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ping(a: Args) -> Result<()> {
    let dst = a.dst.expect("checked in parse_args");
    // SAFETY: plain socket(2) call.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    if fd < 0 {
        return Err(os_err("raw ICMP socket"));
    }
    let s = Sock(fd);
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    s.setopt(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv, "SO_RCVTIMEO")?;
    let id = (std::process::id() & 0xffff) as u16;
    let sa = sockaddr(dst, 0);
    let mut got = 0u64;
    let mut buf = [0u8; 2048];
    for seq in 0..a.count as u16 {
        let mut pkt = vec![8u8, 0, 0, 0];
        pkt.extend_from_slice(&id.to_be_bytes());
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(b"igmpsnoop-lab-ping");
        let ck = inet_checksum(&pkt);
        pkt[2..4].copy_from_slice(&ck.to_be_bytes());
        // SAFETY: pkt and sa are live and sized as passed.
        let n = unsafe {
            libc::sendto(
                s.0,
                pkt.as_ptr() as *const libc::c_void,
                pkt.len(),
                0,
                &sa as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(os_err(&format!("sendto {dst}")));
        }
        let deadline = Instant::now() + a.timeout;
        while Instant::now() < deadline {
            // SAFETY: buf is live and its length is passed.
            let n = unsafe { libc::recv(s.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n <= 0 {
                continue;
            }
            // Raw sockets hand over the IP header too.
            let pkt = &buf[..n as usize];
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
            let icmp = &pkt[ihl.min(pkt.len())..];
            if src == dst
                && icmp.len() >= 8
                && icmp[0] == 0
                && icmp[4..6] == id.to_be_bytes()
                && icmp[6..8] == seq.to_be_bytes()
            {
                got += 1;
                break;
            }
        }
    }
    println!("{}", serde_json::json!({"sent": a.count, "received": got}));
    if got == 0 {
        bail!("no echo reply from {dst}");
    }
    Ok(())
}

/// One IGMPv2 report for `group` from `src`, as a 60-byte Ethernet frame.
fn v2_report(src_mac: [u8; 6], src: Ipv4Addr, group: Ipv4Addr, ident: u16) -> Vec<u8> {
    let g = group.octets();
    let mut f = vec![0x01, 0x00, 0x5e, g[1] & 0x7f, g[2], g[3]];
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x46, 0xc0, 0, 32];
    ip.extend_from_slice(&ident.to_be_bytes());
    ip.extend_from_slice(&[0x40, 0, 1, 2, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&g);
    ip.extend_from_slice(&[0x94, 0x04, 0, 0]); // Router Alert
    let ck = inet_checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    let mut igmp = vec![0x16, 0, 0, 0];
    igmp.extend_from_slice(&g);
    let ck = inet_checksum(&igmp);
    igmp[2..4].copy_from_slice(&ck.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&igmp);
    f.resize(60, 0);
    f
}

fn reports(a: Args) -> Result<()> {
    let idx = ifindex(&a.iface)?;
    let mac_text = std::fs::read_to_string(format!("/sys/class/net/{}/address", a.iface))
        .with_context(|| format!("MAC address of {}", a.iface))?;
    let mut mac = [0u8; 6];
    for (b, part) in mac.iter_mut().zip(mac_text.trim().split(':')) {
        *b = u8::from_str_radix(part, 16).context("MAC address")?;
    }
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err("AF_PACKET socket"));
    }
    let s = Sock(fd);
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_ifindex = idx;
    sll.sll_halen = 6;
    let src = a.srcs[0];
    let first = u32::from(a.groups[0]);
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let t0 = Instant::now();
    for i in 0..a.count {
        let due = t0 + period.mul_f64(i as f64);
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            if due - now > Duration::from_micros(300) {
                std::thread::sleep(due - now - Duration::from_micros(200));
            } else {
                std::hint::spin_loop();
            }
        }
        let group = Ipv4Addr::from(first.wrapping_add(i as u32));
        let frame = v2_report(mac, src, group, i as u16);
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        loop {
            // SAFETY: frame and sll are live and sized as passed.
            let n = unsafe {
                libc::sendto(
                    s.0,
                    frame.as_ptr() as *const libc::c_void,
                    frame.len(),
                    0,
                    &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                break;
            }
            // A full transmit queue: wait for it, never drop silently.
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOBUFS) {
                return Err(os_err("sendto"));
            }
            std::thread::yield_now();
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"sent": a.count, "seconds": secs, "pps": a.count as f64 / secs})
    );
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let sub = args.next().unwrap_or_default();
    let res = parse_args(args, &sub).and_then(|a| match sub.as_str() {
        "recv" => recv(a),
        "send" => send(a),
        "ping" => ping(a),
        "reports" => reports(a),
        "spoof" => raw::spoof(&a.iface, &a.groups, a.port, &a.srcs, a.count, a.interval),
        "igmp" => raw::igmp(&raw::IgmpOpts {
            iface: &a.iface,
            dst: a.dst.expect("checked in parse_args"),
            src: a.srcs[0],
            mac: a.mac,
            ttl: a.ttl.unwrap_or(1),
            router_alert: !a.no_ra,
            message: a.hex.as_deref().unwrap_or_default(),
        }),
        "sniff" => install_signal_handlers().and_then(|()| {
            raw::sniff(
                &a.iface,
                &a.groups,
                a.port,
                a.out.as_deref().unwrap_or_default(),
                &STOP,
            )
        }),
        _ => bail!("usage: mcast-tool recv|send --group G --port P [options] (see source header)"),
    });
    if let Err(e) = res {
        eprintln!("mcast-tool {sub}: {e:#}");
        std::process::exit(1);
    }
}
