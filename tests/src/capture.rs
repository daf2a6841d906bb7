//! Packet captures: tcpdump writes a pcap inside a namespace, tshark decodes it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::Lab;
use crate::cmd::{ChildGuard, output_ok};

/// A running (or stopped) tcpdump on one interface. Killed on drop.
pub struct Capture {
    child: ChildGuard,
    file: PathBuf,
    stopped: bool,
}

impl Capture {
    /// Starts `tcpdump -i IFACE -w FILE -U` in `ns` with BPF `filter` ("" = all)
    /// and returns once tcpdump reports it is listening.
    pub fn start(lab: &Lab, ns: &str, iface: &str, filter: &str) -> Result<Capture> {
        let file = lab.scratch_file(&format!("{iface}.pcap"));
        let file_s = file.to_string_lossy().into_owned();
        // -Z root: Debian's tcpdump drops to user tcpdump after opening the
        // device; staying root keeps file access independent of that.
        // --immediate-mode: frames hit the file at once, so `wait_for` can read a
        // live capture.
        let mut args = vec![
            "tcpdump",
            "-i",
            iface,
            "-n",
            "-U",
            "--immediate-mode",
            "-Z",
            "root",
            "-w",
            &file_s,
        ];
        if !filter.is_empty() {
            args.push(filter);
        }
        let mut child = lab.spawn(ns, &args)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !child.stderr().contains("listening on") {
            if !child.is_running() {
                bail!(
                    "tcpdump in {ns} on {iface} exited: {}",
                    child.stderr().trim()
                );
            }
            if Instant::now() >= deadline {
                bail!("tcpdump in {ns} on {iface} not listening after 10 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Capture {
            child,
            file,
            stopped: false,
        })
    }

    /// The pcap file (complete only after `stop`).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Stops tcpdump (SIGINT, so it flushes); idempotent.
    pub fn stop(&mut self) -> Result<()> {
        if !self.stopped {
            self.stopped = true;
            self.child
                .stop(libc::SIGINT, Duration::from_secs(5))
                .context("stopping tcpdump")?;
        }
        Ok(())
    }

    /// Stops the capture and decodes every frame with `tshark -T json`.
    pub fn stop_and_decode(&mut self) -> Result<Vec<Value>> {
        self.stop()?;
        self.decode(None)
    }

    /// Decodes the frames captured so far (works while running too), optionally
    /// only those matching a tshark display filter (e.g. `"igmp.type == 0x22"`).
    /// Each element is one frame's `_source.layers` object; look fields up with
    /// [`field`]/[`field_str`]. IP and IGMP checksums are verified, so
    /// `ip.checksum.status` / `igmp.checksum.status` are "1" (good) or "0" (bad).
    pub fn decode(&self, display_filter: Option<&str>) -> Result<Vec<Value>> {
        decode_pcap(&self.file, display_filter)
    }

    /// Number of captured frames matching a display filter ("" = all); stops the
    /// capture first.
    pub fn count_frames(&mut self, display_filter: &str) -> Result<usize> {
        self.stop()?;
        Ok(self
            .decode(Some(display_filter).filter(|f| !f.is_empty()))?
            .len())
    }

    /// Polls the live capture until at least `min` frames match `display_filter`
    /// or `timeout` passes; returns the matching frames (error on timeout).
    pub fn wait_for(
        &self,
        display_filter: &str,
        min: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            // A frame half-written at the moment tshark reads is a transient error.
            if let Ok(frames) = self.decode(Some(display_filter)) {
                if frames.len() >= min {
                    return Ok(frames);
                }
                if Instant::now() >= deadline {
                    bail!(
                        "only {} frame(s) matching `{display_filter}` after {timeout:?}",
                        frames.len()
                    );
                }
            } else if Instant::now() >= deadline {
                bail!("could not decode {:?}", self.file);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Decodes a pcap with tshark into one `layers` object per frame.
pub fn decode_pcap(file: &Path, display_filter: Option<&str>) -> Result<Vec<Value>> {
    let mut c = Command::new("tshark");
    c.args(["-n", "-r"])
        .arg(file)
        .args(["-T", "json", "--no-duplicate-keys"])
        .args(["-o", "ip.check_checksum:TRUE"]);
    if let Some(f) = display_filter {
        c.args(["-Y", f]);
    }
    let out = output_ok(c)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_str(&text).context("tshark json")?;
    let frames = v.as_array().context("tshark json is not an array")?;
    Ok(frames
        .iter()
        .map(|f| f["_source"]["layers"].clone())
        .collect())
}

/// Every value of field `name` anywhere in a decoded frame (tshark nests fields
/// under subtrees, and merges repeated keys into arrays).
fn collect<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                if k == name {
                    match val {
                        Value::Array(a) => out.extend(a.iter()),
                        other => out.push(other),
                    }
                }
                collect(val, name, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect(x, name, out)),
        _ => {}
    }
}

/// First value of field `name` (e.g. "igmp.type") in a decoded frame.
pub fn field<'a>(frame: &'a Value, name: &str) -> Option<&'a Value> {
    let mut out = Vec::new();
    collect(frame, name, &mut out);
    out.into_iter().next()
}

/// First value of field `name` as a string (tshark prints every leaf as one).
pub fn field_str(frame: &Value, name: &str) -> Option<String> {
    field(frame, name).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Every value of field `name` as strings (e.g. all "igmp.maddr" of a v3 report).
pub fn fields_str(frame: &Value, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    collect(frame, name, &mut out);
    out.into_iter()
        .filter(|v| !v.is_object())
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}
