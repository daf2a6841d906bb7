//! The data plane under test, driven in-process: a [`Dataplane`] that lives on a
//! dedicated thread which has entered a lab namespace (the network namespace is
//! per thread, and `Dataplane::open` resolves port names in the caller's).
//!
//! The thread keeps draining control frames (IGMP/PIM the XDP program
//! redirected) into a list the test can wait on, and runs closures the test
//! sends it against the `Dataplane`.

use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use igmpsnoop_dataplane::{Dataplane, Options, PortCounters, XdpMode};

use crate::Lab;

type Job = Box<dyn FnOnce(&mut Dataplane) + Send>;

/// One control frame the switch thread received.
#[derive(Debug, Clone)]
pub struct ControlFrame {
    /// Ingress port index (bit in the port masks).
    pub port: usize,
    pub frame: Vec<u8>,
}

/// A `Dataplane` running on its own thread inside a network namespace. Dropping
/// it stops the thread, which drops the `Dataplane` (detaching everything) before
/// `drop` returns.
pub struct DataplaneThread {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    control: Arc<Mutex<Vec<ControlFrame>>>,
}

/// Enters network namespace `ns` (by its /run/netns name) on the calling thread.
fn enter_netns(ns: &str) -> Result<()> {
    let path = format!("/run/netns/{ns}");
    let f = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
    // SAFETY: setns on a valid namespace fd; affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns({path}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

impl DataplaneThread {
    /// Opens the data plane on every switch port of `lab` (p1..pN = index 0..N-1).
    pub fn open_switch(lab: &Lab, mode: XdpMode) -> Result<DataplaneThread> {
        Self::open(&lab.switch_ns(), &lab.ports(), mode)
    }

    /// Opens the data plane on `ports` inside namespace `ns`. The error is
    /// `Dataplane::open`'s own, its message unchanged.
    pub fn open(ns: &str, ports: &[String], mode: XdpMode) -> Result<DataplaneThread> {
        Self::open_with(ns, ports, mode, Options::default())
    }

    /// [`DataplaneThread::open`] with options (a pin directory, to adopt the
    /// state an earlier data plane left pinned).
    pub fn open_with(
        ns: &str,
        ports: &[String],
        mode: XdpMode,
        options: Options,
    ) -> Result<DataplaneThread> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let control = Arc::new(Mutex::new(Vec::new()));
        let sink = control.clone();
        let ns = ns.to_string();
        let ports = ports.to_vec();
        let thread = std::thread::Builder::new()
            .name(format!("dataplane-{ns}"))
            .spawn(move || {
                if let Err(e) = enter_netns(&ns) {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                let mut dp = match Dataplane::open_with(&ports, mode, &options) {
                    Ok(dp) => dp,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow!("{e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    let mut got = Vec::new();
                    dp.receive(|r| {
                        got.push(ControlFrame {
                            port: r.port,
                            frame: r.frame.to_vec(),
                        })
                    });
                    if !got.is_empty() {
                        sink.lock().unwrap().extend(got);
                    }
                    match job_rx.recv_timeout(Duration::from_millis(2)) {
                        Ok(job) => job(&mut dp),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                // `dp` drops here, on the thread that created it.
            })
            .context("spawning the dataplane thread")?;
        let opened = ready_rx
            .recv()
            .map_err(|_| anyhow!("dataplane thread died while opening"))?;
        let this = DataplaneThread {
            jobs: Some(job_tx),
            thread: Some(thread),
            control,
        };
        opened.map(|()| this)
    }

    /// Runs `f` on the dataplane thread and returns its result.
    pub fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Dataplane) -> R + Send + 'static,
    ) -> R {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .expect("jobs channel open")
            .send(Box::new(move |dp| {
                let _ = tx.send(f(dp));
            }))
            .expect("dataplane thread alive");
        rx.recv().expect("dataplane thread answered")
    }

    /// Counters of port `index`.
    pub fn counters(&self, index: usize) -> PortCounters {
        self.with(move |dp| dp.stats.port_counters(index))
            .expect("reading port counters")
    }

    /// Every control frame received so far.
    pub fn control_frames(&self) -> Vec<ControlFrame> {
        self.control.lock().unwrap().clone()
    }

    /// Waits until some received control frame satisfies `pred`; returns it.
    pub fn wait_control(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&ControlFrame) -> bool,
    ) -> Result<ControlFrame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(f) = self.control.lock().unwrap().iter().find(|f| pred(f)) {
                return Ok(f.clone());
            }
            if Instant::now() >= deadline {
                bail!(
                    "no matching control frame after {timeout:?}; got {} other(s)",
                    self.control.lock().unwrap().len()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for DataplaneThread {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The Python with scapy that tests craft frames with (`/work/main/.venv` style:
/// `<repo>/.venv/bin/python`, or `$IGMPSNOOP_PYTHON`).
pub fn scapy_python() -> std::path::PathBuf {
    match std::env::var_os("IGMPSNOOP_PYTHON") {
        Some(p) => p.into(),
        None => crate::repo_root().join(".venv/bin/python"),
    }
}

/// Runs a scapy snippet inside host `host`'s namespace (after
/// `from scapy.all import *`; `IFACE` is the host's interface) and returns stdout.
pub fn scapy(lab: &Lab, host: usize, code: &str) -> Result<String> {
    let py = scapy_python();
    let script = format!(
        "import logging\nlogging.getLogger('scapy').setLevel(logging.ERROR)\n\
         from scapy.all import *\nIFACE = {:?}\n{code}\n",
        crate::HOST_IFACE
    );
    lab.exec(&lab.host_ns(host), &[&py.to_string_lossy(), "-c", &script])
}
