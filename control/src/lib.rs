//! The igmpsnoop control plane.
