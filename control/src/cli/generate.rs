//! `igmpsnoop generate`: the man pages and shell completions, written from
//! the command-line definition itself so they never drift from `--help`.
//! The package build (scripts/package.sh) runs it; it needs no network.
use std::{io::Write, path::Path};

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::args::{Cli, GenerateArgs, GenerateWhat, ShellArg};

/// What the main page says beyond the options: where the service's config
/// lives and what the signals do.
const MAIN_PAGE_EXTRA: &str = r#".SH FILES
.TP
\fI/etc/igmpsnoop/igmpsnoop.toml\fR
The config file of the packaged service (\fBigmpsnoop run \-\-config\fR): the
keys are the long options of \fBigmpsnoop run\fR without the dashes, e.g.
\fBport = ["eth1", "eth2"]\fR, \fBquery\-interval = "60s"\fR. A flag overrides
the file.
.TP
\fI/run/igmpsnoop/igmpsnoop.sock\fR
The control socket the listing commands talk to (mode 0600).
.TP
\fI/run/igmpsnoop/bpf\fR
The bpffs where the program, its links and maps are pinned, so forwarding
outlives a crash or restart of the daemon.
.SH SIGNALS
.TP
\fBSIGHUP\fR
Re-read the config file and apply what can change while running: the querier
and its address, the IGMP version of our queries, flooding of unregistered
groups, fast-leave, guard and static router ports, the per-port group limit, the
control rate limit, the MAC age and \-\-keep\-on\-exit. Changes that need a
restart (ports, XDP mode, protocol timers, \-\-max\-groups, pin directory,
socket) are logged and ignored. A config file that does not parse or validate
is refused with a log line and changes nothing.
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop: detach from every port and remove the pinned state (unless
\-\-keep\-on\-exit).
.SH SYSTEMD
The package installs \fIigmpsnoop.service\fR, disabled: give it ports in the
config file, then \fBsystemctl enable \-\-now igmpsnoop\fR.
\fBsystemctl reload igmpsnoop\fR sends SIGHUP.
"#;

pub fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    match args.what {
        GenerateWhat::Man => man_pages(&args.out),
        GenerateWhat::Completions { shell } => completions(shell, &args.out),
    }
}

/// igmpsnoop.1 plus one page per subcommand (igmpsnoop-run.1, ...).
fn man_pages(out: &Path) -> anyhow::Result<()> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        clap_mangen::generate_to(sub.clone(), out)
            .with_context(|| format!("writing the man page of {}", sub.get_name()))?;
    }
    // Man::render would put VERSION before the sections added here.
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.write_all(MAIN_PAGE_EXTRA.as_bytes())?;
    man.render_version_section(&mut page)?;
    let path = out.join("igmpsnoop.1");
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

fn completions(shell: ShellArg, out: &Path) -> anyhow::Result<()> {
    let shell = match shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
    };
    let mut cmd = Cli::command();
    let path = clap_complete::generate_to(shell, &mut cmd, "igmpsnoop", out)
        .with_context(|| format!("writing {shell} completions to {}", out.display()))?;
    println!("{}", path.display());
    Ok(())
}
