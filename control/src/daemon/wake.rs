//! Wakes the event loop's wait from another thread or a signal handler: a
//! socket pair whose read end is in the wait set.
use std::{
    io::{self, Read, Write},
    os::{
        fd::{AsRawFd, RawFd},
        unix::net::UnixStream,
    },
};

/// The loop's end.
pub struct Wake {
    read: UnixStream,
    write: UnixStream,
}

/// A handle that wakes the loop; cheap to clone.
pub struct Waker(UnixStream);

impl Wake {
    pub fn new() -> io::Result<Wake> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        // A full buffer means a wake-up is pending already: never block.
        write.set_nonblocking(true)?;
        Ok(Wake { read, write })
    }

    pub fn waker(&self) -> io::Result<Waker> {
        self.write.try_clone().map(Waker)
    }

    /// A write end for signal-hook to own.
    pub fn signal_end(&self) -> io::Result<UnixStream> {
        self.write.try_clone()
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Consumes the pending wake-ups.
    pub fn drain(&self) {
        let mut buf = [0u8; 256];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
    }
}

impl Waker {
    pub fn wake(&self) {
        let _ = (&self.0).write(&[1]);
    }
}

impl Clone for Waker {
    fn clone(&self) -> Waker {
        // A dup of a socket we hold: fails only without descriptors left,
        // and then the loop still wakes within its longest sleep.
        Waker(self.0.try_clone().expect("dup of the wake socket"))
    }
}
