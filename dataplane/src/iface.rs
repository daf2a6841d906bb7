//! Network interfaces: names, indexes, queue counts.
use std::{ffi::CString, fs};

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

/// Number of RX queues, from sysfs (1 when sysfs does not say: veth, or a
/// namespace whose /sys belongs to another).
pub fn rx_queues(name: &str) -> u32 {
    let Ok(dir) = fs::read_dir(format!("/sys/class/net/{name}/queues")) else {
        return 1;
    };
    let n = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count() as u32;
    n.clamp(1, igmpsnoop_common::MAX_QUEUES)
}

/// The interface's MAC address, from sysfs.
pub fn mac_address(name: &str) -> Option<[u8; 6]> {
    let text = fs::read_to_string(format!("/sys/class/net/{name}/address")).ok()?;
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    Some(mac)
}

/// Whether the interface is administratively and operationally up.
pub fn is_up(name: &str) -> bool {
    fs::read_to_string(format!("/sys/class/net/{name}/operstate"))
        .map(|s| matches!(s.trim(), "up" | "unknown"))
        .unwrap_or(false)
}
