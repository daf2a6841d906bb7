//! What the switching decision reads a frame through, so that the XDP
//! program and the TC program (for frames XDP never saw) share one
//! decision: both give direct, bounds-checked access to the frame's bytes
//! in `[data, data_end)`, starting at its Ethernet header.
use aya_ebpf::programs::{TcContext, XdpContext};

pub(crate) trait Packet {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
}

impl Packet for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }
}

impl Packet for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }
}
