//! A TCP proxy that counts the HTTP requests going through it, and the 429 answers:
//! how many requests agents really send to Vault, seen from outside the agents.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Listens on a free loopback port and forwards every connection to `upstream`.
pub struct CountingProxy {
    addr: String,
    requests: Arc<AtomicUsize>,
    too_many: Arc<AtomicUsize>,
}

impl CountingProxy {
    /// Forward to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> CountingProxy {
        CountingProxy::holding(upstream, None)
    }

    /// Like [`start`](Self::start), but a request whose bytes contain `marker` (e.g.
    /// `revoke-self`) is held back for `delay` before it is forwarded: a slow request
    /// to watch what the agent does meanwhile.
    pub fn holding(upstream: &str, hold: Option<(&'static str, Duration)>) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener
            .local_addr()
            .expect("the proxy's address")
            .to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let too_many = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_string();
        let (counter, refusals) = (requests.clone(), too_many.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (counter, refusals, client2, server2) = (
                    counter.clone(),
                    refusals.clone(),
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || pipe(client, server, &counter, b" HTTP/1.1\r", hold));
                std::thread::spawn(move || {
                    pipe(server2, client2, &refusals, b"HTTP/1.1 429 ", None)
                });
            }
        });
        CountingProxy {
            addr,
            requests,
            too_many,
        }
    }

    /// `http://127.0.0.1:PORT`, to give the agent as its Vault address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen so far (request lines ending in ` HTTP/1.1`).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Answers `429 Too Many Requests` seen so far.
    pub fn too_many(&self) -> usize {
        self.too_many.load(Ordering::SeqCst)
    }
}

/// Copy `from` to `to` until either closes, counting the occurrences of `marker`.
/// With `hold`, a read holding its marker waits for its delay before it is forwarded.
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    count: &AtomicUsize,
    marker: &[u8],
    hold: Option<(&'static str, Duration)>,
) {
    let mut buf = [0u8; 16 * 1024];
    let mut tail = Vec::new();
    while let Ok(n) = from.read(&mut buf) {
        if let Some((held, delay)) = hold
            && buf[..n].windows(held.len()).any(|w| w == held.as_bytes())
        {
            std::thread::sleep(delay);
        }
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        // A marker may straddle two reads: keep a tail shorter than it to search again.
        tail.extend_from_slice(&buf[..n]);
        let found = tail.windows(marker.len()).filter(|w| *w == marker).count();
        count.fetch_add(found, Ordering::SeqCst);
        let keep = tail.len().saturating_sub(marker.len() - 1);
        tail.drain(..keep);
    }
    let _ = to.shutdown(Shutdown::Write);
}
