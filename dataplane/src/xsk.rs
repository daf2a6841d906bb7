//! AF_XDP sockets (xdpilone): the control plane's frames in and out of a port.
//!
//! One socket per (port, RX queue), each with its own UMEM: half of the frames
//! feed the fill ring for receiving, half are kept for transmitting. This is
//! the only module that knows about xdpilone, so changing the AF_XDP crate is a
//! one-file change.
use std::{num::NonZeroU32, os::fd::RawFd, ptr::NonNull};

use xdpilone::{
    BufIdx, DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User,
    xdp::XdpDesc,
};

use crate::error::{Error, Result};

const FRAME_SIZE: u32 = 2048;
const RX_FRAMES: u32 = 1024;
const TX_FRAMES: u32 = 512;
const RING_SIZE: u32 = 1024;
/// Twice the RX frames: the kernel publishes how far it has read the fill ring
/// only when it next runs out, so up to RX_FRAMES slots can look taken while
/// every frame is back with us. With room for both, a refill always fits.
const FILL_SIZE: u32 = 2 * RX_FRAMES;

/// An anonymous, page-aligned mapping used as a UMEM.
struct Area {
    ptr: NonNull<u8>,
    len: usize,
}

impl Area {
    fn new(len: usize) -> std::io::Result<Self> {
        // SAFETY: an anonymous private mapping with no address hint; the result
        // is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(std::io::Error::last_os_error)?;
        Ok(Self { ptr, len })
    }

    fn as_slice_ptr(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.ptr, self.len)
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; the sockets that used
        // this memory are dropped before (field order in XskSocket).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn frame_bytes(area: &Area, desc: XdpDesc) -> Option<&[u8]> {
    let start = usize::try_from(desc.addr).ok()?;
    let end = start.checked_add(desc.len as usize)?;
    if end > area.len {
        return None;
    }
    // SAFETY: [start, end) lies inside the mapping (checked above), and the
    // kernel has handed this frame to us (it came off the RX ring), so it does
    // not write to it until we put it back on the fill ring.
    Some(unsafe { std::slice::from_raw_parts(area.ptr.as_ptr().add(start), desc.len as usize) })
}

/// Frames the kernel could not hand to (or take from) a socket, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames dropped on receive for any reason (the sum of the rx reasons and more).
    pub rx_dropped: u64,
    /// The RX ring was full: the daemon did not drain it in time.
    pub rx_ring_full: u64,
    /// No free frame on the fill ring.
    pub rx_fill_ring_empty: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
}

impl XskStats {
    pub fn add(&mut self, other: &XskStats) {
        self.rx_dropped += other.rx_dropped;
        self.rx_ring_full += other.rx_ring_full;
        self.rx_fill_ring_empty += other.rx_fill_ring_empty;
        self.rx_invalid_descs += other.rx_invalid_descs;
        self.tx_invalid_descs += other.tx_invalid_descs;
    }
}

/// One AF_XDP socket bound to (interface, queue).
pub struct XskSocket {
    name: String,
    rx: RingRx,
    tx: RingTx,
    device: DeviceQueue,
    user: User,
    _socket: Socket,
    umem: Umem,
    free_tx: Vec<u64>,
    /// RX frames that are ours again, not yet back on the fill ring.
    unfilled: Vec<u64>,
    // Last: the memory must outlive every ring and socket above.
    area: Area,
}

// SAFETY: the raw pointers inside refer to this socket's own mapping and rings;
// the socket is used from one thread at a time (it is moved, never shared).
unsafe impl Send for XskSocket {}

impl XskSocket {
    pub fn open(name: &str, ifindex: u32, queue: u32) -> Result<Self> {
        let err = |what: &'static str, errno: i32| Error::Xsk {
            name: name.to_string(),
            queue,
            what,
            errno,
        };
        let frames = RX_FRAMES + TX_FRAMES;
        let area = Area::new((frames * FRAME_SIZE) as usize)?;
        let config = UmemConfig {
            fill_size: FILL_SIZE,
            complete_size: RING_SIZE,
            frame_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
        };
        // SAFETY: the area is page aligned (mmap) and lives as long as the
        // Umem: both are fields of Self and `area` is dropped last.
        let umem = unsafe { Umem::new(config, area.as_slice_ptr()) }
            .map_err(|e| err("umem", e.get_raw()))?;
        let mut info = IfInfo::invalid();
        info.from_ifindex(ifindex)
            .map_err(|e| err("interface lookup", e.get_raw()))?;
        info.set_queue(queue);
        let socket = Socket::with_shared(&info, &umem).map_err(|e| err("socket", e.get_raw()))?;
        let device = umem
            .fq_cq(&socket)
            .map_err(|e| err("fill/completion rings", e.get_raw()))?;
        let rings = SocketConfig {
            rx_size: NonZeroU32::new(RING_SIZE),
            tx_size: NonZeroU32::new(RING_SIZE),
            bind_flags: 0,
        };
        let user = umem
            .rx_tx(&socket, &rings)
            .map_err(|e| err("rx/tx rings", e.get_raw()))?;
        umem.bind(&user).map_err(|e| err("bind", e.get_raw()))?;
        let rx = user.map_rx().map_err(|e| err("map rx ring", e.get_raw()))?;
        let tx = user.map_tx().map_err(|e| err("map tx ring", e.get_raw()))?;

        let free_tx = (RX_FRAMES..frames)
            .map(|i| u64::from(i * FRAME_SIZE))
            .collect();
        let mut this = Self {
            name: name.to_string(),
            rx,
            tx,
            device,
            user,
            _socket: socket,
            umem,
            free_tx,
            unfilled: (0..RX_FRAMES).map(|i| u64::from(i * FRAME_SIZE)).collect(),
            area,
        };
        // Hand every RX frame to the kernel.
        this.refill();
        Ok(this)
    }

    /// The socket's file descriptor: for the XSKMAP and for the loop's wait.
    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Hands every received frame to `f`, recycles the buffers, and returns how
    /// many there were. Never blocks.
    pub fn receive(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        {
            let mut reader = self.rx.receive(RING_SIZE);
            while let Some(desc) = reader.read() {
                if let Some(frame) = frame_bytes(&self.area, desc) {
                    f(frame);
                }
                self.unfilled
                    .push(desc.addr - desc.addr % u64::from(FRAME_SIZE));
                n += 1;
            }
            reader.release();
        }
        self.refill();
        n
    }

    /// Gives every frame we hold back to the kernel's fill ring. A frame that
    /// does not fit now (the ring is sized so that this should not happen)
    /// stays in `unfilled` for the next call: a frame left out for good would
    /// shrink the socket's receive capacity until it went deaf.
    fn refill(&mut self) {
        while !self.unfilled.is_empty() {
            let mut fill = self.device.fill(self.unfilled.len() as u32);
            let done = fill.insert(self.unfilled.iter().rev().copied()) as usize;
            fill.commit();
            if done == 0 {
                break;
            }
            let keep = self.unfilled.len() - done;
            self.unfilled.truncate(keep);
        }
    }

    /// The kernel's drop counters for this socket (XDP_STATISTICS).
    pub fn statistics(&self) -> XskStats {
        match self.user.statistics_v2() {
            Ok(s) => XskStats {
                rx_dropped: s.rx_dropped,
                rx_ring_full: s.rx_ring_full,
                rx_fill_ring_empty: s.rx_fill_ring_empty_descs,
                rx_invalid_descs: s.rx_invalid_descs,
                tx_invalid_descs: s.tx_invalid_descs,
            },
            Err(_) => XskStats::default(),
        }
    }

    /// Queues one frame for transmission out of this socket's interface.
    pub fn send(&mut self, frame: &[u8]) -> Result<()> {
        if frame.len() > FRAME_SIZE as usize {
            return Err(Error::FrameTooLong {
                len: frame.len(),
                max: FRAME_SIZE as usize,
            });
        }
        self.reap_completions();
        let Some(offset) = self.free_tx.pop() else {
            return Err(Error::TxFull {
                name: self.name.clone(),
            });
        };
        let chunk = self
            .umem
            .frame(BufIdx((offset / u64::from(FRAME_SIZE)) as u32));
        let Some(chunk) = chunk else {
            self.free_tx.push(offset);
            return Err(Error::TxFull {
                name: self.name.clone(),
            });
        };
        // SAFETY: this TX frame is ours: it is on neither the TX ring nor the
        // fill ring until we submit it below, and `chunk` spans FRAME_SIZE bytes.
        unsafe {
            chunk
                .addr
                .cast::<u8>()
                .as_ptr()
                .copy_from_nonoverlapping(frame.as_ptr(), frame.len())
        };
        let sent = {
            let mut writer = self.tx.transmit(1);
            let n = writer.insert(std::iter::once(XdpDesc {
                addr: offset,
                len: frame.len() as u32,
                options: 0,
            }));
            writer.commit();
            n
        };
        if sent == 0 {
            self.free_tx.push(offset);
            return Err(Error::TxFull {
                name: self.name.clone(),
            });
        }
        // Copy mode (veth) only transmits when kicked.
        self.tx.wake();
        Ok(())
    }

    /// Kicks the transmit path again if frames are still on the TX ring: a
    /// kick that found the device busy leaves them there, and the loop waits
    /// with epoll, which (unlike poll) does not drive transmission.
    pub fn kick_pending(&mut self) {
        if self.tx.pending() > 0 {
            self.tx.wake();
        }
    }

    fn reap_completions(&mut self) {
        let mut done = self.device.complete(RING_SIZE);
        while let Some(addr) = done.read() {
            self.free_tx.push(addr - addr % u64::from(FRAME_SIZE));
        }
        done.release();
    }
}
