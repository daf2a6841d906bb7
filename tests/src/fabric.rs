//! The `Fabric` guard: several switches cooperating through the protocol.
//! Each switch is a [`Lab`] (its own switch namespace and hosts), and veth
//! links between switch namespaces join them into one layer-2 domain. The
//! links live in the switch namespaces, so the labs' own cleanup (on drop,
//! during a panic unwind, or at exit) removes them too.
//!
//! Naming: switches are numbered from 1. Switch `s` has hosts
//! `(s-1)*HOST_STRIDE+1 ..`, so host numbers (and with them addresses and
//! MACs) are unique across the fabric; host ports keep the lab's `p<i>`
//! names. The port of switch `s` that leads to switch `t` is `s<t>`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd::{netns_command, output_ok, run};
use crate::daemon::Switch;
use crate::lab::Lab;

/// Host numbers reserved per switch.
pub const HOST_STRIDE: usize = 10;

/// Switches (labs) and the links between them.
pub struct Fabric {
    switches: Vec<Lab>,
    links: Vec<(usize, usize)>,
}

impl Fabric {
    /// Builds `hosts_per_switch.len()` switches, switch `s` with
    /// `hosts_per_switch[s-1]` hosts, and one veth link per `(s, t)` pair of
    /// `links` (1-based switch numbers).
    pub fn new(hosts_per_switch: &[usize], links: &[(usize, usize)]) -> Result<Fabric> {
        if hosts_per_switch.iter().any(|&n| n == 0 || n >= HOST_STRIDE) {
            bail!("hosts per switch must be 1..{HOST_STRIDE}: {hosts_per_switch:?}");
        }
        let mut switches = Vec::new();
        for (i, &n) in hosts_per_switch.iter().enumerate() {
            // A lab that fails drops the ones built before it.
            switches.push(Lab::with_hosts(i * HOST_STRIDE + 1, n)?);
        }
        let fabric = Fabric {
            switches,
            links: links.to_vec(),
        };
        for &(a, b) in links {
            fabric.link(a, b)?;
        }
        Ok(fabric)
    }

    /// `n` switches in a chain 1—2—…—n, `hosts` hosts on each.
    pub fn chain(n: usize, hosts: usize) -> Result<Fabric> {
        let links: Vec<_> = (1..n).map(|s| (s, s + 1)).collect();
        Fabric::new(&vec![hosts; n], &links)
    }

    /// A root switch 1 with `leaves` leaf switches 2..=leaves+1, `hosts`
    /// hosts on each.
    pub fn tree(leaves: usize, hosts: usize) -> Result<Fabric> {
        let links: Vec<_> = (2..=leaves + 1).map(|s| (1, s)).collect();
        Fabric::new(&vec![hosts; leaves + 1], &links)
    }

    /// One veth pair between the switch namespaces of `a` and `b`, tuned as
    /// the lab tunes its host links (GRO on, TX checksum offload off).
    fn link(&self, a: usize, b: usize) -> Result<()> {
        let (na, nb) = (self.lab(a).switch_ns(), self.lab(b).switch_ns());
        let (pa, pb) = (self.link_port(a, b), self.link_port(b, a));
        let (ma, mb) = (link_mac(a, b), link_mac(b, a));
        run(&[
            "ip", "link", "add", &pa, "netns", &na, "address", &ma, "type", "veth", "peer", "name",
            &pb, "netns", &nb, "address", &mb,
        ])
        .with_context(|| format!("linking switch {a} and switch {b}"))?;
        // Both ends tuned before either comes up: a veth decides whether it
        // takes XDP redirects (ndo_xdp_xmit) when it opens, from whether its
        // peer wants GRO then; a peer that turns GRO on later is not seen,
        // and frames redirected into the link vanish without a counter.
        for (ns, port) in [(&na, &pa), (&nb, &pb)] {
            output_ok(netns_command(
                ns,
                &["ethtool", "-K", port, "gro", "on", "tx", "off"],
            ))?;
        }
        for (ns, port) in [(&na, &pa), (&nb, &pb)] {
            run(&["ip", "-n", ns, "link", "set", port, "up"])?;
        }
        Ok(())
    }

    /// Switch numbers, `1..=n`.
    pub fn switches(&self) -> RangeInclusive<usize> {
        1..=self.switches.len()
    }

    /// Switch `s`'s lab: its namespace, its hosts, scratch files.
    pub fn lab(&self, s: usize) -> &Lab {
        assert!(
            self.switches().contains(&s),
            "no switch {s} in a fabric of {}",
            self.switches.len()
        );
        &self.switches[s - 1]
    }

    /// The switch host `host` hangs off.
    pub fn switch_of(&self, host: usize) -> usize {
        let s = (host - 1) / HOST_STRIDE + 1;
        assert!(
            self.switches().contains(&s) && self.lab(s).hosts().contains(&host),
            "no host {host} in this fabric"
        );
        s
    }

    /// The lab holding host `host` (for `Receiver`, `send`, `Capture`).
    pub fn host_lab(&self, host: usize) -> &Lab {
        self.lab(self.switch_of(host))
    }

    /// Every host of the fabric, switch by switch.
    pub fn hosts(&self) -> Vec<usize> {
        self.switches.iter().flat_map(|l| l.hosts()).collect()
    }

    /// Switches linked to `s`.
    pub fn neighbours(&self, s: usize) -> Vec<usize> {
        self.links
            .iter()
            .filter_map(|&(a, b)| match (a == s, b == s) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// The port of switch `s` leading to switch `t`, `s<t>`.
    pub fn link_port(&self, s: usize, t: usize) -> String {
        assert!(
            self.links.contains(&(s, t)) || self.links.contains(&(t, s)),
            "no link between switch {s} and switch {t}"
        );
        format!("s{t}")
    }

    /// Every port of switch `s`: host ports, then links.
    pub fn ports(&self, s: usize) -> Vec<String> {
        let mut ports = self.lab(s).ports();
        ports.extend(self.neighbours(s).into_iter().map(|t| self.link_port(s, t)));
        ports
    }

    /// `--port ...` for every port of switch `s`.
    pub fn port_args(&self, s: usize) -> Vec<String> {
        self.ports(s)
            .into_iter()
            .flat_map(|p| ["--port".to_string(), p])
            .collect()
    }

    /// Runs `igmpsnoop run` on every port of switch `s`, with `extra`
    /// arguments; socket and pin directory are the lab's own.
    pub fn start_igmpsnoop(&self, s: usize, extra: &[&str]) -> Result<Switch> {
        let mut args = self.port_args(s);
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Switch::start(self.lab(s), &args).with_context(|| format!("igmpsnoop on switch {s}"))
    }

    /// Makes switch `s` a Linux bridge `br0` over all its ports, with
    /// `options` for `ip link add br0 type bridge` (e.g. `mcast_snooping 1`)
    /// and `addr` on br0 when given (the bridge's querier source with
    /// `mcast_query_use_ifaddr 1`). It goes with the namespace.
    pub fn start_bridge(&self, s: usize, options: &[&str], addr: Option<Ipv4Addr>) -> Result<()> {
        let lab = self.lab(s);
        let ns = lab.switch_ns();
        let mut add = vec!["ip", "-n", &ns, "link", "add", "br0", "type", "bridge"];
        add.extend_from_slice(options);
        run(&add)?;
        for p in self.ports(s) {
            run(&["ip", "-n", &ns, "link", "set", &p, "master", "br0"])?;
        }
        if let Some(a) = addr {
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{a}/24"),
                "dev",
                "br0",
            ])?;
        }
        run(&["ip", "-n", &ns, "link", "set", "br0", "up"])?;
        Ok(())
    }

    /// `bridge -d -j mdb show` of switch `s`'s bridge.
    fn bridge_mdb(&self, s: usize) -> Result<Value> {
        let out = run(&[
            "bridge",
            "-n",
            &self.lab(s).switch_ns(),
            "-d",
            "-j",
            "mdb",
            "show",
        ])?;
        let v: Value = serde_json::from_str(&out).context("bridge -j mdb show")?;
        Ok(v[0].clone())
    }

    /// Router ports the Linux bridge on switch `s` has (learned or static).
    pub fn bridge_router_ports(&self, s: usize) -> Result<BTreeSet<String>> {
        let mdb = self.bridge_mdb(s)?;
        // {"router": {"br0": [{"port": "s1", ...}, ...]}}
        Ok(mdb["router"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(|r| r["port"].as_str().map(str::to_string))
            .collect())
    }

    /// Ports the Linux bridge on switch `s` lists for `group` (bridge ports
    /// only, not br0 itself).
    pub fn bridge_group_ports(&self, s: usize, group: Ipv4Addr) -> Result<BTreeSet<String>> {
        let mdb = self.bridge_mdb(s)?;
        let g = group.to_string();
        Ok(mdb["mdb"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["grp"] == g.as_str() && e["port"] != "br0")
            .filter_map(|e| e["port"].as_str().map(str::to_string))
            .collect())
    }
}

/// MAC of switch `s`'s port to switch `t`: 02:00:00:02:<s>:<t>.
fn link_mac(s: usize, t: usize) -> String {
    format!("02:00:00:02:{:02x}:{:02x}", s as u8, t as u8)
}
