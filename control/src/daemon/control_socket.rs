//! The daemon's control socket, served off the switching loop: a thread
//! accepts, a thread per client (at most [`MAX_CLIENTS`]) reads its request
//! line and writes the answer, each with a timeout. Requests reach the loop
//! through a bounded channel, and a byte on the wake socket makes the loop's
//! wait return; the loop answers without ever touching a client's socket, so
//! a client that sends nothing, or never reads, stalls only its own thread.
use std::{
    fs,
    io::{BufRead, BufReader, Read, Write},
    os::unix::{
        fs::PermissionsExt,
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use igmpsnoop_control::api::{Event, Request, Response};
use serde_json::Value;
use tracing::{debug, warn};

use super::wake::Waker;

/// Clients served at once; one more is told the daemon is busy.
pub const MAX_CLIENTS: usize = 64;
/// Requests waiting for the loop.
const QUEUE: usize = 64;
/// How long a client may take to send its request, or to take its answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client waits for the loop's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest request line read.
const MAX_REQUEST: u64 = 64 * 1024;
/// Events buffered per monitor client; a client that falls this far behind
/// is disconnected.
pub const MONITOR_BUFFER: usize = 4096;

/// A request for the loop, with the way back to its client.
pub struct Call {
    pub request: Request,
    reply: SyncSender<Reply>,
}

enum Reply {
    Answer(Response),
    Stream(Subscription),
}

impl Call {
    pub fn answer(self, result: Result<Value, String>) {
        // The client may have gone; nothing to do then.
        let _ = self.reply.send(Reply::Answer(Response::answer(result)));
    }

    /// Starts streaming `monitors`' events to this client.
    pub fn subscribe(self, monitors: &mut Monitors) {
        let _ = self.reply.send(Reply::Stream(monitors.add()));
    }
}

/// The listening socket; removes its file when dropped.
pub struct ControlSocket {
    calls: Receiver<Call>,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `path` (mode 0600) and starts serving it. A socket file that
    /// still answers means another daemon is running: refuse. One that does
    /// not is stale: replace it.
    pub fn bind(path: &Path, waker: Waker) -> anyhow::Result<Self> {
        let listener = listen(path)?;
        let (tx, calls) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("control-accept".into())
            .spawn(move || accept_loop(listener, tx, waker))
            .context("starting the control socket thread")?;
        Ok(Self {
            calls,
            path: path.to_path_buf(),
        })
    }

    /// The next request waiting for the loop; never blocks.
    pub fn next_call(&self) -> Option<Call> {
        self.calls.try_recv().ok()
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn listen(path: &Path) -> anyhow::Result<UnixListener> {
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
    Ok(listener)
}

fn accept_loop(listener: UnixListener, calls: SyncSender<Call>, waker: Waker) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            active.fetch_sub(1, Ordering::SeqCst);
            refuse(
                stream,
                "igmpsnoop is busy: too many control clients at once",
            );
            continue;
        }
        let (calls, waker, active) = (calls.clone(), waker.clone(), active.clone());
        let spawned = std::thread::Builder::new()
            .name("control-client".into())
            .spawn(move || {
                if let Err(e) = serve_client(&stream, &calls, &waker) {
                    debug!(error = %e, "control client");
                }
                active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start a control client thread");
        }
    }
}

fn refuse(stream: UnixStream, why: &str) {
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let _ = write_line(&stream, &Response::error(why));
}

fn write_line(mut stream: &UnixStream, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(value)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    Ok(())
}

fn serve_client(
    stream: &UnixStream,
    calls: &SyncSender<Call>,
    waker: &Waker,
) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new(stream.take(MAX_REQUEST)).read_line(&mut line)?;
    let request = match serde_json::from_str::<Request>(&line) {
        Ok(r) => r,
        Err(e) => return write_line(stream, &Response::error(format!("bad request: {e}"))),
    };
    let (reply, answer) = sync_channel(1);
    match calls.try_send(Call { request, reply }) {
        Ok(()) => waker.wake(),
        Err(TrySendError::Full(_)) => {
            return write_line(stream, &Response::error("igmpsnoop is busy: try again"));
        }
        Err(TrySendError::Disconnected(_)) => bail!("the daemon is stopping"),
    }
    match answer.recv_timeout(ANSWER_TIMEOUT) {
        Ok(Reply::Answer(response)) => write_line(stream, &response),
        Ok(Reply::Stream(sub)) => stream_events(stream, sub),
        Err(RecvTimeoutError::Timeout) => {
            write_line(stream, &Response::error("igmpsnoop did not answer in time"))
        }
        Err(RecvTimeoutError::Disconnected) => bail!("the daemon is stopping"),
    }
}

/// Writes every event to the client until it goes, or falls too far behind.
/// Lines are buffered while more are waiting: one write per burst.
fn stream_events(stream: &UnixStream, sub: Subscription) -> anyhow::Result<()> {
    write_line(
        stream,
        &Response::answer(Ok(Value::String("monitoring".into()))),
    )?;
    let mut out = std::io::BufWriter::new(stream);
    while let Ok(line) = sub.events.recv() {
        out.write_all(line.as_bytes())?;
        while let Ok(line) = sub.events.try_recv() {
            out.write_all(line.as_bytes())?;
        }
        out.flush()?;
    }
    if sub.lagged.load(Ordering::SeqCst) {
        write_line(
            stream,
            &Response::error(format!(
                "disconnected: this reader fell {MONITOR_BUFFER} events behind"
            )),
        )?;
    }
    Ok(())
}

/// A monitor client's end: event lines, and whether it was dropped for
/// falling behind.
struct Subscription {
    events: Receiver<Arc<str>>,
    lagged: Arc<AtomicBool>,
}

/// The monitor clients, fed by the loop without ever blocking it.
#[derive(Default)]
pub struct Monitors {
    subs: Vec<(SyncSender<Arc<str>>, Arc<AtomicBool>)>,
}

impl Monitors {
    fn add(&mut self) -> Subscription {
        let (tx, events) = sync_channel(MONITOR_BUFFER);
        let lagged = Arc::new(AtomicBool::new(false));
        self.subs.push((tx, lagged.clone()));
        Subscription { events, lagged }
    }

    /// Whether anyone listens (events need not be made otherwise).
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Sends `event` to every monitor client; a full buffer drops its client.
    pub fn publish(&mut self, event: &Event) {
        if self.subs.is_empty() {
            return;
        }
        let Ok(mut line) = serde_json::to_string(event) else {
            return;
        };
        line.push('\n');
        let line: Arc<str> = line.into();
        self.subs
            .retain(|(tx, lagged)| match tx.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    lagged.store(true, Ordering::SeqCst);
                    warn!("a monitor client fell behind: disconnected");
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }
}
