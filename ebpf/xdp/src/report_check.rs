//! The checks the daemon's engine makes before it learns from a report
//! (control/src/wire, control/src/engine/receive.rs and mld_rx.rs), made
//! here before fast join or fast leave applies one, so that the program
//! never applies what the engine rejects as malformed or misaddressed.
//!
//! Stricter than the engine where that is simpler: IPv4 options other than
//! a lone Router Alert, an IPv6 chain other than an 8-byte Hop-by-Hop
//! header then ICMPv6, a message longer than `REPORT_SUM_BYTES` or not a
//! whole number of 32-bit words (every IGMP and MLD message is). Such a
//! report is left to the daemon, which learns it as before (a little
//! later).
use core::ptr;

use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_csum_diff, bpf_xdp_load_bytes},
    programs::XdpContext,
};
use igmpsnoop_common::{IPPROTO_ICMPV6, REPORT_SUM_BYTES};

use crate::{
    ipv4::IPV4_MIN_HLEN,
    ipv6::{IPV6_HLEN, NEXTHDR_HOP},
    maps::REPORT_SUM,
};

/// RFC 2113 §2.1: Router Alert, length 4, value 0.
const IPV4_ROUTER_ALERT: [u8; 4] = [0x94, 0x04, 0, 0];
/// RFC 2711 §2.1: the Router Alert option (type 5, length 2).
const IPV6_OPT_ROUTER_ALERT: u8 = 5;
const IPV6_OPT_PAD1: u8 = 0;
/// What one bpf_csum_diff call sums at most (the kernel's limit).
const CSUM_DIFF_MAX: usize = 512;

/// The end of the IGMP message at `l4` of the IPv4 packet at `l3` (frame
/// padding excluded), when the packet is one the engine learns from: IPv4
/// header checksum right, not a fragment, TTL 1 (RFC 2236 §2, RFC 3376 §4),
/// to a multicast address, and the IGMP checksum right (RFC 2236 §2.3,
/// RFC 3376 §4.1.2).
#[inline(always)]
pub(crate) fn igmp(ctx: &XdpContext, l3: usize, l4: usize) -> Option<usize> {
    let end = ctx.data_end();
    if l3 + IPV4_MIN_HLEN > end {
        return None;
    }
    // SAFETY (every read below): each lies in bytes checked against `end`.
    let ihl = usize::from(unsafe { *(l3 as *const u8) } & 0x0f) * 4;
    if l4 != l3 + ihl {
        return None;
    }
    if ihl != IPV4_MIN_HLEN {
        if ihl != IPV4_MIN_HLEN + 4 || l3 + IPV4_MIN_HLEN + 4 > end {
            return None;
        }
        let opt = unsafe { *((l3 + IPV4_MIN_HLEN) as *const [u8; 4]) };
        if opt != IPV4_ROUTER_ALERT {
            return None;
        }
    }
    if fold(u64::from(sum(ctx, l3, ihl)?)) != 0xffff {
        return None;
    }
    let frag = u16::from_be(unsafe { *((l3 + 6) as *const u16) });
    let ttl = unsafe { *((l3 + 8) as *const u8) };
    let daddr0 = unsafe { *((l3 + 16) as *const u8) };
    if frag & 0x3fff != 0 || ttl != 1 || daddr0 & 0xf0 != 0xe0 {
        return None;
    }
    let total = usize::from(u16::from_be(unsafe { *((l3 + 2) as *const u16) }));
    let msg_end = message_end(l4, l3 + total)?;
    (fold(u64::from(sum(ctx, l4, msg_end - l4)?)) == 0xffff).then_some(msg_end)
}

/// The end of the MLD message at `l4` of the IPv6 packet at `l3`, when the
/// packet is one the engine learns a report or done from (RFC 3810 §5,
/// §5.2.13; RFC 2710 §3): hop limit 1, a Hop-by-Hop header right after the
/// fixed one, with the Router Alert option of value 0 (MLD), then ICMPv6; to
/// a multicast address, from a link-local address or ::, and the ICMPv6
/// checksum right over the pseudo-header (RFC 8200 §8.1).
#[inline(always)]
pub(crate) fn mld(ctx: &XdpContext, l3: usize, l4: usize) -> Option<usize> {
    let end = ctx.data_end();
    let hop = l3 + IPV6_HLEN;
    if hop + 8 > end {
        return None;
    }
    // SAFETY (every read below): each lies in bytes checked against `end`.
    let (next, hop_limit) = unsafe { (*((l3 + 6) as *const u8), *((l3 + 7) as *const u8)) };
    let (hop_next, hop_units) = unsafe { (*(hop as *const u8), *((hop + 1) as *const u8)) };
    // An 8-byte Hop-by-Hop header (Router Alert and padding: what hosts
    // send), then ICMPv6.
    let opts = unsafe { *((hop + 2) as *const [u8; 6]) };
    if next != NEXTHDR_HOP
        || hop_next != IPPROTO_ICMPV6
        || hop_units != 0
        || l4 != hop + 8
        || hop_limit != 1
        || !router_alert_mld(opts)
    {
        return None;
    }
    let dst0 = unsafe { *((l3 + 24) as *const u8) };
    let src = unsafe { *((l3 + 8) as *const [u8; 2]) };
    let src_unspecified = unsafe { *((l3 + 8) as *const [u64; 2]) } == [0, 0];
    let link_local = src[0] == 0xfe && src[1] & 0xc0 == 0x80;
    if dst0 != 0xff || !(link_local || src_unspecified) {
        return None;
    }
    let payload = usize::from(u16::from_be(unsafe { *((l3 + 4) as *const u16) }));
    let msg_end = message_end(l4, hop + payload)?;
    // The pseudo-header: source and destination, then the upper-layer
    // length and next header as 32-bit words (their high halves are 0).
    let len = msg_end - l4;
    let pseudo = u64::from(sum(ctx, l3 + 8, 32)?)
        + u64::from((len as u16).to_be())
        + u64::from(u16::from(IPPROTO_ICMPV6).to_be());
    (fold(pseudo + u64::from(sum(ctx, l4, len)?)) == 0xffff).then_some(msg_end)
}

/// Whether a Hop-by-Hop header's 6 bytes of options hold a Router Alert
/// of value 0 (MLD) before any other Router Alert, as the engine reads
/// the first one it finds. Pad1 is one byte, every other option type,
/// length, data.
#[inline(always)]
fn router_alert_mld(opts: [u8; 6]) -> bool {
    let mut at = 0;
    for _ in 0..opts.len() {
        let Some(&kind) = opts.get(at) else {
            return false;
        };
        if kind == IPV6_OPT_PAD1 {
            at += 1;
            continue;
        }
        let Some(&len) = opts.get(at + 1) else {
            return false;
        };
        if kind == IPV6_OPT_ROUTER_ALERT {
            // Byte by byte: a slice comparison would call memcmp, which a
            // BPF program cannot.
            return len == 2 && opts.get(at + 2) == Some(&0) && opts.get(at + 3) == Some(&0);
        }
        at += 2 + usize::from(len);
    }
    false
}

/// The message's end from the IP length (`claimed`), when the message
/// holds the 8 bytes every IGMP and MLD message has and can be summed here.
/// Not compared with the frame's end on purpose: `sum` fails on a message
/// that runs past the frame (bpf_xdp_load_bytes refuses to read past it),
/// and with `claimed <= end` known, LLVM would drop, as implied, the
/// comparisons with the frame's end that the verifier needs at each read
/// (`fast_join::Bounds`, `router_alert_mld`).
#[inline(always)]
fn message_end(l4: usize, claimed: usize) -> Option<usize> {
    let len = claimed.checked_sub(l4)?;
    ((8..=REPORT_SUM_BYTES).contains(&len) && len.is_multiple_of(4)).then_some(claimed)
}

/// The 32-bit one's-complement sum (unfolded) of the `len` bytes at `at`
/// (a multiple of 4, at most REPORT_SUM_BYTES). The bytes are copied to
/// REPORT_SUM first: bpf_csum_diff needs a length the verifier can bound
/// against the memory it reads, which a packet of unknown length is not.
/// Words are summed in host order; the folded sum is the same either way
/// round (RFC 1071 §2.B), so callers add constants as network-order words
/// read in host order.
#[inline(always)]
fn sum(ctx: &XdpContext, at: usize, len: usize) -> Option<u32> {
    if len == 0 || len > REPORT_SUM_BYTES || !len.is_multiple_of(4) {
        return None;
    }
    let buf = REPORT_SUM.get_ptr_mut(0)?.cast::<u8>();
    let offset = at.checked_sub(ctx.data())? as u32;
    // SAFETY: a helper; `buf` is REPORT_SUM's value, REPORT_SUM_BYTES long,
    // and `len` is at most that (checked above).
    if unsafe { bpf_xdp_load_bytes(ctx.as_ptr().cast(), offset, buf.cast(), len as u32) } != 0 {
        return None;
    }
    let first = len.min(CSUM_DIFF_MAX);
    // SAFETY: a helper; reads `first` bytes of `buf` (at most its length).
    let mut s = unsafe { bpf_csum_diff(ptr::null_mut(), 0, buf.cast(), first as u32, 0) };
    if len > first && s >= 0 {
        // SAFETY: as above; the rest, at most CSUM_DIFF_MAX bytes after the
        // first CSUM_DIFF_MAX (REPORT_SUM_BYTES is twice that).
        s = unsafe {
            bpf_csum_diff(
                ptr::null_mut(),
                0,
                buf.add(first).cast(),
                (len - first) as u32,
                s as u32,
            )
        };
    }
    u32::try_from(s).ok()
}

/// Folds a sum to 16 bits.
#[inline(always)]
fn fold(sum: u64) -> u64 {
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    (sum & 0xffff) + (sum >> 16)
}
