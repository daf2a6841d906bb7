//! What the loop sleeps on: one epoll set holding every AF_XDP socket and
//! the wake socket, registered once. Not the fast-join ring: the program
//! submits its events without a wake-up (they would be an IPI in the
//! report's softirq), so it could never end a wait; every round drains it.
//! The report itself, on its socket right after the event, wakes the loop.
//!
//! poll(2) re-registered every descriptor at each call and asked every
//! socket for its state again (on an AF_XDP socket that also runs its
//! transmit path): a cost per port on every round, paid again for each
//! report. epoll pays per descriptor that became ready.
use std::{
    io,
    os::fd::{BorrowedFd, OwnedFd, RawFd},
    time::Duration,
};

use rustix::{
    buffer::spare_capacity,
    event::{Timespec, epoll},
};

/// The wake socket's tag; every other descriptor is tagged 0.
const WAKE: u64 = 1;

pub struct Waiter {
    epoll: OwnedFd,
    events: Vec<epoll::Event>,
}

/// What a wait found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// Anything (a frame, a request or a signal).
    pub any: bool,
    /// The wake socket: a request, a metrics scrape or a signal.
    pub wake: bool,
}

impl Waiter {
    /// `sources` (the AF_XDP sockets) and `wake` must stay open for
    /// the waiter's life: the daemon keeps its descriptors to the end.
    pub fn new(sources: &[RawFd], wake: RawFd) -> io::Result<Waiter> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let tagged = sources.iter().map(|&fd| (fd, 0)).chain([(wake, WAKE)]);
        for (fd, tag) in tagged {
            // SAFETY: the caller keeps `fd` open for the waiter's life, and
            // it is borrowed only for this call.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            epoll::add(
                &epoll,
                fd,
                epoll::EventData::new_u64(tag),
                epoll::EventFlags::IN,
            )?;
        }
        let events = Vec::with_capacity(sources.len() + 1);
        Ok(Waiter { epoll, events })
    }

    /// Waits at most `timeout` for any descriptor to be readable. An
    /// interrupted wait counts as something having come (a signal).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<Ready> {
        self.events.clear();
        let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        match epoll::wait(
            &self.epoll,
            spare_capacity(&mut self.events),
            Some(&timeout),
        ) {
            Ok(_) => {}
            Err(e) if e == rustix::io::Errno::INTR => {
                return Ok(Ready {
                    any: true,
                    wake: false,
                });
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Ready {
            any: !self.events.is_empty(),
            wake: self.events.iter().any(|e| e.data.u64() == WAKE),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Write, os::fd::AsRawFd, os::unix::net::UnixStream, time::Instant};

    use super::*;

    #[test]
    fn a_readable_source_ends_the_wait_and_is_told_from_the_wake_socket() {
        let (source, mut source_end) = UnixStream::pair().unwrap();
        let (wake, mut wake_end) = UnixStream::pair().unwrap();
        let mut waiter = Waiter::new(&[source.as_raw_fd()], wake.as_raw_fd()).unwrap();

        let start = Instant::now();
        assert_eq!(
            waiter.wait(Duration::from_millis(20)).unwrap(),
            Ready::default()
        );
        assert!(start.elapsed() >= Duration::from_millis(20));

        source_end.write_all(&[1]).unwrap();
        let ready = waiter.wait(Duration::from_secs(5)).unwrap();
        assert_eq!((ready.any, ready.wake), (true, false));

        wake_end.write_all(&[1]).unwrap();
        let ready = waiter.wait(Duration::from_secs(5)).unwrap();
        assert_eq!((ready.any, ready.wake), (true, true));
    }
}
