//! 802.1Q tag rewrites on the XDP program's frame, and the metadata it
//! leaves for the TC program.
//!
//! The frame is the program's own (generic XDP unshares a cloned skb
//! before running the program; native XDP owns its buffer), and every
//! copy of a devmap broadcast goes out with the same bytes: the rewrite
//! happens once, before the redirect, for a set whose ports all want the
//! same format. Each access is bounds-checked after the head moved.
use aya_ebpf::{
    helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_meta},
    programs::XdpContext,
};
use igmpsnoop_common::{TC_MAGIC, TcMeta};

use crate::{ETH_HLEN, ETH_P_8021Q, VLAN_HLEN};

/// Both MAC addresses.
const MACS: usize = 12;

/// Makes the frame untagged (`want_tag` false) or tagged with `vlan` (PCP
/// 0 when the tag is new; a priority tag keeps its PCP and gets the VID).
/// `tagged`, `vid`: the tag it has now.
#[inline(always)]
pub fn fit(ctx: &XdpContext, tagged: bool, vid: u16, want_tag: bool, vlan: u16) -> Result<(), ()> {
    match (tagged, want_tag) {
        (false, false) => Ok(()),
        (true, false) => pop(ctx),
        (false, true) => push(ctx, vlan),
        (true, true) if vid == vlan => Ok(()),
        (true, true) => set_vid(ctx, vlan),
    }
}

/// Inserts a tag after the MAC addresses: 4 bytes of head room, the
/// addresses moved to the new front.
#[inline(always)]
fn push(ctx: &XdpContext, vlan: u16) -> Result<(), ()> {
    // SAFETY: a helper; the kernel checks the head room.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(VLAN_HLEN as i32)) } != 0 {
        return Err(());
    }
    let data = ctx.data();
    if data + ETH_HLEN + VLAN_HLEN > ctx.data_end() {
        return Err(());
    }
    // SAFETY: the 18 bytes written and read lie in [data, data_end),
    // checked just above; unaligned packet access is allowed.
    unsafe {
        let macs = core::ptr::read_unaligned((data + VLAN_HLEN) as *const [u8; MACS]);
        core::ptr::write_unaligned(data as *mut [u8; MACS], macs);
        core::ptr::write_unaligned((data + MACS) as *mut u16, ETH_P_8021Q.to_be());
        core::ptr::write_unaligned((data + MACS + 2) as *mut u16, (vlan & 0x0fff).to_be());
    }
    Ok(())
}

/// Removes the outer tag: the MAC addresses move 4 bytes on, over it, and
/// the head follows.
#[inline(always)]
fn pop(ctx: &XdpContext) -> Result<(), ()> {
    let data = ctx.data();
    if data + ETH_HLEN + VLAN_HLEN > ctx.data_end() {
        return Err(());
    }
    // SAFETY: the bytes lie in [data, data_end), checked just above.
    unsafe {
        let macs = core::ptr::read_unaligned(data as *const [u8; MACS]);
        core::ptr::write_unaligned((data + VLAN_HLEN) as *mut [u8; MACS], macs);
    }
    // SAFETY: a helper; shrinking by a header that is there.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, VLAN_HLEN as i32) } != 0 {
        return Err(());
    }
    Ok(())
}

/// Gives the outer tag VID `vlan` (a priority tag, VID 0, from a port with
/// a PVID), keeping its PCP and DEI.
#[inline(always)]
fn set_vid(ctx: &XdpContext, vlan: u16) -> Result<(), ()> {
    let data = ctx.data();
    if data + ETH_HLEN + VLAN_HLEN > ctx.data_end() {
        return Err(());
    }
    let at = (data + ETH_HLEN) as *mut u16;
    // SAFETY: the TCI lies in [data, data_end), checked just above.
    unsafe {
        let tci = u16::from_be(core::ptr::read_unaligned(at));
        core::ptr::write_unaligned(at, ((tci & 0xf000) | (vlan & 0x0fff)).to_be());
    }
    Ok(())
}

/// Puts `TcMeta { TC_MAGIC, set, vlan }` in front of the frame (XDP
/// metadata).
#[inline(always)]
pub fn write_meta(ctx: &XdpContext, set: u32, vlan: u16) -> Result<(), ()> {
    let len = core::mem::size_of::<TcMeta>();
    // SAFETY: a helper; the kernel checks the room and the alignment.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, -(len as i32)) } != 0 {
        return Err(());
    }
    let meta = ctx.metadata();
    if meta + len > ctx.metadata_end() {
        return Err(());
    }
    // SAFETY: [meta, meta + len) lies in the metadata, checked just above.
    unsafe {
        core::ptr::write_unaligned(
            meta as *mut TcMeta,
            TcMeta {
                magic: TC_MAGIC,
                set,
                vlan,
                _pad: 0,
            },
        );
    }
    Ok(())
}
