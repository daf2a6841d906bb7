//! The TC ingress program (cls_bpf, direct action) on every switch port:
//! replicates the frames of MIXED sets, whose ports want the VLAN some
//! tagged, some untagged.
//!
//! Why not in XDP: a frame gets one redirect there, and a devmap broadcast
//! in generic mode hands every port an skb clone sharing the frame's bytes,
//! so a per-copy tag rewrite (a devmap egress program) would rewrite the
//! other copies too. Here each copy is an skb clone too, but the tag lives
//! in the skb's metadata (`vlan_tci`, the kernel's VLAN acceleration):
//! `bpf_skb_vlan_push` and `bpf_skb_vlan_pop` on an skb whose bytes carry
//! no tag change only that metadata, which `bpf_clone_redirect` copies
//! into each clone. The XDP program untagged the frame before handing it
//! on, and left its set and VLAN in the XDP metadata (`TcMeta`); frames
//! without it are not ours: TC_ACT_OK, untouched.
use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    helpers::{bpf_clone_redirect, bpf_skb_vlan_pop, bpf_skb_vlan_push},
    macros::classifier,
    programs::TcContext,
};
use igmpsnoop_common::{MAX_PORTS, TC_MAGIC, TcMeta, counter};

use crate::{ETH_P_8021Q, MASKS, PORT_VLANS, PORTS, add};

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
    if meta + len > data {
        return TC_ACT_OK;
    }
    // SAFETY: [meta, meta + len) lies in the metadata, checked just above.
    let m: TcMeta = unsafe { core::ptr::read_unaligned(meta as *const TcMeta) };
    if m.magic != TC_MAGIC {
        return TC_ACT_OK;
    }
    // SAFETY: as above. Cleared so that no clone carries it on to another
    // switch (a bpf_clone_redirect clone keeps the head room).
    unsafe { core::ptr::write_unaligned(meta as *mut u32, 0) };
    // SAFETY: copied out at once.
    let Some(port) = unsafe { PORTS.get(ingress) }.map(|c| c.index) else {
        return TC_ACT_SHOT;
    };
    let mask = MASKS.get(m.set).copied().unwrap_or(0);
    replicate(skb, mask, m.vlan, ingress, port);
    TC_ACT_SHOT
}

/// One clone per port of `mask` but the ingress one, each with the tag its
/// port wants for `vlan`, counted on `port` (the ingress port's index).
/// The loop keeps no count of its own: state that differs from one
/// iteration to the next would keep the verifier from pruning its paths.
#[inline(always)]
fn replicate(
    skb: *mut aya_ebpf::bindings::__sk_buff,
    mask: u64,
    vlan: u16,
    ingress: u32,
    port: u32,
) {
    // The XDP program untagged the bytes; an accelerated tag the kernel
    // left in the metadata is dropped too, so the state below is known.
    // SAFETY: a helper on our own skb; touches metadata only, as no tag is
    // in the bytes.
    if unsafe { (*skb).vlan_present } != 0 && unsafe { bpf_skb_vlan_pop(skb) } != 0 {
        add(port, counter::TC_DROP, u64::from(mask.count_ones()));
        return;
    }
    let mut tagged = false;
    for i in 0..MAX_PORTS {
        if mask >> i & 1 == 0 {
            continue;
        }
        let Some(p) = PORT_VLANS.get(i) else {
            continue;
        };
        if p.ifindex == ingress || p.ifindex == 0 {
            continue;
        }
        let want = !p.untagged(vlan);
        if want != tagged {
            // SAFETY: helpers on our own skb; with no tag in its bytes they
            // set or clear the skb's tag metadata only.
            let rc = if want {
                unsafe { bpf_skb_vlan_push(skb, ETH_P_8021Q.to_be(), vlan & 0x0fff) }
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
