//! Network interfaces: names, indexes, queue counts, MAC addresses, link state.
//!
//! Everything is asked of the kernel through a socket's ioctls, never read
//! from /sys: sysfs shows the network namespace of whoever mounted it, which
//! is not ours when the daemon runs under `nsenter --net` (or on a thread that
//! entered a namespace). A socket always belongs to the caller's namespace.
use std::{ffi::CString, os::fd::AsRawFd as _};

use crate::error::{Error, Result};

/// The kernel's index for `name`, or an error naming it.
pub fn ifindex(name: &str) -> Result<u32> {
    let no_such = || Error::NoSuchInterface {
        name: name.to_string(),
    };
    let c_name = CString::new(name).map_err(|_| no_such())?;
    // SAFETY: c_name is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        Err(no_such())
    } else {
        Ok(index)
    }
}

/// A datagram socket to hang interface ioctls on, closed on drop.
fn control_socket() -> Option<std::os::fd::OwnedFd> {
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// An `ifreq` naming `name`, or None when the name does not fit.
fn ifreq(name: &str) -> Option<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return None;
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Some(req)
}

/// Runs one interface ioctl; the answer is in `req`.
fn ioctl(request: libc::Ioctl, req: &mut libc::ifreq) -> bool {
    let Some(sock) = control_socket() else {
        return false;
    };
    // SAFETY: `req` is a valid ifreq for the duration of the call and every
    // request used here reads or writes an ifreq (or, for SIOCETHTOOL, the
    // buffer its ifr_data points at, which the caller keeps alive).
    unsafe { libc::ioctl(sock.as_raw_fd(), request, req as *mut libc::ifreq) == 0 }
}

/// struct ethtool_channels (linux/ethtool.h).
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// Number of RX queues (ETHTOOL_GCHANNELS: rx + combined), 1 when the driver
/// does not say.
pub fn rx_queues(name: &str) -> u32 {
    let Some(mut req) = ifreq(name) else {
        return 1;
    };
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    req.ifr_ifru.ifru_data = (&mut channels as *mut EthtoolChannels).cast();
    if !ioctl(libc::SIOCETHTOOL, &mut req) {
        return 1;
    }
    (channels.rx_count + channels.combined_count).clamp(1, igmpsnoop_common::MAX_QUEUES)
}

/// struct ethtool_drvinfo (linux/ethtool.h).
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}
const ETHTOOL_GDRVINFO: u32 = 0x03;

/// The interface's driver ("veth", "mlx5_core", ...), if it says.
pub fn driver(name: &str) -> Option<String> {
    let mut req = ifreq(name)?;
    // SAFETY: plain data; all zeroes is a valid value.
    let mut info: EthtoolDrvinfo = unsafe { std::mem::zeroed() };
    info.cmd = ETHTOOL_GDRVINFO;
    req.ifr_ifru.ifru_data = (&mut info as *mut EthtoolDrvinfo).cast();
    if !ioctl(libc::SIOCETHTOOL, &mut req) {
        return None;
    }
    let end = info.driver.iter().position(|b| *b == 0).unwrap_or(32);
    Some(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}

/// struct ethtool_value (linux/ethtool.h).
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}
const ETHTOOL_GFLAGS: u32 = 0x25;
const ETHTOOL_SFLAGS: u32 = 0x26;
/// ETH_FLAG_TXVLAN: NETIF_F_HW_VLAN_CTAG_TX, "tx-vlan-hw-insert" (what
/// `ethtool -K IFACE txvlan off` clears).
const ETH_FLAG_TXVLAN: u32 = 1 << 7;

/// Runs one ETHTOOL_GFLAGS or ETHTOOL_SFLAGS request.
fn ethtool_flags(name: &str, cmd: u32, data: u32) -> Option<u32> {
    let mut req = ifreq(name)?;
    let mut value = EthtoolValue { cmd, data };
    req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    ioctl(libc::SIOCETHTOOL, &mut req).then_some(value.data)
}

/// Turns the interface's TX VLAN offload ("tx-vlan-hw-insert") off, so
/// that an skb whose 802.1Q tag is in its metadata leaves with the tag in
/// its bytes (the kernel inserts it, validate_xmit_vlan) instead of
/// handing it on as metadata: across a veth a tag in metadata is invisible
/// to the XDP program on the other end. Ok(true): it was on and is off
/// now; Ok(false): it was off already; Err: the device would not say or
/// refused (the legacy flags ioctl: the few lines the `ethtool -K`
/// fallback uses, without a netlink dependency).
pub fn tx_vlan_offload_off(name: &str) -> std::result::Result<bool, String> {
    let flags = ethtool_flags(name, ETHTOOL_GFLAGS, 0)
        .ok_or_else(|| format!("ETHTOOL_GFLAGS: {}", std::io::Error::last_os_error()))?;
    if flags & ETH_FLAG_TXVLAN == 0 {
        return Ok(false);
    }
    ethtool_flags(name, ETHTOOL_SFLAGS, flags & !ETH_FLAG_TXVLAN)
        .map(|_| true)
        .ok_or_else(|| format!("ETHTOOL_SFLAGS: {}", std::io::Error::last_os_error()))
}

/// Frames the kernel dropped on their way out of the interface
/// (tx_dropped: a generic-mode XDP redirect or a transmit the device
/// refused), or None when the interface is unknown.
pub fn tx_dropped(name: &str) -> Option<u64> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_data.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a valid sockaddr and NUL-terminated name from getifaddrs.
        let (family, ifname) = unsafe {
            (
                i32::from((*ifa.ifa_addr).sa_family),
                std::ffi::CStr::from_ptr(ifa.ifa_name),
            )
        };
        if family == libc::AF_PACKET && ifname.to_bytes() == name.as_bytes() {
            // SAFETY: for AF_PACKET entries ifa_data is a struct
            // rtnl_link_stats, whose first eight fields are u32 counters
            // (rx/tx packets, bytes, errors, then rx_dropped, tx_dropped).
            let counters = unsafe { &*(ifa.ifa_data as *const [u32; 8]) };
            found = Some(u64::from(counters[7]));
        }
    }
    // SAFETY: the list came from getifaddrs and is not used after this.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// The interface's MAC address.
pub fn mac_address(name: &str) -> Option<[u8; 6]> {
    let mut req = ifreq(name)?;
    if !ioctl(libc::SIOCGIFHWADDR, &mut req) {
        return None;
    }
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
    let addr = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(addr.sa_data) {
        *dst = src as u8;
    }
    Some(mac)
}

/// Whether the interface is administratively up and its link is running
/// (operstate up or unknown).
pub fn is_up(name: &str) -> bool {
    let Some(mut req) = ifreq(name) else {
        return false;
    };
    if !ioctl(libc::SIOCGIFFLAGS, &mut req) {
        return false;
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = i32::from(unsafe { req.ifr_ifru.ifru_flags });
    flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback() {
        assert_eq!(ifindex("lo").unwrap(), 1);
        assert!(is_up("lo"));
        assert_eq!(mac_address("lo"), Some([0; 6]));
        assert!(rx_queues("lo") >= 1);
        assert_eq!(tx_dropped("lo"), Some(0));
    }

    #[test]
    fn unknown_and_bad_names() {
        assert!(matches!(
            ifindex("no-such-if0"),
            Err(Error::NoSuchInterface { .. })
        ));
        assert!(!is_up("no-such-if0"));
        assert_eq!(mac_address("no-such-if0"), None);
        assert_eq!(rx_queues("no-such-if0"), 1);
        assert_eq!(driver("no-such-if0"), None);
        assert_eq!(tx_dropped("no-such-if0"), None);
        assert!(tx_vlan_offload_off("no-such-if0").is_err());
        assert!(!is_up("a-name-far-too-long-for-ifnamsiz"));
        assert!(!is_up(""));
    }
}
