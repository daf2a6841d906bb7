//! `igmpsnoop`: the daemon (`run`) and the CLI that talks to it.
mod cli;
mod daemon;

use std::process::ExitCode;

use clap::Parser;
use cli::{
    args::{Cli, Command, GroupAction, ListArgs},
    output,
};
use daemon::ipc::{self, Request};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line: clap's first line, without its "error: " prefix.
            let text = e.render().to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ");
            eprintln!("igmpsnoop: {first}; see `igmpsnoop --help`");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes.
            let mut msg = format!("igmpsnoop: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .init();
            let settings = cli::settings::resolve(*args)?;
            daemon::run(settings)
        }
        Command::Groups(a) => list(a, Request::Groups, output::groups),
        Command::Routers(a) => list(a, Request::Routers, output::routers),
        Command::Querier(a) => list(a, Request::Querier, output::querier),
        Command::Ports(a) => list(a, Request::Ports, output::ports),
        Command::Stats(a) => list(a, Request::Stats, output::stats),
        Command::Macs(a) => list(a, Request::Macs, output::macs),
        Command::Group { action } => {
            let (request, socket) = match action {
                GroupAction::Add(a) => (
                    Request::GroupAdd {
                        group: a.group,
                        port: a.port,
                        vlan: a.vlan,
                    },
                    a.socket,
                ),
                GroupAction::Del(a) => (
                    Request::GroupDel {
                        group: a.group,
                        port: a.port,
                        vlan: a.vlan,
                    },
                    a.socket,
                ),
            };
            let reply = ipc::request(&socket.path(), &request)?;
            println!("{reply}");
            Ok(())
        }
    }
}

fn list(
    args: ListArgs,
    request: Request,
    render: fn(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    let data = ipc::request(&args.socket.path(), &request)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&data)?);
    } else {
        print!("{}", render(&data));
    }
    Ok(())
}
