//! `igmpsnoop`: the daemon (`run`) and the CLI that talks to it.
mod cli;
mod daemon;

use std::{ffi::OsString, io::IsTerminal, process::ExitCode};

use clap::Parser;
use cli::client;
use cli::{
    args::{Cli, Command, GenerateArgs, GroupAction, VlanListArgs},
    output,
};
use igmpsnoop_control::api::{
    Request,
    listing::{GroupRow, SourceEntryRow, StreamRow},
};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // `igmpsnoop generate` serves the package build. It is parsed on its own
    // so that the man pages and completions it writes do not list it.
    let result = if argv.get(1).is_some_and(|a| a == "generate") {
        match GenerateArgs::try_parse_from(&argv[1..]) {
            Ok(args) => cli::generate::generate(args),
            Err(e) => return usage_error(e),
        }
    } else {
        match Cli::try_parse_from(&argv) {
            Ok(cli) => run(cli),
            Err(e) => return usage_error(e),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // sysexits.h EX_CONFIG: the unit does not restart on it.
            let code = if e.is::<BadConfig>() {
                ExitCode::from(EX_CONFIG)
            } else {
                ExitCode::FAILURE
            };
            // One line: the error and its causes.
            let mut msg = format!("igmpsnoop: {e}");
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            code
        }
    }
}

fn usage_error(e: clap::Error) -> ExitCode {
    if !e.use_stderr() {
        e.exit(); // --help, --version
    }
    // One line: clap's first line, without its "error: " prefix.
    let text = e.render().to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ");
    eprintln!("igmpsnoop: {first}; see `igmpsnoop --help`");
    ExitCode::from(2)
}

/// The exit code of a configuration that cannot work (sysexits.h): the
/// packaged unit's `RestartPreventExitStatus=` does not retry it.
const EX_CONFIG: u8 = 78;

/// `igmpsnoop run` was given settings that cannot work; retrying cannot help.
#[derive(Debug)]
struct BadConfig(anyhow::Error);

impl std::fmt::Display for BadConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The causes too: main prints only the chain of source() below this.
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for BadConfig {}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                // No colour codes in a file or the journal (systemd).
                .with_ansi(std::io::stderr().is_terminal())
                .init();
            let settings = cli::settings::resolve((*args).clone()).map_err(BadConfig)?;
            daemon::run(settings, *args)
        }
        Command::Groups(a) => groups(a),
        Command::Sources(a) => list(a, Request::Sources, output::sources),
        Command::Routers(a) => list(a, Request::Routers, output::routers),
        Command::Querier(a) => list(a, Request::Querier, output::querier),
        Command::Ports(a) => list(a, Request::Ports, output::ports),
        Command::Stats(a) => stats(a),
        Command::Monitor(a) => monitor(a),
        Command::Macs(a) => list(a, Request::Macs, output::macs),
        Command::Vlans(a) => list(a, Request::Vlans, output::vlans),
        Command::Detach(a) => detach(a),
        Command::Group { action } => {
            let (request, socket) = match action {
                GroupAction::Add(a) => (
                    Request::GroupAdd {
                        group: a.group,
                        port: a.port,
                        vlan: a.vlan,
                        source: a.source,
                    },
                    a.socket,
                ),
                GroupAction::Del(a) => (
                    Request::GroupDel {
                        group: a.group,
                        port: a.port,
                        vlan: a.vlan,
                        source: a.source,
                    },
                    a.socket,
                ),
            };
            let reply = client::request(&socket.path(), &request)?;
            println!("{reply}");
            Ok(())
        }
    }
}

/// `igmpsnoop detach`: removes what a daemon that is gone left pinned.
fn detach(args: cli::args::DetachArgs) -> anyhow::Result<()> {
    let dir = args
        .pin_dir
        .pin_dir
        .unwrap_or_else(|| cli::args::DEFAULT_PIN_DIR.into());
    // A running daemon holds the lock too; asking its socket names it better.
    let socket = args.socket.path();
    if client::request(&socket, &Request::Stats).is_ok() {
        anyhow::bail!(
            "a daemon is running on {} (stop it with SIGTERM: a clean stop removes its pinned state)",
            socket.display()
        );
    }
    match igmpsnoop_dataplane::Dataplane::remove_pinned(&dir)? {
        Some(r) => println!(
            "removed {} pinned objects from {}: the ports no longer forward",
            r.pins,
            dir.display()
        ),
        None => println!("nothing pinned at {}", dir.display()),
    }
    Ok(())
}

/// `igmpsnoop groups [GROUP] [--port P] [--vlan V]`.
fn groups(args: cli::args::GroupsArgs) -> anyhow::Result<()> {
    let socket = args.list.socket.path();
    if args.rates.rates {
        return group_rates(&args, &socket);
    }
    let data = client::request(&socket, &Request::Groups)?;
    let data = output::filter::<GroupRow>(data, args.group, args.port.as_deref(), args.vlan)?;
    if args.list.json {
        return print_listing(true, &data, output::groups);
    }
    print!("{}", output::groups(&data));
    let sources = client::request(&socket, &Request::Sources)?;
    let sources =
        output::filter::<SourceEntryRow>(sources, args.group, args.port.as_deref(), args.vlan)?;
    if !output::is_empty(&sources) {
        print!("\n{}", output::sources(&sources));
    }
    Ok(())
}

/// `igmpsnoop groups --rates`: the streams' counters read twice,
/// `--interval` apart.
fn group_rates(args: &cli::args::GroupsArgs, socket: &std::path::Path) -> anyhow::Result<()> {
    let before = client::request(socket, &Request::Streams)?;
    std::thread::sleep(args.rates.interval);
    let after = client::request(socket, &Request::Streams)?;
    let rates = output::stream_rates(&before, &after, args.rates.interval.as_secs_f64())?;
    let rates = output::filter::<StreamRow>(rates, args.group, args.port.as_deref(), args.vlan)?;
    print_listing(args.list.json, &rates, output::rates)
}

/// `igmpsnoop stats [--port P]`.
fn stats(args: cli::args::StatsArgs) -> anyhow::Result<()> {
    let Some(port) = args.port else {
        let data = client::request(&args.list.socket.path(), &Request::Stats)?;
        return print_listing(args.list.json, &data, output::stats);
    };
    let ports = client::request(&args.list.socket.path(), &Request::Ports)?;
    let entry = output::port_entry(&ports, &port)?;
    print_listing(args.list.json, &entry, output::port_stats)
}

/// `igmpsnoop monitor`: one line per event until the daemon goes or the
/// user stops it.
fn monitor(args: VlanListArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    client::monitor(&args.list.socket.path(), |event| {
        if !output::event_of_vlan(event, args.vlan) {
            return Ok(());
        }
        if args.list.json {
            writeln!(out, "{}", serde_json::to_string(event)?)?;
        } else {
            writeln!(out, "{}", output::event_line(event))?;
        }
        out.flush()?;
        Ok(())
    })
}

fn print_listing(
    json: bool,
    data: &serde_json::Value,
    render: fn(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(data)?);
    } else {
        print!("{}", render(data));
    }
    Ok(())
}

/// A listing, narrowed to `--vlan` when given (`ports`: the ports that
/// carry it).
fn list(
    args: VlanListArgs,
    request: Request,
    render: fn(&serde_json::Value) -> String,
) -> anyhow::Result<()> {
    let ports = request == Request::Ports;
    let data = client::request(&args.list.socket.path(), &request)?;
    let data = match args.vlan {
        Some(v) if ports => output::ports_carrying(data, v),
        Some(v) => output::rows_of_vlan(data, v),
        None => data,
    };
    print_listing(args.list.json, &data, render)
}
