//! The address family the engine snoops: IPv4 (IGMP) or IPv6 (MLD). The
//! table, the source filters, the querier and the router ports are written
//! once over [`Family`], implemented by the address types themselves, so
//! an IPv4 table keeps 4-byte addresses and one-word keys.

use crate::wire::WireAddr;
use core::fmt::{Debug, Display};
use core::hash::{Hash, Hasher};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use serde::{Deserialize, Serialize};

/// Which family, for views and actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddrFamily {
    Ipv4,
    Ipv6,
}

impl AddrFamily {
    pub const fn name(self) -> &'static str {
        match self {
            AddrFamily::Ipv4 => "ipv4",
            AddrFamily::Ipv6 => "ipv6",
        }
    }
}

/// Why an address cannot be a source (RFC 3376 §4.2.8, RFC 3810 §5.2.9:
/// a source is a host's unicast address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadSource {
    Multicast,
    Zero,
    Broadcast,
}

/// A protocol version number as its own protocol counts: IGMPv1..v3,
/// MLDv1..v2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "u8")]
pub enum Version {
    V1 = 1,
    V2 = 2,
    V3 = 3,
}

impl From<Version> for u8 {
    fn from(v: Version) -> u8 {
        v as u8
    }
}

impl TryFrom<u8> for Version {
    type Error = u8;
    fn try_from(v: u8) -> Result<Version, u8> {
        match v {
            1 => Ok(Version::V1),
            2 => Ok(Version::V2),
            3 => Ok(Version::V3),
            other => Err(other),
        }
    }
}

impl Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", *self as u8)
    }
}

/// What the compatibility rules tell apart (RFC 3376 §7.3.2, RFC 3810
/// §8.3.2), common to both families: MLDv1 is to MLDv2 what IGMPv2 is to
/// IGMPv3, and MLD has nothing like IGMPv1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Generation {
    /// IGMPv1: reports only, no leave.
    NoLeave,
    /// IGMPv2, MLDv1: reports and leaves (done), no sources.
    AnySource,
    /// IGMPv3, MLDv2: source filters.
    SourceFilter,
}

/// An address family, implemented by its address type.
pub trait Family:
    WireAddr + Hash + Display + Debug + Serialize + Send + Sync + Into<IpAddr> + 'static
{
    const FAMILY: AddrFamily;
    const UNSPECIFIED: Self;

    /// Hash (vlan, group) as a table key: one word for IPv4.
    fn hash_key<H: Hasher>(vlan: u16, group: &Self, state: &mut H);

    fn is_multicast(&self) -> bool;

    /// A group that is never snooped, always flooded (IPv4 224.0.0.0/24,
    /// RFC 4541 §2.1.2; IPv6 scopes 0-2, see the impl).
    fn never_snooped(&self) -> bool;

    /// Why this cannot be a source, or None.
    fn bad_source(&self) -> Option<BadSource>;

    /// The protocol version of a generation in this family.
    fn version(g: Generation) -> Version;

    /// The generation of a protocol version (None: no such version).
    fn generation(v: Version) -> Option<Generation>;
}

impl Family for Ipv4Addr {
    const FAMILY: AddrFamily = AddrFamily::Ipv4;
    const UNSPECIFIED: Self = Ipv4Addr::UNSPECIFIED;

    fn hash_key<H: Hasher>(vlan: u16, group: &Self, state: &mut H) {
        state.write_u64((u64::from(vlan) << 32) | u64::from(u32::from(*group)));
    }

    fn is_multicast(&self) -> bool {
        Ipv4Addr::is_multicast(self)
    }

    /// RFC 4541 §2.1.2: 224.0.0.0/24 is never snooped.
    fn never_snooped(&self) -> bool {
        let o = self.octets();
        o[0] == 224 && o[1] == 0 && o[2] == 0
    }

    fn bad_source(&self) -> Option<BadSource> {
        if Ipv4Addr::is_multicast(self) {
            Some(BadSource::Multicast)
        } else if self.is_unspecified() {
            Some(BadSource::Zero)
        } else if self.is_broadcast() {
            Some(BadSource::Broadcast)
        } else {
            None
        }
    }

    fn version(g: Generation) -> Version {
        match g {
            Generation::NoLeave => Version::V1,
            Generation::AnySource => Version::V2,
            Generation::SourceFilter => Version::V3,
        }
    }

    fn generation(v: Version) -> Option<Generation> {
        Some(match v {
            Version::V1 => Generation::NoLeave,
            Version::V2 => Generation::AnySource,
            Version::V3 => Generation::SourceFilter,
        })
    }
}

impl Family for Ipv6Addr {
    const FAMILY: AddrFamily = AddrFamily::Ipv6;
    const UNSPECIFIED: Self = Ipv6Addr::UNSPECIFIED;

    fn hash_key<H: Hasher>(vlan: u16, group: &Self, state: &mut H) {
        let b = group.to_bits();
        state.write_u64((b >> 64) as u64);
        state.write_u64(b as u64 ^ u64::from(vlan));
    }

    fn is_multicast(&self) -> bool {
        Ipv6Addr::is_multicast(self)
    }

    /// Interface-local (1), link-local (2) and the reserved scope 0 are
    /// never snooped, always flooded: ff02::/16 carries neighbour
    /// discovery (solicited-node groups ff02::1:ffXX:XXXX, ff02::1,
    /// ff02::2), and a snooped ND group breaks address resolution for
    /// every host that has not (re-)reported it yet, e.g. after a restart
    /// of the switch or when a host's report was lost. RFC 4541 §3 asks
    /// the same of IPv6 as §2.1.2 of 224.0.0.0/24, and the Linux bridge
    /// floods these scopes too. Scopes 3 and up (ff05::, ff0e::, ff3e::)
    /// are snooped.
    fn never_snooped(&self) -> bool {
        let o = self.octets();
        o[0] == 0xff && (o[1] & 0x0f) <= 2
    }

    fn bad_source(&self) -> Option<BadSource> {
        if Ipv6Addr::is_multicast(self) {
            Some(BadSource::Multicast)
        } else if self.is_unspecified() {
            Some(BadSource::Zero)
        } else {
            None
        }
    }

    /// RFC 3810 §8: MLDv1 is the any-source generation; there is no
    /// leave-less MLD (it maps to MLDv1).
    fn version(g: Generation) -> Version {
        match g {
            Generation::NoLeave | Generation::AnySource => Version::V1,
            Generation::SourceFilter => Version::V2,
        }
    }

    fn generation(v: Version) -> Option<Generation> {
        match v {
            Version::V1 => Some(Generation::AnySource),
            Version::V2 => Some(Generation::SourceFilter),
            Version::V3 => None,
        }
    }
}

/// RFC 4291 §2.5.6 / Appendix A: the link-local address fe80::/64 with
/// the modified EUI-64 interface identifier of `mac` (universal/local bit
/// flipped, ff:fe in the middle).
pub fn eui64_link_local(mac: [u8; 6]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8] = mac[0] ^ 0x02;
    o[9] = mac[1];
    o[10] = mac[2];
    o[11] = 0xff;
    o[12] = 0xfe;
    o[13] = mac[3];
    o[14] = mac[4];
    o[15] = mac[5];
    Ipv6Addr::from(o)
}

/// fe80::/10 (RFC 4291 §2.5.6).
pub fn is_link_local_unicast(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_policy() {
        let snooped = |s: &str| !s.parse::<Ipv6Addr>().unwrap().never_snooped();
        assert!(!snooped("ff02::1") && !snooped("ff02::1:ff00:a") && !snooped("ff01::1"));
        assert!(
            !snooped("ff12::1234"),
            "transient link-local is flooded too"
        );
        assert!(snooped("ff05::1:3") && snooped("ff0e::1") && snooped("ff3e::1:1"));
        assert_eq!(
            eui64_link_local([0x02, 0, 0, 0, 0, 0x0a]),
            "fe80::ff:fe00:a".parse::<Ipv6Addr>().unwrap()
        );
        assert!(is_link_local_unicast("fe80::1".parse().unwrap()));
        assert!(!is_link_local_unicast("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn versions() {
        assert_eq!(Ipv6Addr::version(Generation::SourceFilter), Version::V2);
        assert_eq!(
            Ipv4Addr::generation(Version::V2),
            Some(Generation::AnySource)
        );
        assert_eq!(Ipv6Addr::generation(Version::V3), None);
        assert_eq!(serde_json::to_string(&Version::V3).unwrap(), "3");
    }
}
