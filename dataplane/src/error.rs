use thiserror::Error;

/// Everything that can go wrong in the data plane, each naming what it concerns.
#[derive(Debug, Error)]
pub enum Error {
    #[error("interface {name:?} does not exist")]
    NoSuchInterface { name: String },
    #[error("interface {name:?} is named more than once")]
    DuplicatePort { name: String },
    #[error("too many ports: {count} (at most {max})")]
    TooManyPorts { count: usize, max: u32 },
    #[error("max-groups {asked}: the fast path holds 1 to {max} groups")]
    MaxGroups { asked: usize, max: u32 },
    #[error("cannot attach XDP to {name:?} in {mode} mode: {reason}")]
    Attach {
        name: String,
        mode: &'static str,
        reason: String,
        errno: Option<i32>,
    },
    #[error("native XDP would drop frames: {reason}")]
    NativeBlackhole { reason: String },
    #[error("loading the XDP program failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("the XDP program was rejected by the kernel: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("BPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("BPF map {name}: {source}")]
    XdpMap {
        name: &'static str,
        #[source]
        source: aya::maps::xdp::XdpMapError,
    },
    #[error("BPF map {map}: batch {what} of {count} entries failed: {source}")]
    Batch {
        map: &'static str,
        what: &'static str,
        count: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("BPF map {name} is full ({max} entries): {refused} new entries refused")]
    TableFull {
        name: &'static str,
        max: usize,
        refused: usize,
    },
    #[error("BPF map {name} is missing from the object")]
    MissingMap { name: &'static str },
    #[error(
        "AF_XDP socket on {name:?} queue {queue}: {what} failed: {}{hint}",
        std::io::Error::from_raw_os_error(*errno),
        hint = if *errno == libc::EBUSY { " (another AF_XDP program, or igmpsnoop, uses this port)" } else { "" }
    )]
    Xsk {
        name: String,
        queue: u32,
        what: &'static str,
        errno: i32,
    },
    #[error("port index {0} is not a port of this switch")]
    NoSuchPort(usize),
    #[error("frame of {len} bytes does not fit an AF_XDP frame ({max} bytes)")]
    FrameTooLong { len: usize, max: usize },
    #[error("no free transmit buffer on {name:?}")]
    TxFull { name: String },
    #[error("the port-set table is full ({max} distinct port sets)")]
    PortSetsFull { max: u32 },
    #[error("pinned state at {}: {what}: {source}", path.display())]
    Pin {
        path: std::path::PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "pinned state at {}: cannot find a mount namespace where pins outlive the daemon, so a \
         restart could not adopt them: run igmpsnoop in the host's mount namespace (e.g. \
         `nsenter --net=/run/netns/NAME` rather than `ip netns exec`), or pass --no-pin",
        path.display()
    )]
    PinUnreachable {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "pinned state at {} is in use by another igmpsnoop (give each switch its own --pin-dir)",
        path.display()
    )]
    PinBusy { path: std::path::PathBuf },
    #[error(
        "pinned state at {} cannot be adopted: {reason}; remove it with `igmpsnoop detach --pin-dir {}` \
         (forwarding through it stops) or use another --pin-dir",
        path.display(),
        path.display()
    )]
    PinIncompatible {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("VLAN config of port {port:?}: {reason}")]
    BadVlans { port: String, reason: String },
    #[error(
        "VLAN config of port {port:?} needs the TC ingress program (a TCX link, kernel 6.6 or \
         later), which could not be attached: {reason}"
    )]
    NoTc { port: String, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A readable reason for a failed attach, with the errno when there is one.
pub(crate) fn attach_error(
    name: &str,
    mode: &'static str,
    source: &aya::programs::ProgramError,
) -> Error {
    let errno = match source {
        aya::programs::ProgramError::SyscallError(e) => e.io_error.raw_os_error(),
        _ => None,
    };
    let reason = match errno {
        Some(libc::EBUSY) | Some(libc::EEXIST) => {
            "another XDP program is already attached (another igmpsnoop, or `ip link set dev IFACE xdp`?)".to_string()
        }
        Some(n) => format!("{source}: {}", std::io::Error::from_raw_os_error(n)),
        None => {
            let mut text = source.to_string();
            let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(source);
            while let Some(e) = cur {
                text.push_str(": ");
                text.push_str(&e.to_string());
                cur = e.source();
            }
            text
        }
    };
    Error::Attach {
        name: name.to_string(),
        mode,
        reason,
        errno,
    }
}

/// A pinning step on `path` that failed with an aya error (which carries
/// its own cause as text).
pub(crate) fn pin_error(path: &std::path::Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Pin {
        path: path.to_path_buf(),
        what: what.to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

pub type Result<T> = std::result::Result<T, Error>;
