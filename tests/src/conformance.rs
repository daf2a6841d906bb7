//! Helpers for the conformance tests: a long-lived scapy process in a host
//! namespace (importing scapy costs seconds on a busy machine, so one process
//! runs many snippets), and IGMP frame builders on top of it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd::ChildGuard;
use crate::lab::{HOST_IFACE, Lab};
use crate::switch::scapy_python;

/// The Python side of [`ScapyHost`]: imports scapy once, then runs the
/// snippets `<dir>/N.py` in order (shared globals) and answers each with
/// `<dir>/N.done` holding `ok` or the traceback.
const SERVER: &str = r#"
import os, sys, time, traceback, logging, threading
logging.getLogger('scapy').setLevel(logging.ERROR)
from scapy.all import *
from scapy.layers.igmp import *
D = sys.argv[1]
IFACE = sys.argv[2]
RA = [IPOption_Router_Alert()]

def igmp(mac, ip, dst, msg):
    """One IGMP message: TTL 1, Router Alert, checksums computed by scapy."""
    sendp(Ether(src=mac) / IP(src=ip, dst=dst, ttl=1, options=RA) / msg,
          iface=IFACE, verbose=False)

def v3(mac, ip, recs):
    """An IGMPv3 report to 224.0.0.22 with records (rtype, group, [sources])."""
    igmp(mac, ip, '224.0.0.22', IGMPv3_MR(records=[
        IGMPv3_MR_Group(rtype=t, maddr=g, srcaddrs=list(s)) for (t, g, s) in recs]))

def v3_query(ip, group='0.0.0.0', mrcode=10, qrv=2, qqic=2, mac=None):
    dst = '224.0.0.1' if group == '0.0.0.0' else group
    igmp(mac or get_if_hwaddr(IFACE), ip, dst,
         IGMPv3_MQ(mrcode=mrcode, gaddr=group, qrv=qrv, qqic=qqic))

open(os.path.join(D, 'ready'), 'w').close()
n = 0
while True:
    p = os.path.join(D, '%d.py' % n)
    if not os.path.exists(p):
        time.sleep(0.005)
        continue
    try:
        exec(open(p).read(), globals())
        r = 'ok'
    except Exception:
        r = traceback.format_exc()
    tmp = os.path.join(D, '%d.tmp' % n)
    with open(tmp, 'w') as f:
        f.write(r)
    os.rename(tmp, os.path.join(D, '%d.done' % n))
    n += 1
"#;

/// A scapy process in host `host`'s namespace that runs snippets on demand.
/// In snippets: `igmp(mac, ip, dst, msg)`, `v3(mac, ip, [(rtype, group,
/// [sources])])`, `v3_query(ip, group=..., mrcode=, qrv=, qqic=)`, `IFACE`,
/// and everything of `scapy.all` / `scapy.layers.igmp`. Killed on drop.
pub struct ScapyHost {
    _child: ChildGuard,
    dir: PathBuf,
    next: usize,
}

impl ScapyHost {
    /// Starts the process and waits (up to 30 s) until scapy is imported.
    pub fn start(lab: &Lab, host: usize) -> Result<ScapyHost> {
        let dir = lab.scratch_file(&format!("scapy-h{host}"));
        std::fs::create_dir_all(&dir)?;
        let py = scapy_python().to_string_lossy().into_owned();
        let dir_s = dir.to_string_lossy().into_owned();
        let mut child = lab.spawn(&lab.host_ns(host), &[&py, "-c", SERVER, &dir_s, HOST_IFACE])?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !dir.join("ready").exists() {
            if !child.is_running() {
                bail!("scapy server exited: {}", child.stderr().trim());
            }
            if Instant::now() >= deadline {
                bail!("scapy server not ready after 30 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(ScapyHost {
            _child: child,
            dir,
            next: 0,
        })
    }

    /// Runs `code` (Python) and returns once it finished; errors with the
    /// traceback if it raised.
    pub fn run(&mut self, code: &str) -> Result<()> {
        let n = self.next;
        self.next += 1;
        let tmp = self.dir.join(format!("{n}.py.tmp"));
        std::fs::write(&tmp, code)?;
        std::fs::rename(&tmp, self.dir.join(format!("{n}.py")))?;
        let done = self.dir.join(format!("{n}.done"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = std::fs::read_to_string(&done) {
                if r == "ok" {
                    return Ok(());
                }
                bail!("scapy snippet failed:\n{code}\n{r}");
            }
            if Instant::now() >= deadline {
                bail!("scapy snippet did not finish in 30 s:\n{code}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Like [`ScapyHost::run`], with context on error.
    pub fn must(&mut self, code: &str) {
        self.run(code)
            .context("scapy")
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
}
