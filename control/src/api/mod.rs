//! The control socket's schema, shared by the daemon, the CLI and the tests:
//! one JSON request line in; one JSON response line out, or, for
//! [`Request::Monitor`], a stream of [`Event`] lines until either side goes.
pub mod listing;

use core::net::IpAddr;

use crate::family::AddrFamily;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Groups,
    /// The (S,G) forwarding entries.
    Sources,
    /// The streams the fast path replicated: totals since first seen.
    Streams,
    Routers,
    Querier,
    Ports,
    Stats,
    Macs,
    /// The VLANs snooped, with their ports and queriers.
    Vlans,
    /// A static (*,G) membership, or (S,G) with `source`.
    GroupAdd {
        group: IpAddr,
        port: String,
        vlan: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<IpAddr>,
    },
    GroupDel {
        group: IpAddr,
        port: String,
        vlan: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<IpAddr>,
    },
    /// A live stream of [`Event`]s.
    Monitor,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn answer(result: Result<Value, String>) -> Response {
        match result {
            Ok(data) => Response {
                ok: true,
                data: Some(data),
                error: None,
            },
            Err(error) => Response::error(error),
        }
    }

    pub fn error(error: impl Into<String>) -> Response {
        Response {
            ok: false,
            data: None,
            error: Some(error.into()),
        }
    }
}

/// One change in the switch, as `igmpsnoop monitor` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time, RFC 3339 with milliseconds (UTC).
    pub time: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What changed. Ports are named; `vlan` 0 is untagged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A host's report made (or kept) it a member.
    Joined {
        vlan: u16,
        group: IpAddr,
        port: String,
        host: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sources: Vec<IpAddr>,
    },
    /// A host said it left.
    Left {
        vlan: u16,
        group: IpAddr,
        port: String,
        host: String,
    },
    /// A membership timed out (nobody answered the queries).
    Expired {
        vlan: u16,
        group: IpAddr,
        port: String,
    },
    /// The ports a group is forwarded to changed (router ports not included).
    GroupPorts {
        vlan: u16,
        group: IpAddr,
        ports: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// The multicast-router ports of a family on a VLAN changed (learned
    /// or static).
    RouterPorts {
        #[serde(default = "ipv4")]
        family: AddrFamily,
        #[serde(default)]
        vlan: u16,
        ports: Vec<String>,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// The querier on a VLAN changed: who it is, and whether it is us.
    Querier {
        /// IGMP's querier (ipv4) or MLD's (ipv6).
        #[serde(default = "ipv4")]
        family: AddrFamily,
        vlan: u16,
        querier: Option<IpAddr>,
        we_are_querier: bool,
    },
    PortUp {
        port: String,
    },
    PortDown {
        port: String,
    },
    /// A report was refused by a limit (`--max-groups`, per port, ...).
    LimitRejected {
        what: String,
        total: u64,
    },
    /// Pinned state of an earlier daemon was adopted and is held.
    Adopted {
        groups: usize,
        hold_ms: u64,
    },
    /// The hold on adopted state ended; groups nobody reported went.
    HoldEnded {
        removed: usize,
    },
    /// The configuration was re-read (SIGHUP).
    Reloaded {
        applied: Vec<String>,
        restart_needed: Vec<String>,
    },
}

fn ipv4() -> AddrFamily {
    AddrFamily::Ipv4
}

impl Event {
    /// `kind`, stamped now.
    pub fn now(kind: EventKind) -> Event {
        Event {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_events_round_trip() {
        let r: Request = serde_json::from_str(r#"{"cmd":"monitor"}"#).unwrap();
        assert_eq!(r, Request::Monitor);
        let e = Event::now(EventKind::PortDown { port: "p1".into() });
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains(r#""event":"port_down""#), "{line}");
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
        assert!(e.time.ends_with('Z') && e.time.len() == 24, "{}", e.time);
    }
}
