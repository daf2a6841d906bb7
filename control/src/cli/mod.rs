//! The `igmpsnoop` command line: argument parsing, settings, output.
pub mod args;
pub mod client;
pub mod duration;
pub mod generate;
pub mod output;
pub mod settings;
