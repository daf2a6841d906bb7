//! The igmpsnoop control plane: a sans-IO IGMP snooping engine.
//!
//! The engine is handed frames and the current time and returns forwarding
//! changes and frames to transmit; it owns no sockets, threads or clock, so
//! every protocol timer is testable exactly.

#![forbid(unsafe_code)]

pub mod api;
pub mod engine;
pub mod family;
pub mod port;
pub mod table;
pub mod time;
pub mod wire;

pub use engine::{Action, Config, ConfigError, Engine, PortConfig, Reconfigured};
pub use port::{Mac, PortId, PortMask};
pub use time::Timestamp;
