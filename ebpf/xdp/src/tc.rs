//! The TC ingress program (cls_bpf, direct action) on every switch port.
//! Two jobs:
//!
//! 1. It replicates the frames of MIXED sets, whose ports want the VLAN
//!    some tagged, some untagged. Why not in XDP: a frame gets one
//!    redirect there, and a devmap broadcast in generic mode hands every
//!    port an skb clone sharing the frame's bytes, so a per-copy tag
//!    rewrite (a devmap egress program) would rewrite the other copies
//!    too. Here each copy is an skb clone too, but the tag lives in the
//!    skb's metadata (`vlan_tci`, the kernel's VLAN acceleration):
//!    `bpf_skb_vlan_push` and `bpf_skb_vlan_pop` on an skb whose bytes
//!    carry no tag change only that metadata, which `bpf_clone_redirect`
//!    copies into each clone (the kernel writes it into the copy's own
//!    bytes on the way out, as the data plane turns the ports' TX VLAN
//!    offload off). The XDP program untagged the frame before handing it
//!    on, and left its set and VLAN in the XDP metadata (`TcMeta`).
//! 2. It switches frames the XDP program never saw: generic-mode XDP
//!    skips every skb another device redirected here
//!    (netif_receive_generic_xdp: "Reinjected packets coming from
//!    act_mirred or similar should not get XDP generic processing"), and
//!    the redirect mark stays on until after TC ingress. A neighbour
//!    igmpsnoop's TC copies arriving over a veth are such skbs. The XDP
//!    program passes no frame of its ports up without the metadata magic,
//!    so a frame of a port without it is one of these: the same decision
//!    (`crate::switch`, reading the tag the kernel moved into the skb),
//!    then one clone per port in its format, or one redirect.
use aya_ebpf::{
    bindings::{__sk_buff, TC_ACT_OK, TC_ACT_SHOT},
    helpers::{bpf_clone_redirect, bpf_redirect, bpf_skb_vlan_pop, bpf_skb_vlan_push},
    macros::classifier,
    programs::TcContext,
};
use igmpsnoop_common::{MAX_PORTS, PortConf, TC_MAGIC, TcMeta, counter, set_flags};

use crate::{
    ETH_P_8021Q, Frame, Out,
    counters::{add, count},
    flood_set,
    maps::{MASKS, PORT_VLANS, PORTS},
    out, port_format,
};

/// How many bytes of a non-linear frame are pulled into its head before
/// switching it: every header the decision reads (Ethernet, IPv6 and its
/// walked extension headers, ICMPv6's type).
const HEADERS: u32 = 256;

#[classifier]
pub fn igmpsnoop_tc(ctx: TcContext) -> i32 {
    let skb = ctx.skb.skb;
    // SAFETY: the context's fields, read as the verifier allows.
    let (meta, data, ingress) = unsafe {
        (
            (*skb).data_meta as usize,
            (*skb).data as usize,
            (*skb).ingress_ifindex,
        )
    };
    let len = core::mem::size_of::<TcMeta>();
    if meta + len <= data {
        // SAFETY: [meta, meta + len) lies in the metadata, checked just above.
        let m: TcMeta = unsafe { core::ptr::read_unaligned(meta as *const TcMeta) };
        if m.magic == TC_MAGIC {
            // SAFETY: as above. Cleared so that no clone carries it on to
            // another switch (a bpf_clone_redirect clone keeps the head room).
            unsafe { core::ptr::write_unaligned(meta as *mut u32, 0) };
            return mixed(skb, m, ingress);
        }
    }
    // SAFETY: copied out at once.
    match unsafe { PORTS.get(ingress) }.copied() {
        Some(conf) => unseen(&ctx, &conf, ingress),
        // Not one of ours.
        None => TC_ACT_OK,
    }
}

/// A frame of a MIXED set the XDP program handed on (untagged).
#[inline(always)]
fn mixed(skb: *mut __sk_buff, m: TcMeta, ingress: u32) -> i32 {
    // SAFETY: copied out at once.
    let Some(port) = unsafe { PORTS.get(ingress) }.map(|c| c.index) else {
        return TC_ACT_SHOT;
    };
    let mask = MASKS.get(m.set).copied().unwrap_or(0);
    let copies = Copies {
        mask,
        unaware_only: false,
        by_port: true,
        tagged: false,
        vlan: m.vlan,
        tci: m.vlan & 0x0fff,
        proto: ETH_P_8021Q.to_be(),
    };
    replicate(skb, copies, ingress, port);
    TC_ACT_SHOT
}

/// A frame XDP never saw: switched here, as XDP would have.
#[inline(always)]
fn unseen(ctx: &TcContext, conf: &PortConf, ingress: u32) -> i32 {
    let port = conf.index;
    count(port, counter::RX);
    count(port, counter::TC_RX);
    let skb = ctx.skb.skb;
    let want = ctx.len().min(HEADERS);
    if ((ctx.data_end() - ctx.data()) as u32) < want && ctx.skb.pull_data(want).is_err() {
        count(port, counter::DROP_SHORT_ETH);
        return TC_ACT_SHOT;
    }
    // The kernel moved the outer tag of the bytes into the skb before TC
    // ingress (__netif_receive_skb_core's skb_vlan_untag), or it came so.
    // SAFETY: context fields, read as the verifier allows.
    let (present, tci, proto) = unsafe {
        (
            (*skb).vlan_present,
            (*skb).vlan_tci as u16,
            (*skb).vlan_proto as u16,
        )
    };
    let mut f = Frame {
        ifindex: ingress,
        port,
        vlan: 0,
        tagged: present != 0,
        tag_vid: if present != 0 { tci & 0x0fff } else { 0 },
        vlans: false,
    };
    let out = crate::switch(ctx, conf, &mut f);
    execute(skb, out, &f, if present != 0 { tci } else { 0 }, proto)
}

/// Does what `switch` decided, TC's way: no AF_XDP socket to reach, and
/// each copy gets its own tag (`tci`, `proto`: the tag the frame came
/// with, `proto` in network order).
#[inline(always)]
fn execute(skb: *mut __sk_buff, out: Out, f: &Frame, tci: u16, proto: u16) -> i32 {
    match out.kind {
        out::DONE => return TC_ACT_SHOT,
        out::CONTROL => {
            count(f.port, counter::DROP_TC_CONTROL);
            return TC_ACT_SHOT;
        }
        out::PORT => return unicast(skb, out.arg, f, tci),
        _ => {}
    }
    let out = if out.kind == out::FLOOD {
        flood_set(f)
    } else {
        out
    };
    // A tag pushed for a VLAN keeps the priority the frame came with.
    let pcp = tci & 0xf000;
    let mut copies = Copies {
        mask: u64::MAX,
        unaware_only: true,
        // Without VLAN config, frames leave as they came (AS_IS).
        by_port: f.vlans,
        tagged: f.tagged,
        vlan: f.vlan,
        tci: if f.vlans { pcp | f.vlan } else { tci },
        proto: if f.vlans { ETH_P_8021Q.to_be() } else { proto },
    };
    if out.kind == out::SET {
        if out.set.copies == 0 {
            return TC_ACT_SHOT;
        }
        copies.mask = MASKS.get(out.set.set).copied().unwrap_or(0);
        copies.unaware_only = false;
    }
    replicate(skb, copies, f.ifindex, f.port);
    TC_ACT_SHOT
}

/// Known unicast: the tag its port wants, then the one redirect.
#[inline(always)]
fn unicast(skb: *mut __sk_buff, ifindex: u32, f: &Frame, tci: u16) -> i32 {
    if f.vlans {
        let want = port_format(ifindex, f) == set_flags::TAGGED;
        let tci = (tci & 0xf000) | f.vlan;
        // SAFETY: helpers on our own skb; with no tag in its bytes (the
        // kernel moved it out) they set or clear its tag metadata only.
        let rc = unsafe {
            if (*skb).vlan_present != 0 && bpf_skb_vlan_pop(skb) != 0 {
                -1
            } else if want {
                bpf_skb_vlan_push(skb, ETH_P_8021Q.to_be(), tci)
            } else {
                0
            }
        };
        if rc != 0 {
            count(f.port, counter::TC_DROP);
            return TC_ACT_SHOT;
        }
    }
    // SAFETY: a helper; the kernel checks the ifindex.
    unsafe { bpf_redirect(ifindex, 0) as i32 }
}

/// Which ports get a copy, and in what format.
#[derive(Clone, Copy)]
struct Copies {
    /// Port indexes (bit i: port i); the ingress port never gets one.
    mask: u64,
    /// Only the VLAN-unaware ones (the FLOOD devmap's ports).
    unaware_only: bool,
    /// Each port's format for `vlan`; false: every copy as the frame
    /// came, tagged (`tagged`) or not.
    by_port: bool,
    tagged: bool,
    vlan: u16,
    /// The tag of a tagged copy: TCI and protocol (network order).
    tci: u16,
    proto: u16,
}

/// One clone per port of `c.mask` but the ingress one, each with the tag
/// its port wants, counted on `port` (the ingress port's index). The loop
/// keeps no count of its own: state that differs from one iteration to the
/// next would keep the verifier from pruning its paths.
#[inline(always)]
fn replicate(skb: *mut __sk_buff, c: Copies, ingress: u32, port: u32) {
    // The tag the skb has is dropped first, so the state below is known
    // (the kernel moved it out of the bytes; an inner tag of a double-
    // tagged frame moves into the metadata, and then stays inside the
    // tag each copy gets).
    // SAFETY: a helper on our own skb; touches metadata only, as no tag is
    // in the bytes.
    if unsafe { (*skb).vlan_present } != 0 && unsafe { bpf_skb_vlan_pop(skb) } != 0 {
        add(port, counter::TC_DROP, u64::from(c.mask.count_ones()));
        return;
    }
    let mut tagged = false;
    for i in 0..MAX_PORTS {
        if c.mask >> i & 1 == 0 {
            continue;
        }
        let Some(p) = PORT_VLANS.get(i) else {
            continue;
        };
        if p.ifindex == ingress || p.ifindex == 0 || (c.unaware_only && p.configured != 0) {
            continue;
        }
        let want = if c.by_port {
            !p.untagged(c.vlan)
        } else {
            c.tagged
        };
        if want != tagged {
            // SAFETY: helpers on our own skb; with no tag in its bytes they
            // set or clear the skb's tag metadata only.
            let rc = if want {
                unsafe { bpf_skb_vlan_push(skb, c.proto, c.tci) }
            } else {
                unsafe { bpf_skb_vlan_pop(skb) }
            };
            if rc != 0 {
                add(port, counter::TC_DROP, 1);
                continue;
            }
            tagged = want;
        }
        // SAFETY: a helper; the kernel checks the ifindex.
        let sent = unsafe { bpf_clone_redirect(skb, p.ifindex, 0) } == 0;
        add(
            port,
            if sent {
                counter::TC_COPIES
            } else {
                counter::TC_DROP
            },
            1,
        );
    }
}
