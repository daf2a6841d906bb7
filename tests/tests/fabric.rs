//! Fabrics of switches cooperating through the protocol: igmpsnoop ↔
//! igmpsnoop and igmpsnoop ↔ Linux bridge (mcast_snooping 1), in chains and
//! in a small tree (a root with two leaves), kernel hosts on every switch.
//!
//! Every test checks what a user of such a fabric would:
//! - one querier elected, the lowest address (`igmpsnoop querier --json` on
//!   every igmpsnoop switch; a bridge's queries as seen on the wire, since
//!   this iproute2 does not print the bridge's querier state);
//! - on every switch the port towards the querier, and only it, is a router
//!   port (`igmpsnoop routers --json`, `bridge -j mdb show`);
//! - group tables along the reports' way to the querier;
//! - no host on an igmpsnoop switch ever receives another host's report or
//!   leave (reports go towards routers only, RFC 4541 §2.1.1);
//! - data from every host reaches every member (counted at the member's
//!   socket, and on its wire) and no non-member (on its wire);
//! - a leave on one switch cuts no member on another;
//! - the querier switch killed, the next lowest takes over once the other
//!   querier present interval has passed, and memberships live on.
//!
//! Timers are short (query interval 2 s, response 1 s, robustness 2: other
//! querier present interval 4.5 s, group membership interval 5 s) and every
//! wait is a poll with a generous timeout: nothing asserts on speed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::Duration;

use igmpsnoop_tests::{
    Capture, Fabric, HOST_IFACE, Receiver, SendOpts, Switch, field_str, igmpsnoop_bin,
    mcast_tool_bin, poll_until, require_root_and_tools, send_with,
};

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const UDP: u16 = 5000;
/// Datagrams each sender sends per round.
const BURST: u64 = 20;
/// How long a fabric may take to settle into an expected state.
const SETTLE: Duration = Duration::from_secs(30);
/// Group membership interval with the timers below.
const GMI: Duration = Duration::from_secs(5);

/// igmpsnoop's timers and options for every fabric test. Unregistered
/// groups go to router ports only: a switch with no member left must not
/// flood a group to its hosts.
const SNOOP_ARGS: &[&str] = &[
    "--querier",
    "--query-interval",
    "2s",
    "--query-response-interval",
    "1s",
    "--robustness",
    "2",
    "--last-member-interval",
    "500ms",
    "--flood-unregistered",
    "false",
    // Forwarding must stop when a daemon is killed: a dead switch.
    "--no-pin",
];

/// The same timers for a Linux bridge (centiseconds).
fn bridge_options(querier: bool) -> Vec<&'static str> {
    vec![
        "mcast_snooping",
        "1",
        "mcast_igmp_version",
        "3",
        "mcast_query_use_ifaddr",
        "1",
        "mcast_querier",
        if querier { "1" } else { "0" },
        "mcast_query_interval",
        "200",
        "mcast_query_response_interval",
        "100",
        "mcast_querier_interval",
        "450",
        "mcast_membership_interval",
        "500",
        "mcast_startup_query_interval",
        "100",
        "mcast_last_member_interval",
        "50",
    ]
}

fn require() {
    require_root_and_tools(&["tcpdump", "tshark", "bridge"]);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build -p igmpsnoop-control -p igmpsnoop-tests --bins)"
        );
    }
}

/// Querier candidate addresses: 10.77.0.<last>, above every host.
fn addr(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, last)
}

fn host_ip(host: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, host as u8)
}

fn set(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

/// What runs on a switch.
#[derive(Clone, Copy)]
enum Spec {
    Snoop,
    Bridge { querier: bool },
}

enum Node {
    Snoop(Switch),
    Bridge { querier: bool },
    Dead,
}

/// A running fabric: its switches, kernel hosts capturing everything that
/// reaches them, member hosts joined to G, and what each round must deliver.
struct Net {
    fabric: Fabric,
    nodes: Vec<Node>,
    addrs: Vec<Ipv4Addr>,
    captures: BTreeMap<usize, Capture>,
    receivers: BTreeMap<usize, Receiver>,
    members: BTreeSet<usize>,
    /// (tag, sender, members then) of every round sent.
    rounds: Vec<(String, usize, BTreeSet<usize>)>,
    /// When the election last settled (seconds since the epoch, as tshark's
    /// frame.time_epoch).
    settled_at: f64,
}

impl Net {
    /// Starts captures on every host, then every switch (`specs[s-1]` with
    /// querier address `addrs[s-1]`), then joins `members` to G.
    fn start(fabric: Fabric, specs: &[Spec], addrs: &[Ipv4Addr], members: &[usize]) -> Net {
        let mut captures = BTreeMap::new();
        for h in fabric.hosts() {
            let lab = fabric.host_lab(h);
            let filter = format!("not src host {} and (igmp or udp port {UDP})", host_ip(h));
            let cap = Capture::start(lab, &lab.host_ns(h), HOST_IFACE, &filter).unwrap();
            captures.insert(h, cap);
        }
        let mut nodes = Vec::new();
        for (i, (spec, a)) in specs.iter().zip(addrs).enumerate() {
            let s = i + 1;
            nodes.push(match *spec {
                Spec::Snoop => {
                    let qa = a.to_string();
                    let mut args = SNOOP_ARGS.to_vec();
                    args.extend(["--querier-address", qa.as_str()]);
                    Node::Snoop(fabric.start_igmpsnoop(s, &args).unwrap())
                }
                Spec::Bridge { querier } => {
                    fabric
                        .start_bridge(s, &bridge_options(querier), Some(*a))
                        .unwrap();
                    Node::Bridge { querier }
                }
            });
        }
        let mut net = Net {
            fabric,
            nodes,
            addrs: addrs.to_vec(),
            captures,
            receivers: BTreeMap::new(),
            members: BTreeSet::new(),
            rounds: Vec::new(),
            settled_at: 0.0,
        };
        for &m in members {
            let r = Receiver::start(net.fabric.host_lab(m), m, &[G], UDP).unwrap();
            net.receivers.insert(m, r);
            net.members.insert(m);
        }
        net
    }

    fn alive(&self, s: usize) -> bool {
        !matches!(self.nodes[s - 1], Node::Dead)
    }

    fn live_switches(&self) -> Vec<usize> {
        self.fabric.switches().filter(|&s| self.alive(s)).collect()
    }

    fn live_hosts(&self) -> Vec<usize> {
        let live = self.live_switches();
        self.fabric
            .hosts()
            .into_iter()
            .filter(|&h| live.contains(&self.fabric.switch_of(h)))
            .collect()
    }

    /// The live switch that must win the election: the lowest address
    /// among those that query.
    fn querier(&self) -> usize {
        self.live_switches()
            .into_iter()
            .filter(|&s| match self.nodes[s - 1] {
                Node::Snoop(_) => true,
                Node::Bridge { querier } => querier,
                Node::Dead => false,
            })
            .min_by_key(|&s| self.addrs[s - 1])
            .expect("a querier candidate is alive")
    }

    /// Each live switch's neighbour towards the querier (BFS over live links).
    fn parents(&self) -> BTreeMap<usize, usize> {
        let q = self.querier();
        let mut parents = BTreeMap::new();
        let mut queue = VecDeque::from([q]);
        let mut seen = BTreeSet::from([q]);
        while let Some(s) = queue.pop_front() {
            for t in self.fabric.neighbours(s) {
                if self.alive(t) && seen.insert(t) {
                    parents.insert(t, s);
                    queue.push_back(t);
                }
            }
        }
        parents
    }

    /// Switches in the subtree below `s` (towards the querier's far side), `s` included.
    fn subtree(&self, s: usize, parents: &BTreeMap<usize, usize>) -> BTreeSet<usize> {
        let mut out = BTreeSet::from([s]);
        let mut grew = true;
        while grew {
            grew = false;
            for (&child, parent) in parents {
                if out.contains(parent) && out.insert(child) {
                    grew = true;
                }
            }
        }
        out
    }

    /// Router ports switch `s` must have: the link towards the querier.
    fn expected_routers(&self, s: usize) -> BTreeSet<String> {
        let parents = self.parents();
        set(parents.get(&s).map(|&p| self.fabric.link_port(s, p)))
    }

    /// Ports switch `s` must list for G: its member hosts, and each link to
    /// a child whose subtree holds a member (reports travel towards the
    /// querier). Also the ports it may list besides: a Linux bridge floods
    /// IGMPv3 reports (to 224.0.0.22) to every port, so links from or to a
    /// bridge may carry reports away from the querier.
    fn expected_group_ports(&self, s: usize) -> (BTreeSet<String>, BTreeSet<String>) {
        let parents = self.parents();
        let lab = self.fabric.lab(s);
        let mut must = set(self
            .members
            .iter()
            .filter(|&&m| self.fabric.switch_of(m) == s)
            .map(|&m| lab.port(m)));
        for (&child, &parent) in &parents {
            let sub = self.subtree(child, &parents);
            let has_member = self
                .members
                .iter()
                .any(|&m| sub.contains(&self.fabric.switch_of(m)));
            if parent == s && has_member {
                must.insert(self.fabric.link_port(s, child));
            }
        }
        let is_bridge = |t: usize| matches!(self.nodes[t - 1], Node::Bridge { .. });
        let may = set(self
            .fabric
            .neighbours(s)
            .into_iter()
            .filter(|&t| self.alive(t) && (is_bridge(s) || is_bridge(t)))
            .map(|t| self.fabric.link_port(s, t)));
        (must, may)
    }

    /// Polls `check` on every live switch until it holds everywhere.
    fn wait_all(&self, what: &str, check: impl Fn(usize) -> Result<(), String>) {
        let mut last = String::new();
        let ok = poll_until(SETTLE, || {
            let errs: Vec<String> = self
                .live_switches()
                .into_iter()
                .filter_map(|s| check(s).err().map(|e| format!("switch {s}: {e}")))
                .collect();
            last = errs.join("; ");
            errs.is_empty().then_some(())
        });
        assert!(ok.is_some(), "{what} not reached within {SETTLE:?}: {last}");
    }

    /// Every igmpsnoop switch names the expected querier; only that one
    /// says it is querier.
    fn wait_election(&self) {
        let q = self.querier();
        let want = self.addrs[q - 1].to_string();
        self.wait_all("querier election", |s| {
            let Node::Snoop(sw) = &self.nodes[s - 1] else {
                return Ok(());
            };
            let v = sw.json(&["querier"]).map_err(|e| e.to_string())?;
            let row = &v[0];
            let state = if s == q { "querier" } else { "non-querier" };
            if row["querier_address"] == want.as_str() && row["state"] == state {
                Ok(())
            } else {
                Err(format!("want {state} of {want}, got {row}"))
            }
        });
    }

    /// Every switch's router ports are exactly the link towards the querier.
    fn wait_routers(&self) {
        self.wait_all("router ports", |s| {
            let got = match &self.nodes[s - 1] {
                Node::Snoop(sw) => {
                    let v = sw.json(&["routers"]).map_err(|e| e.to_string())?;
                    let rows = v.as_array().cloned().unwrap_or_default();
                    // IGMP's router ports (MLD keeps its own; the lab has no IPv6).
                    set(rows
                        .iter()
                        .filter(|r| r["family"] == "ipv4")
                        .filter_map(|r| r["port"].as_str().map(str::to_string)))
                }
                Node::Bridge { .. } => self
                    .fabric
                    .bridge_router_ports(s)
                    .map_err(|e| e.to_string())?,
                Node::Dead => return Ok(()),
            };
            let want = self.expected_routers(s);
            (got == want)
                .then_some(())
                .ok_or(format!("router ports {got:?}, want {want:?}"))
        });
    }

    /// Every switch lists G on the ports the members' reports reached.
    fn wait_tables(&self) {
        self.wait_all("group tables", |s| {
            let got = match &self.nodes[s - 1] {
                Node::Snoop(sw) => sw.group_ports(G).map_err(|e| e.to_string())?,
                Node::Bridge { .. } => self
                    .fabric
                    .bridge_group_ports(s, G)
                    .map_err(|e| e.to_string())?,
                Node::Dead => return Ok(()),
            };
            let (must, may) = self.expected_group_ports(s);
            let fits =
                must.is_subset(&got) && got.iter().all(|p| must.contains(p) || may.contains(p));
            fits.then_some(())
                .ok_or(format!("{G} on {got:?}, want {must:?} (and maybe {may:?})"))
        });
    }

    /// Every live host sends a burst to G tagged `<tag>-h<host>`; then each
    /// member's wire shows every other sender's burst in full, and no
    /// non-member's wire shows any of it.
    fn round(&mut self, tag: &str) {
        let senders = self.live_hosts();
        for &h in &senders {
            let mut o = SendOpts::new(G, UDP, BURST);
            o.tag = format!("{tag}-h{h}");
            send_with(self.fabric.host_lab(h), h, &o).unwrap();
            self.rounds.push((o.tag, h, self.members.clone()));
        }
        let mut errs = Vec::new();
        for &h in &senders {
            let want = |sender: usize| {
                if self.members.contains(&h) && sender != h {
                    BURST
                } else {
                    0
                }
            };
            let total: u64 = senders.iter().map(|&s| want(s)).sum();
            let filter = format!("udp.dstport == {UDP} && frame contains \"tag={tag}-\"");
            let cap = &self.captures[&h];
            // Members: wait for the full count; non-members: the bursts are
            // all sent, give stragglers a moment.
            let frames = if total > 0 {
                cap.wait_for(&filter, total as usize, Duration::from_secs(10))
                    .unwrap_or_else(|_| cap.decode(Some(&filter)).unwrap())
            } else {
                std::thread::sleep(Duration::from_millis(300));
                cap.decode(Some(&filter)).unwrap()
            };
            let mut by_sender: BTreeMap<usize, u64> = BTreeMap::new();
            for f in &frames {
                let src: Ipv4Addr = field_str(f, "ip.src").unwrap().parse().unwrap();
                *by_sender.entry(usize::from(src.octets()[3])).or_default() += 1;
            }
            for &s in &senders {
                let got = by_sender.get(&s).copied().unwrap_or(0);
                if got != want(s) {
                    errs.push(format!(
                        "host {h} got {got} frames of {tag} from host {s}, want {}",
                        want(s)
                    ));
                }
            }
        }
        assert!(errs.is_empty(), "round {tag}: {}", errs.join("; "));
    }

    /// No host of an igmpsnoop switch received another host's report or
    /// leave: only queries reach hosts.
    fn check_reports_isolated(&self) {
        let mut errs = Vec::new();
        for (&h, cap) in &self.captures {
            if !matches!(self.nodes[self.fabric.switch_of(h) - 1], Node::Snoop(_)) {
                continue;
            }
            let frames = cap.decode(Some("igmp && igmp.type != 0x11")).unwrap();
            for f in &frames {
                errs.push(format!(
                    "host {h} received IGMP type {} from {}",
                    field_str(f, "igmp.type").unwrap_or_default(),
                    field_str(f, "ip.src").unwrap_or_default()
                ));
            }
        }
        assert!(
            errs.is_empty(),
            "reports leaked to hosts: {}",
            errs.join("; ")
        );
    }

    /// Sources of the general queries host `h` receives from now on during
    /// `window`.
    fn query_sources(&self, h: usize, window: Duration) -> BTreeSet<String> {
        let lab = self.fabric.host_lab(h);
        let mut cap = Capture::start(lab, &lab.host_ns(h), HOST_IFACE, "igmp").unwrap();
        std::thread::sleep(window);
        cap.stop_and_decode()
            .unwrap()
            .iter()
            .filter(|f| {
                field_str(f, "igmp.type").as_deref() == Some("0x11")
                    && field_str(f, "igmp.maddr").as_deref() == Some("0.0.0.0")
            })
            .filter_map(|f| field_str(f, "ip.src"))
            .collect()
    }

    fn leave(&mut self, h: usize) {
        self.receivers.get_mut(&h).unwrap().leave().unwrap();
        self.members.remove(&h);
    }

    fn rejoin(&mut self, h: usize) {
        self.receivers.get_mut(&h).unwrap().rejoin().unwrap();
        self.members.insert(h);
    }

    /// The switch dies: igmpsnoop by SIGKILL (unpinned: its forwarding goes
    /// with it), a bridge by deleting br0. Its hosts leave the test.
    fn kill(&mut self, s: usize) {
        match std::mem::replace(&mut self.nodes[s - 1], Node::Dead) {
            Node::Snoop(mut sw) => {
                sw.kill9().unwrap();
            }
            Node::Bridge { .. } => {
                let ns = self.fabric.lab(s).switch_ns();
                igmpsnoop_tests::run(&["ip", "-n", &ns, "link", "del", "br0"]).unwrap();
            }
            Node::Dead => {}
        }
        for h in self.fabric.lab(s).hosts() {
            self.members.remove(&h);
            self.receivers.remove(&h);
        }
    }

    /// Stops every receiver and checks, at the sockets, that every member
    /// got every burst of every round sent while it was a member.
    fn finish(mut self) {
        let mut errs = Vec::new();
        for (h, r) in std::mem::take(&mut self.receivers) {
            let report = r.finish_report().unwrap();
            let tags = report
                .by_tag
                .get(&G.to_string())
                .cloned()
                .unwrap_or_default();
            for (tag, sender, members) in &self.rounds {
                if members.contains(&h) && *sender != h {
                    let got = tags.get(tag).copied().unwrap_or(0);
                    if got != BURST {
                        errs.push(format!(
                            "host {h}'s socket got {got} of {tag}, want {BURST}"
                        ));
                    }
                }
            }
        }
        assert!(errs.is_empty(), "{}", errs.join("; "));
    }

    /// Everything settled: election, router ports, tables.
    fn wait_settled(&mut self) {
        self.wait_election();
        self.settled_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        self.wait_routers();
        self.wait_tables();
    }

    /// Since the election settled, every query any host received came from
    /// the elected querier, or from 0.0.0.0 (a snooping switch's proxy
    /// query, RFC 4541 §2.1.1): a switch that lost the election sends no
    /// query of its own (RFC 3376 §6.6.2: non-queriers do not query).
    fn check_query_sources(&self) {
        let q = self.addrs[self.querier() - 1].to_string();
        let filter = format!(
            "igmp.type == 0x11 && frame.time_epoch >= {}",
            self.settled_at
        );
        let mut errs = Vec::new();
        for h in self.live_hosts() {
            for f in self.captures[&h].decode(Some(&filter)).unwrap() {
                let src = field_str(&f, "ip.src").unwrap_or_default();
                if src != q && src != "0.0.0.0" {
                    errs.push(format!(
                        "host {h} got a query for {} from {src}",
                        field_str(&f, "igmp.maddr").unwrap_or_default()
                    ));
                }
            }
        }
        assert!(
            errs.is_empty(),
            "queries not from the querier {q}: {}",
            errs.join("; ")
        );
    }

    /// Kills the querier and checks the next one takes over, not before the
    /// other querier present interval it announced, and that memberships
    /// outlive a group membership interval under the new querier.
    fn querier_dies(&mut self) {
        self.check_query_sources();
        let old = self.querier();
        self.kill(old);
        let new = self.querier();
        assert_ne!(new, old);
        if let Node::Snoop(sw) = &self.nodes[new - 1] {
            let v = sw.json(&["querier"]).unwrap();
            assert_eq!(
                v[0]["state"], "non-querier",
                "switch {new} took over at once, before the other querier present interval: {v}"
            );
        }
        self.wait_settled();
        std::thread::sleep(GMI + Duration::from_secs(1));
        self.wait_tables();
    }
}

/// A—B—C, all igmpsnoop; C (lowest address) is querier, at the chain's end,
/// so that B takes over when it dies.
#[test]
fn chain_of_igmpsnoop_switches() {
    require();
    let fabric = Fabric::chain(3, 2).unwrap();
    let specs = [Spec::Snoop; 3];
    let addrs = [addr(253), addr(252), addr(251)];
    let mut net = Net::start(fabric, &specs, &addrs, &[1, 11, 21]);
    net.wait_settled();
    net.round("r1");
    // A member at the far end leaves: B and C members keep receiving.
    net.leave(1);
    net.wait_tables();
    net.round("r2");
    net.rejoin(1);
    net.wait_tables();
    net.querier_dies();
    net.round("r3");
    net.check_reports_isolated();
    net.check_query_sources();
    net.finish();
}

/// A root igmpsnoop with two igmpsnoop leaves; leaf 2 is querier, so
/// traffic crosses the root both ways.
#[test]
fn tree_of_igmpsnoop_switches() {
    require();
    let fabric = Fabric::tree(2, 2).unwrap();
    let specs = [Spec::Snoop; 3];
    let addrs = [addr(252), addr(251), addr(253)];
    let mut net = Net::start(fabric, &specs, &addrs, &[1, 11, 21]);
    net.wait_settled();
    net.round("r1");
    net.leave(21);
    net.wait_tables();
    net.round("r2");
    net.rejoin(21);
    net.wait_tables();
    // Leaf 2 dies: the root takes over.
    net.querier_dies();
    net.round("r3");
    net.check_reports_isolated();
    net.check_query_sources();
    net.finish();
}

/// igmpsnoop A (querier) — Linux bridge B (querier on, higher address) —
/// igmpsnoop C. The bridge must fall silent, pass reports towards A, and
/// take over when A dies.
#[test]
fn chain_through_a_linux_bridge() {
    require();
    let fabric = Fabric::chain(3, 2).unwrap();
    let specs = [Spec::Snoop, Spec::Bridge { querier: true }, Spec::Snoop];
    let addrs = [addr(251), addr(252), addr(253)];
    let mut net = Net::start(fabric, &specs, &addrs, &[1, 11, 21]);
    net.wait_settled();
    // Settled, only A queries: the bridge lost the election.
    let seen = net.query_sources(12, Duration::from_secs(5));
    assert_eq!(
        seen,
        set([addr(251).to_string()]),
        "general query sources at the bridge's host"
    );
    net.round("r1");
    net.leave(21);
    net.wait_tables();
    net.round("r2");
    net.rejoin(21);
    net.wait_tables();
    // A dies: the bridge queries, C follows it.
    net.querier_dies();
    let seen = net.query_sources(22, Duration::from_secs(5));
    assert_eq!(
        seen,
        set([addr(252).to_string()]),
        "general query sources after A died"
    );
    net.round("r3");
    net.check_reports_isolated();
    net.check_query_sources();
    net.finish();
}

/// A root igmpsnoop with a Linux bridge leaf (the querier, lowest address)
/// and an igmpsnoop leaf: both igmpsnoop switches defer to the bridge.
#[test]
fn tree_with_a_linux_bridge_querier() {
    require();
    let fabric = Fabric::tree(2, 2).unwrap();
    let specs = [Spec::Snoop, Spec::Bridge { querier: true }, Spec::Snoop];
    let addrs = [addr(252), addr(251), addr(253)];
    let mut net = Net::start(fabric, &specs, &addrs, &[1, 11, 21]);
    net.wait_settled();
    let seen = net.query_sources(22, Duration::from_secs(5));
    assert_eq!(
        seen,
        set([addr(251).to_string()]),
        "general query sources at leaf 3"
    );
    net.round("r1");
    net.leave(1);
    net.wait_tables();
    net.round("r2");
    net.rejoin(1);
    net.wait_tables();
    // The bridge dies: the root takes over.
    net.querier_dies();
    net.round("r3");
    net.check_reports_isolated();
    net.check_query_sources();
    net.finish();
}
