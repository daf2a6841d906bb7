//! `recv`: a kernel-stack receiver (IPv4 or IPv6) with the signal protocol
//! described in the binary's header.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use socket2::{Domain, Socket, Type};

use super::RecvArgs;
use super::net::{ifindex, one_family, recv_with_dst, setsockopt, source_op};

pub static STOP: AtomicBool = AtomicBool::new(false);
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

pub fn install_signal_handlers() -> Result<()> {
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

/// The socket's filter for every group: INCLUDE `include` (source-specific
/// joins) when given, else EXCLUDE `exclude` (an any-source join, then
/// each source blocked; `exclude` empty is a plain join).
struct Filter<'a> {
    include: &'a [IpAddr],
    exclude: &'a [IpAddr],
}

fn membership(s: &Socket, group: IpAddr, idx: u32, join: bool) -> Result<()> {
    let r = match (group, join) {
        (IpAddr::V4(g), true) => {
            s.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(idx))
        }
        (IpAddr::V4(g), false) => {
            s.leave_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(idx))
        }
        (IpAddr::V6(g), true) => s.join_multicast_v6(&g, idx),
        (IpAddr::V6(g), false) => s.leave_multicast_v6(&g, idx),
    };
    let what = if join { "join" } else { "leave" };
    r.with_context(|| format!("{what} {group}"))
}

impl Filter<'_> {
    fn join(&self, s: &Socket, groups: &[IpAddr], idx: u32) -> Result<()> {
        for &g in groups {
            if self.include.is_empty() {
                membership(s, g, idx, true)?;
                for &src in self.exclude {
                    source_op(s, libc::MCAST_BLOCK_SOURCE, g, src, idx)?;
                }
            } else {
                for &src in self.include {
                    source_op(s, libc::MCAST_JOIN_SOURCE_GROUP, g, src, idx)?;
                }
            }
        }
        Ok(())
    }

    /// Drops what `join` did: every source of an INCLUDE filter (the
    /// last one leaves the group), or the group (its block list with it).
    fn leave(&self, s: &Socket, groups: &[IpAddr], idx: u32) -> Result<()> {
        for &g in groups {
            if self.include.is_empty() {
                membership(s, g, idx, false)?;
            } else {
                for &src in self.include {
                    source_op(s, libc::MCAST_LEAVE_SOURCE_GROUP, g, src, idx)?;
                }
            }
        }
        Ok(())
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

pub fn payload_tag(buf: &[u8]) -> String {
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

/// A UDP socket of the groups' family bound to the wildcard address on
/// `port`, reporting each datagram's destination, seeing only the groups
/// it joined itself (IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off).
fn open(v4: bool, port: u16) -> Result<Socket> {
    let one: libc::c_int = 1;
    let s = if v4 {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        setsockopt(&s, libc::IPPROTO_IP, libc::IP_PKTINFO, &one, "IP_PKTINFO")?;
        s.set_multicast_all_v4(false)?;
        s
    } else {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
        s.set_only_v6(true)?;
        setsockopt(
            &s,
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVPKTINFO,
            &one,
            "IPV6_RECVPKTINFO",
        )?;
        s.set_multicast_all_v6(false)?;
        s
    };
    s.set_reuse_address(true)?;
    s.set_recv_buffer_size(4 << 20)?;
    // SO_RCVBUF is capped at net.core.rmem_max (~208 KiB: a few hundred
    // datagrams); as root, force the full size, so that a receiver starved
    // of CPU for a moment (two daemons' program verification on a 2-core
    // box) does not drop datagrams the switch delivered and a test counts
    // them as the switch's loss. Best effort: without CAP_NET_ADMIN it fails.
    let size: libc::c_int = 4 << 20;
    let _ = setsockopt(
        &s,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        &size,
        "SO_RCVBUFFORCE",
    );
    // Wake up regularly to notice --duration and signals even when nothing arrives.
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    let any: IpAddr = if v4 {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    s.bind(&SocketAddr::new(any, port).into())
        .with_context(|| format!("bind port {port}"))?;
    Ok(s)
}

#[derive(Default)]
struct Counts {
    received: BTreeMap<String, u64>,
    by_tag: BTreeMap<String, BTreeMap<String, u64>>,
    after_leave: BTreeMap<String, u64>,
}

pub fn recv(a: RecvArgs) -> Result<()> {
    let v4 = one_family("--group", &a.group)?;
    if one_family("sources", a.include.iter().chain(&a.exclude)).is_ok_and(|f| f != v4) {
        bail!("sources of another family than the groups");
    }
    install_signal_handlers()?;
    let idx = ifindex(&a.iface)?;
    let s = open(v4, a.port)?;
    let filter = Filter {
        include: &a.include,
        exclude: &a.exclude,
    };
    filter.join(&s, &a.group, idx)?;
    let mut joined = true;
    write_ready(&a.ready_file, "joined")?;

    let mut c = Counts::default();
    for g in &a.group {
        c.received.insert(g.to_string(), 0);
        c.after_leave.insert(g.to_string(), 0);
    }
    let mut left = false;
    let deadline = a
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    let mut buf = vec![0u8; 65536];
    loop {
        if STOP.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if LEAVE.swap(false, Ordering::SeqCst) && joined {
            filter.leave(&s, &a.group, idx)?;
            joined = false;
            left = true;
            write_ready(&a.ready_file, "left")?;
        }
        if REJOIN.swap(false, Ordering::SeqCst) && !joined {
            filter.join(&s, &a.group, idx)?;
            joined = true;
            write_ready(&a.ready_file, "joined")?;
        }
        let (n, dst) = match recv_with_dst(&s, &mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) =>
            {
                continue;
            }
            Err(e) => bail!("recvmsg: {e}"),
        };
        let key = dst.map_or_else(|| "unknown".to_string(), |d| d.to_string());
        let tag = payload_tag(&buf[..n]);
        *c.received.entry(key.clone()).or_default() += 1;
        *c.by_tag
            .entry(key.clone())
            .or_default()
            .entry(tag)
            .or_default() += 1;
        if left {
            *c.after_leave.entry(key).or_default() += 1;
        }
    }
    if joined {
        // Best effort: the socket close would drop them anyway.
        let _ = filter.leave(&s, &a.group, idx);
    }
    let total: u64 = c.received.values().sum();
    let out = serde_json::json!({
        "received": c.received,
        "by_tag": c.by_tag,
        "after_leave": c.after_leave,
        "left": left,
        "total": total,
    });
    println!("{out}");
    Ok(())
}
