//! Sniffers on lab hosts' eth0, counting what each host received: the
//! delivery check of the fast-path tests ("which hosts received which
//! frames").
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};

use crate::{Capture, Lab};

/// How long to keep listening for copies that must not arrive, after the
/// ones that must have arrived did.
pub const GRACE: Duration = Duration::from_millis(300);

/// A sniffer per host for frames matching a BPF filter. A sniffer also sees
/// its own host's transmissions (libpcap's `inbound` loses the first frame
/// after the capture starts on this kernel), so a sender counts what it sent.
pub struct Sniffers {
    caps: Vec<(usize, Capture)>,
}

impl Sniffers {
    /// Starts a sniffer on every host of `lab` with BPF filter `bpf`.
    pub fn start(lab: &Lab, bpf: &str) -> Result<Sniffers> {
        let caps = lab
            .hosts()
            .map(|h| Ok((h, Capture::start(lab, &lab.host_ns(h), "eth0", bpf)?)))
            .collect::<Result<_>>()?;
        Ok(Sniffers { caps })
    }

    /// Waits (up to `wait`) until each host has captured `want[i]` frames
    /// matching BPF `filter` (host i+first), then GRACE more; stops every
    /// sniffer and returns each host's count, in host order.
    pub fn settle(&mut self, filter: &str, want: &[u64], wait: Duration) -> Result<Vec<u64>> {
        let deadline = Instant::now() + wait;
        for ((host, cap), &n) in self.caps.iter().zip(want) {
            // A frame half-written at the moment of reading is a transient error.
            while count_pcap(cap.file(), filter).unwrap_or(0) < n {
                if Instant::now() >= deadline {
                    let got = count_pcap(cap.file(), filter);
                    bail!("h{host}, `{filter}`: {got:?} frames of {n} after {wait:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::thread::sleep(GRACE);
        self.caps
            .iter_mut()
            .map(|(_, c)| {
                c.stop()?;
                count_pcap(c.file(), filter)
            })
            .collect()
    }
}

/// Frames in a pcap matching a BPF filter (`tcpdump -r`: much cheaper to
/// start than tshark, which matters when polling a live capture).
pub fn count_pcap(file: &Path, filter: &str) -> Result<u64> {
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(file)
        .arg(filter)
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        out.status.success(),
        "tcpdump -r {file:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out.stdout.iter().filter(|b| **b == b'\n').count() as u64)
}
