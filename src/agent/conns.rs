//! What the socket's connections may cost (docs/socket-limits.md).
//!
//! - [`Registry`] holds the open connections of allowed peers, at most
//!   `--max-connections`. A new one that finds it full closes the oldest connection
//!   still waiting for its request head (an idle or slow client) to make room, so
//!   clients that never speak cannot keep the application out; if every connection is
//!   answering a request, the newcomer gets a fixed 503.
//! - [`Stage`] makes "closed to make room" and "its request started" exclusive, so a
//!   connection is never closed once its request has taken a delivery slot.
//! - [`Tracked`] is the connection's stream: it tells the [`Connection`] when the
//!   kernel has taken the first byte of an answer's body, the moment a delivery counts.
//! - [`answer_and_close`] writes a fixed answer (a refusal, "too many") without reading
//!   the request, and lingers a bounded time so the peer can read it.
//! - [`fit_to_open_files`] lowers the connection cap to leave room under
//!   `RLIMIT_NOFILE`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::UnixStream;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::http::Connection;
use crate::env;

const WAITING: u8 = 0;
const STARTED: u8 = 1;
const EVICTED: u8 = 2;

/// Where a connection is: waiting for its request head, answering it, or closed to
/// make room.
pub(crate) struct Stage(AtomicU8);

impl Stage {
    pub(crate) fn new() -> Stage {
        Stage(AtomicU8::new(WAITING))
    }

    /// The request head has arrived; `false` if the connection was closed to make room.
    pub(crate) fn start(&self) -> bool {
        self.0
            .compare_exchange(WAITING, STARTED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Close it to make room; `false` if its request has started.
    fn evict(&self) -> bool {
        self.0
            .compare_exchange(WAITING, EVICTED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

struct Entry {
    id: u64,
    stage: Arc<Stage>,
    abort: Option<AbortHandle>,
    closed: Arc<Notify>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    /// In the order they were accepted: the oldest first.
    entries: Vec<Entry>,
}

/// The open connections of allowed peers.
pub(crate) struct Registry {
    cap: usize,
    open: Mutex<Open>,
}

/// A place in the [`Registry`]; dropping it frees the place and says so.
pub(crate) struct Ticket {
    registry: Arc<Registry>,
    id: u64,
    stage: Arc<Stage>,
    closed: Arc<Notify>,
}

impl Ticket {
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn stage(&self) -> Arc<Stage> {
        self.stage.clone()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.lock().entries.retain(|e| e.id != self.id);
        self.closed.notify_one();
    }
}

/// A connection closed to make room: [`Closing::wait`] returns once its task has let go
/// of its descriptor (or after a short while), so the accept loop does not outrun the
/// closing and pile up descriptors.
pub(crate) struct Closing(Arc<Notify>);

impl Closing {
    pub(crate) async fn wait(self) {
        let _ = tokio::time::timeout(Duration::from_millis(100), self.0.notified()).await;
    }
}

/// No place for a new connection: `open` connections are all answering requests.
pub(crate) struct Full {
    pub(crate) open: usize,
}

impl Registry {
    pub(crate) fn new(cap: usize) -> Arc<Registry> {
        Arc::new(Registry {
            cap: cap.max(1),
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new connection, making room if the registry is full (then the
    /// connection closed for it comes along, to be waited for).
    pub(crate) fn admit(self: &Arc<Self>) -> Result<(Ticket, Option<Closing>), Full> {
        let mut open = self.lock();
        let closing = if open.entries.len() >= self.cap {
            match evict_oldest(&mut open) {
                Some(closing) => Some(closing),
                None => {
                    return Err(Full {
                        open: open.entries.len(),
                    });
                }
            }
        } else {
            None
        };
        open.next_id += 1;
        let id = open.next_id;
        let stage = Arc::new(Stage::new());
        let closed = Arc::new(Notify::new());
        open.entries.push(Entry {
            id,
            stage: stage.clone(),
            abort: None,
            closed: closed.clone(),
        });
        let ticket = Ticket {
            registry: self.clone(),
            id,
            stage,
            closed,
        };
        Ok((ticket, closing))
    }

    /// The task serving `ticket`'s connection, so that it can be closed to make room.
    pub(crate) fn track(&self, ticket_id: u64, abort: AbortHandle) {
        if let Some(entry) = self.lock().entries.iter_mut().find(|e| e.id == ticket_id) {
            entry.abort = Some(abort);
        }
    }

    /// Close the oldest connection still waiting for its request head, if there is one.
    pub(crate) fn evict_oldest_idle(&self) -> Option<Closing> {
        evict_oldest(&mut self.lock())
    }
}

fn evict_oldest(open: &mut Open) -> Option<Closing> {
    let index = open.entries.iter().position(|e| e.stage.evict())?;
    let entry = open.entries.remove(index);
    if let Some(abort) = entry.abort {
        abort.abort();
    }
    tracing::debug!("closed the oldest connection still waiting for its request, to make room");
    Some(Closing(entry.closed))
}

/// The connection cap that fits under the open-file limit, keeping
/// [`env::SOCKET_FD_RESERVE`] descriptors and the lingering refusals' free.
pub(crate) fn fit_to_open_files(wanted: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let Some(limit) = limit else {
        return wanted;
    };
    let room = limit
        .saturating_sub(env::SOCKET_FD_RESERVE + env::SOCKET_MAX_REFUSED_LINGERING as u64)
        .max(1);
    let fit = usize::try_from(room).unwrap_or(usize::MAX).min(wanted);
    if fit < wanted {
        tracing::warn!(
            max_connections = wanted,
            open_file_limit = limit,
            lowered_to = fit,
            "--max-connections lowered to fit the open-file limit (RLIMIT_NOFILE)"
        );
    }
    fit
}

/// Write `answer` (a whole HTTP answer) without reading anything, and close. So that a
/// peer that is still sending its request can read the answer, the connection lingers
/// up to [`env::SOCKET_REFUSED_LINGER_MS`], discarding what arrives unread, unless
/// [`env::SOCKET_MAX_REFUSED_LINGERING`] already linger: then it is closed at once.
pub(crate) async fn answer_and_close(
    mut stream: UnixStream,
    answer: Vec<u8>,
    lingering: Arc<AtomicUsize>,
) {
    // A fresh socket's buffer takes a few hundred bytes at once; never wait for it.
    let _ = stream.try_write(&answer);
    if lingering.fetch_add(1, Ordering::SeqCst) >= env::SOCKET_MAX_REFUSED_LINGERING {
        lingering.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let linger = async {
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 512];
        let mut discarded = 0;
        while discarded < 4096 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => discarded += n,
            }
        }
    };
    let _ =
        tokio::time::timeout(Duration::from_millis(env::SOCKET_REFUSED_LINGER_MS), linger).await;
    lingering.fetch_sub(1, Ordering::SeqCst);
}

/// The connection's stream, watching what hyper writes: once the kernel has taken a
/// byte after the answer's head (the first `\r\n\r\n`), the body is on its way and the
/// connection's pending delivery counts. Only head bytes are looked at. It holds the
/// connection's [`Ticket`] too, dropped after the stream (fields drop in order), so the
/// ticket's notice means the descriptor is closed.
pub(crate) struct Tracked {
    stream: UnixStream,
    _ticket: Ticket,
    conn: Arc<Connection>,
    head_end: HeadEnd,
}

impl Tracked {
    pub(crate) fn new(stream: UnixStream, ticket: Ticket, conn: Arc<Connection>) -> Tracked {
        Tracked {
            stream,
            _ticket: ticket,
            conn,
            head_end: HeadEnd::default(),
        }
    }

    fn wrote(&mut self, slices: &[&[u8]], mut n: usize) {
        for slice in slices {
            if n == 0 {
                break;
            }
            let taken = &slice[..slice.len().min(n)];
            n -= taken.len();
            if self.head_end.body_bytes(taken) > 0 {
                self.conn.body_written();
            }
        }
    }
}

/// Finds the end of an answer's head in the bytes written, across writes.
#[derive(Default)]
struct HeadEnd {
    /// How much of `\r\n\r\n` the last bytes matched.
    matched: u8,
    done: bool,
}

impl HeadEnd {
    /// How many of `bytes` come after the head.
    fn body_bytes(&mut self, bytes: &[u8]) -> usize {
        if self.done {
            return bytes.len();
        }
        for (i, &b) in bytes.iter().enumerate() {
            self.matched = match (self.matched, b) {
                (0 | 2, b'\r') => self.matched + 1,
                (1 | 3, b'\n') => self.matched + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if self.matched == 4 {
                self.done = true;
                return bytes.len() - i - 1;
            }
        }
        0
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.wrote(&[buf], n);
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            let slices: Vec<&[u8]> = bufs.iter().map(|b| &**b).collect();
            self.wrote(&slices, n);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_the_first_blank_line_across_writes() {
        let mut end = HeadEnd::default();
        assert_eq!(end.body_bytes(b"HTTP/1.1 200 OK\r\nA: b\r"), 0);
        assert_eq!(end.body_bytes(b"\n\r"), 0);
        assert_eq!(end.body_bytes(b"\nsecret"), 6);
        assert_eq!(
            end.body_bytes(b"\r\n\r\nmore"),
            8,
            "after the head, all is body"
        );
        let mut end = HeadEnd::default();
        assert_eq!(end.body_bytes(b"\r\r\n\r\n"), 0);
        assert_eq!(end.body_bytes(b"x"), 1);
    }

    #[test]
    fn a_full_registry_closes_the_oldest_waiting_connection_only() {
        let registry = Registry::new(2);
        let (first, _) = registry.admit().ok().unwrap();
        let (second, none) = registry.admit().ok().unwrap();
        assert!(none.is_none(), "room enough: nothing closed");
        assert!(first.stage().start(), "the first one's request started");
        let (third, closing) = registry
            .admit()
            .ok()
            .expect("room made by closing the second");
        assert!(closing.is_some());
        assert!(
            !second.stage().start(),
            "the second was closed to make room"
        );
        assert!(third.stage().start());
        let full = registry
            .admit()
            .err()
            .expect("both open ones are answering");
        assert_eq!(full.open, 2);
        drop(first);
        assert!(
            registry.admit().is_ok(),
            "a closed connection frees its place"
        );
    }
}
