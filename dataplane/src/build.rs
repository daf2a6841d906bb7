//! Building a [`Dataplane`]: load the program (adopting pinned maps),
//! attach it to the ports, fill the port table, open the sockets.

use std::{collections::HashMap as StdHashMap, path::PathBuf};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, DevMapHash, HashMap, MapData, PerCpuArray, XskMap},
    programs::{Xdp, links::FdLink},
};
use igmpsnoop_common::{MAX_QUEUES, PortConf};

use crate::{
    Dataplane, EgressWatch, Error, Forwarding, Initial, PortInfo, Result, Stats, XdpMode,
    XskSocket, attach, fast_join::FastJoins, forwarding, leave_hosts::LeaveHosts, pin::PinDir, tc,
    usable_vlans, write_port_conf,
};

impl Dataplane {
    pub(crate) fn build(
        resolved: &[(String, u32)],
        capacity: u32,
        mode: XdpMode,
        pins: Option<&PinDir>,
        created_links: &mut Vec<PathBuf>,
        initial: &Initial,
    ) -> Result<Self> {
        let mut ebpf = load(pins, capacity)?;
        let adopting = pins.is_some_and(PinDir::existed);
        let mut port_map: HashMap<MapData, u32, PortConf> = take(&mut ebpf, "PORTS")?;
        let mut xsks: XskMap<MapData> = take(&mut ebpf, "XSKS")?;
        let ifindexes: Vec<u32> = resolved.iter().map(|(_, i)| *i).collect();

        // The previous run's ports: ifindex -> (index, flags).
        let old_ports: StdHashMap<u32, PortConf> = port_map.iter().filter_map(|e| e.ok()).collect();

        let program = xdp_program(&mut ebpf)?;
        let (ports, links) =
            attach::attach_ports(program, resolved, mode, &old_ports, pins, created_links)?;
        if let Some(p) = pins {
            attach::detach_departed(p, &ifindexes);
            attach::pin_program(program, p)?;
        }

        // The port table: exactly our ports now. Counters are per port index,
        // so they restart when indexes moved.
        let renumbered = renumbered(&old_ports, &ifindexes);
        remove_departed(&mut port_map, &old_ports, &ifindexes);
        let maps = forwarding_maps(&mut ebpf)?;
        let fast_joins = FastJoins::new(take_raw(&mut ebpf, "FAST_JOINS")?)?;
        let leave_hosts = LeaveHosts::new(take(&mut ebpf, "LEAVE_HOSTS")?);
        // Adopts the VLAN config of the ports that kept their index.
        let mut forwarding = Forwarding::open(capacity as usize, maps, ifindexes.clone())?;
        let tc_links = tc::attach_tc(&mut ebpf, &ports, pins, created_links);
        if tc_links.is_ok() {
            tc::tags_in_bytes(&ports);
        }
        apply_initial(&mut forwarding, &ports, &tc_links, initial)?;
        // From here the program switches the ports' frames.
        write_ports(&mut port_map, &ports, &forwarding)?;
        let mut stats = open_stats(&mut ebpf)?;
        if adopting {
            if renumbered {
                stats.clear_counters()?;
            }
            stats.retain_macs(|ifindex| ifindexes.contains(&ifindex));
        }

        // Sockets last: a control frame arriving before its socket is
        // registered is counted (drop_no_socket).
        let sockets = open_sockets(&ports, &mut xsks)?;

        Ok(Self {
            _ebpf: ebpf,
            _links: links,
            _tc_links: tc_links,
            forwarding,
            fast_joins,
            leave_hosts,
            stats,
            egress: EgressWatch::new(&ports),
            ports,
            sockets,
            _xsks: xsks,
            _port_map: port_map,
            pins: None,
            keep_pinned: false,
        })
    }
}

/// Loads the object, its group maps sized for `groups` entries; with pins,
/// maps pinned by an earlier run are reused as they are (and new ones
/// pinned): the caller checked that their size is `groups`
/// ([`PinDir::check_group_maps`]).
fn load(pins: Option<&PinDir>, groups: u32) -> Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    for name in igmpsnoop_common::GROUP_MAPS {
        loader.map_max_entries(name, groups);
    }
    if let Some(p) = pins {
        for name in igmpsnoop_common::MAP_NAMES {
            loader.map_pin_path(name, p.map_path(name));
        }
    }
    Ok(loader.load(crate::PROGRAM)?)
}

/// The XDP program, loaded into the kernel.
fn xdp_program(ebpf: &mut Ebpf) -> Result<&mut Xdp> {
    let program: &mut Xdp = ebpf
        .program_mut("igmpsnoop")
        .ok_or(Error::MissingMap {
            name: "igmpsnoop program",
        })?
        .try_into()?;
    program.load()?;
    Ok(program)
}

/// Whether a port's index moved, or a port left, since the previous run.
fn renumbered(old_ports: &StdHashMap<u32, PortConf>, ifindexes: &[u32]) -> bool {
    ifindexes.iter().enumerate().any(|(index, ifindex)| {
        old_ports
            .get(ifindex)
            .is_some_and(|c| c.index as usize != index)
    }) || old_ports.keys().any(|i| !ifindexes.contains(i))
}

/// Removes the PORTS entries of the previous run's ports that are not
/// ports now.
fn remove_departed(
    port_map: &mut HashMap<MapData, u32, PortConf>,
    old_ports: &StdHashMap<u32, PortConf>,
    ifindexes: &[u32],
) {
    for ifindex in old_ports.keys() {
        if !ifindexes.contains(ifindex) {
            let _ = port_map.remove(ifindex);
        }
    }
}

/// The maps [`Forwarding`] writes.
fn forwarding_maps(ebpf: &mut Ebpf) -> Result<forwarding::Maps> {
    Ok(forwarding::Maps {
        groups: take_raw(ebpf, "GROUPS")?,
        sources: take_raw(ebpf, "SOURCES")?,
        groups6: take_raw(ebpf, "GROUPS6")?,
        sources6: take_raw(ebpf, "SOURCES6")?,
        port_sets: take_raw(ebpf, "PORT_SETS")?,
        masks: take(ebpf, "MASKS")?,
        flood: take::<DevMapHash<MapData>>(ebpf, "FLOOD")?,
        flood_sets: take(ebpf, "FLOOD_SETS")?,
        router_sets: take(ebpf, "ROUTER_SETS")?,
        port_vlans: take(ebpf, "PORT_VLANS")?,
        vlan_ports: take(ebpf, "VLAN_PORTS")?,
        config: take::<Array<MapData, _>>(ebpf, "CONFIG")?,
        slots: take::<HashMap<MapData, _, _>>(ebpf, "SLOTS")?,
    })
}
/// Puts the control plane's settings in place before any port is switched
/// (see [`Initial`]): the flood policy, IPv6 snooping, each port's VLANs
/// (which need the TC program for their MIXED sets).
fn apply_initial(
    forwarding: &mut Forwarding,
    ports: &[PortInfo],
    tc_links: &std::result::Result<Vec<FdLink>, String>,
    initial: &Initial,
) -> Result<()> {
    forwarding.set_flood_unregistered(initial.flood_unregistered)?;
    forwarding.set_snoop_ipv6(initial.snoop_ipv6)?;
    for (index, config) in initial.port_vlans.iter().enumerate() {
        let (Some(config), Some(port)) = (config, ports.get(index)) else {
            continue;
        };
        let config = usable_vlans(&port.name, config.clone(), tc_links)?;
        forwarding.set_port_vlans(index, Some(config))?;
    }
    Ok(())
}

/// Writes every port's PORTS entry, with the VLAN config [`Forwarding`]
/// adopted for it.
fn write_ports(
    port_map: &mut HashMap<MapData, u32, PortConf>,
    ports: &[PortInfo],
    forwarding: &Forwarding,
) -> Result<()> {
    for (index, port) in ports.iter().enumerate() {
        write_port_conf(port_map, port, index, forwarding.port_vlans(index))?;
    }
    Ok(())
}

fn open_stats(ebpf: &mut Ebpf) -> Result<Stats> {
    Ok(Stats::new(
        take::<PerCpuArray<MapData, u64>>(ebpf, "COUNTERS")?,
        take(ebpf, "MACS")?,
        take(ebpf, "STREAMS")?,
        take(ebpf, "STREAMS6")?,
    ))
}

/// Opens a socket per port and RX queue and registers it in XSKS, where
/// the program redirects the queue's control frames.
fn open_sockets(ports: &[PortInfo], xsks: &mut XskMap<MapData>) -> Result<Vec<Vec<XskSocket>>> {
    let mut sockets = Vec::new();
    for (index, port) in ports.iter().enumerate() {
        let mut port_sockets = Vec::new();
        for queue in 0..port.queues {
            let socket = XskSocket::open(&port.name, port.ifindex, queue)?;
            xsks.set(index as u32 * MAX_QUEUES + queue, socket.fd(), 0)
                .map_err(|source| Error::Map {
                    name: "XSKS",
                    source,
                })?;
            port_sockets.push(socket);
        }
        sockets.push(port_sockets);
    }
    Ok(sockets)
}

fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<T> {
    let map = ebpf.take_map(name).ok_or(Error::MissingMap { name })?;
    T::try_from(map).map_err(|source| Error::Map { name, source })
}

fn take_raw(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map> {
    ebpf.take_map(name).ok_or(Error::MissingMap { name })
}
