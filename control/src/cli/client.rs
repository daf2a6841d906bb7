//! The CLI's side of the control socket.
use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use anyhow::{Context, bail};
use igmpsnoop_control::api::{Event, Request, Response};
use serde_json::Value;

fn connect(path: &Path) -> anyhow::Result<UnixStream> {
    UnixStream::connect(path).map_err(|e| {
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
    })
}

fn send(stream: &UnixStream, request: &Request) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    (&*stream).write_all(line.as_bytes())?;
    Ok(())
}

/// The data of one response line, or its error.
fn read_response(reader: &mut impl BufRead, path: &Path) -> anyhow::Result<Value> {
    let mut reply = String::new();
    reader
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
        (true, data, _) => Ok(data.unwrap_or(Value::Null)),
        (false, _, error) => bail!(
            "{}",
            error.unwrap_or_else(|| "the daemon refused the request".into())
        ),
    }
}

/// Sends one request to the daemon at `path` and returns its data.
pub fn request(path: &Path, request: &Request) -> anyhow::Result<Value> {
    let stream = connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    send(&stream, request)?;
    read_response(&mut BufReader::new(&stream), path)
}

/// Streams the daemon's events to `each` until the daemon goes (Ok) or
/// drops this reader (an error saying why).
pub fn monitor(
    path: &Path,
    mut each: impl FnMut(&Event) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let stream = connect(path)?;
    send(&stream, &Request::Monitor)?;
    let mut reader = BufReader::new(&stream);
    read_response(&mut reader, path)?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        match serde_json::from_str::<Event>(&line) {
            Ok(event) => each(&event)?,
            Err(_) => {
                // Not an event: the daemon's last word (why it dropped us).
                let response: Response = serde_json::from_str(&line)
                    .context("the daemon sent neither an event nor a response")?;
                bail!(
                    "{}",
                    response.error.unwrap_or_else(|| "monitor ended".into())
                );
            }
        }
    }
}
