//! What XDP a network device offers, as the kernel reports it
//! (`xdp_features`, netlink family "netdev", kernel 6.3+).
//!
//! The bit that matters here is NDO_XMIT: whether frames that a native-mode
//! XDP program redirects *into* the device are sent. A veth has it only while
//! its peer runs NAPI (GRO on, or an XDP program on the peer); without it the
//! kernel drops every redirected frame without a counter anywhere.
//!
//! Written on a raw netlink socket: two fixed requests (resolve the family,
//! get one device) do not justify a netlink crate and its dependency tree.
use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

/// NETDEV_XDP_ACT_* (include/uapi/linux/netdev.h).
pub mod act {
    pub const BASIC: u64 = 1;
    pub const REDIRECT: u64 = 2;
    pub const NDO_XMIT: u64 = 4;
}

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;

/// The device's xdp_features, or an error (a kernel before 6.3 has no
/// "netdev" family: ENOENT).
pub fn xdp_features(ifindex: u32) -> io::Result<u64> {
    let sock = GenlSocket::open()?;
    let family = sock.family_id("netdev")?;
    let reply = sock.request(
        family,
        NETDEV_CMD_DEV_GET,
        &attr(NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes()),
    )?;
    find_attr(&reply, NETDEV_A_DEV_XDP_FEATURES)
        .and_then(|v| Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?)))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no xdp_features in reply"))
}

struct GenlSocket(OwnedFd);

impl GenlSocket {
    fn open() -> io::Result<GenlSocket> {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        Ok(GenlSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn family_id(&self, name: &str) -> io::Result<u16> {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        let reply = self.request(
            GENL_ID_CTRL,
            CTRL_CMD_GETFAMILY,
            &attr(CTRL_ATTR_FAMILY_NAME, &n),
        )?;
        find_attr(&reply, CTRL_ATTR_FAMILY_ID)
            .and_then(|v| Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?)))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no family id in reply"))
    }

    /// Sends one request and returns the attributes of its one reply.
    fn request(&self, family: u16, cmd: u8, attrs: &[u8]) -> io::Result<Vec<u8>> {
        let len = NLMSG_HDRLEN + GENL_HDRLEN + attrs.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&family.to_ne_bytes());
        msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        msg.extend_from_slice(&[cmd, 1, 0, 0]); // genl: cmd, version, reserved
        msg.extend_from_slice(attrs);
        // SAFETY: msg is a valid buffer of msg.len() bytes for the call;
        // a netlink socket with no address sends to the kernel.
        let sent = unsafe { libc::send(self.0.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 8192];
        // SAFETY: buf is a writable buffer of buf.len() bytes for the call.
        let got = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(got as usize);
        parse_reply(&buf)
    }
}

/// The attributes of a genetlink reply, or the error it carries.
fn parse_reply(buf: &[u8]) -> io::Result<Vec<u8>> {
    let short = || io::Error::new(io::ErrorKind::InvalidData, "short netlink reply");
    let header = buf.get(..NLMSG_HDRLEN).ok_or_else(short)?;
    let len = u32::from_ne_bytes(header[0..4].try_into().map_err(|_| short())?) as usize;
    let kind = u16::from_ne_bytes(header[4..6].try_into().map_err(|_| short())?);
    let body = buf
        .get(NLMSG_HDRLEN..len.min(buf.len()))
        .ok_or_else(short)?;
    if kind == NLMSG_ERROR {
        let errno = i32::from_ne_bytes(
            body.get(..4)
                .ok_or_else(short)?
                .try_into()
                .map_err(|_| short())?,
        );
        return Err(io::Error::from_raw_os_error(-errno));
    }
    Ok(body.get(GENL_HDRLEN..).ok_or_else(short)?.to_vec())
}

/// One netlink attribute, padded to 4 bytes.
fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut a = Vec::with_capacity(len.next_multiple_of(4));
    a.extend_from_slice(&(len as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(value);
    a.resize(len.next_multiple_of(4), 0);
    a
}

/// The value of the first attribute of type `kind`.
fn find_attr(mut attrs: &[u8], kind: u16) -> Option<&[u8]> {
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let t = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff; // without NLA_F_* flags
        if len < 4 || len > attrs.len() {
            return None;
        }
        if t == kind {
            return Some(&attrs[4..len]);
        }
        attrs = attrs.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let attrs = [
            attr(NETDEV_A_DEV_IFINDEX, &7u32.to_ne_bytes()),
            attr(2, &[0; 4]),
            attr(NETDEV_A_DEV_XDP_FEATURES, &5u64.to_ne_bytes()),
        ]
        .concat();
        assert_eq!(
            find_attr(&attrs, NETDEV_A_DEV_IFINDEX),
            Some(&7u32.to_ne_bytes()[..])
        );
        assert_eq!(
            find_attr(&attrs, NETDEV_A_DEV_XDP_FEATURES),
            Some(&5u64.to_ne_bytes()[..])
        );
        assert_eq!(find_attr(&attrs, 9), None);
        // A length past the end is not read.
        assert_eq!(find_attr(&[40, 0, 1, 0, 1, 2], 1), None);
    }

    #[test]
    fn loopback_has_features() {
        // The loopback device does no XDP of its own but the query answers.
        assert!(xdp_features(1).is_ok());
        assert!(xdp_features(u32::MAX).is_err());
    }
}
