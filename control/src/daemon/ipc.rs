//! The daemon's control socket: one JSON request line in, one JSON response
//! line out, per connection.
use std::{
    fs,
    io::{BufRead, BufReader, Write},
    os::unix::{
        fs::PermissionsExt,
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Groups,
    Routers,
    Querier,
    Ports,
    Stats,
    Macs,
    GroupAdd {
        group: std::net::Ipv4Addr,
        port: String,
        vlan: u16,
    },
    GroupDel {
        group: std::net::Ipv4Addr,
        port: String,
        vlan: u16,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The listening socket; removes its file when dropped.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
}

impl Server {
    /// Binds `path` (mode 0600). A socket file that still answers means another
    /// daemon is running: refuse. One that does not is stale: replace it.
    pub fn bind(path: &Path) -> anyhow::Result<Self> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                bail!(
                    "another igmpsnoop is already running with control socket {} (stop it, or give this one another --socket)",
                    path.display()
                );
            }
            fs::remove_file(path)
                .with_context(|| format!("removing stale socket {}", path.display()))?;
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("binding control socket {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.listener.as_raw_fd()
    }

    /// Answers every waiting client with `handle`; never blocks for long.
    pub fn serve(&self, mut handle: impl FnMut(Request) -> Result<Value, String>) {
        while let Ok((stream, _)) = self.listener.accept() {
            if let Err(e) = answer(stream, &mut handle) {
                tracing::debug!(error = %e, "control client");
            }
        }
    }
}

fn answer(
    stream: UnixStream,
    handle: &mut impl FnMut(Request) -> Result<Value, String>,
) -> anyhow::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let response = match serde_json::from_str::<Request>(&line) {
        Ok(request) => match handle(request) {
            Ok(data) => Response {
                ok: true,
                data: Some(data),
                error: None,
            },
            Err(error) => Response {
                ok: false,
                data: None,
                error: Some(error),
            },
        },
        Err(e) => Response {
            ok: false,
            data: None,
            error: Some(format!("bad request: {e}")),
        },
    };
    let mut out = serde_json::to_string(&response)?;
    out.push('\n');
    (&stream).write_all(out.as_bytes())?;
    Ok(())
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Sends one request to the daemon at `path` and returns its data.
pub fn request(path: &Path, request: &Request) -> anyhow::Result<Value> {
    let stream = UnixStream::connect(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no daemon is running".to_string(),
            std::io::ErrorKind::ConnectionRefused => "no daemon is running (stale socket)".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied (run as root)".to_string(),
            _ => e.to_string(),
        };
        anyhow::anyhow!(
            "cannot reach igmpsnoop at {}: {why}; start it with `igmpsnoop run --port IFACE ...`, or point --socket / IGMPSNOOP_SOCKET at its socket",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    (&stream).write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(&stream)
        .read_line(&mut reply)
        .with_context(|| format!("reading the reply from {}", path.display()))?;
    if reply.is_empty() {
        bail!(
            "igmpsnoop at {} closed the connection without answering",
            path.display()
        );
    }
    let response: Response =
        serde_json::from_str(&reply).context("the daemon's reply is not valid JSON")?;
    match (response.ok, response.data, response.error) {
        (true, Some(data), _) => Ok(data),
        (true, None, _) => Ok(Value::Null),
        (false, _, error) => bail!(
            "{}",
            error.unwrap_or_else(|| "the daemon refused the request".into())
        ),
    }
}
