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
        CountingProxy::serve(upstream, hold, 0, String::new())
    }

    /// Like [`start`](Self::start), but the first `refusals` connections are answered
    /// by the proxy itself, without reaching `upstream`: `429 Too Many Requests` with
    /// `Retry-After: <retry_after>` (any text, well-formed or not; `None` leaves the
    /// header out), then closed. For the answers a healthy OpenBao never gives.
    pub fn refusing(upstream: &str, refusals: usize, retry_after: Option<&str>) -> CountingProxy {
        let header = retry_after
            .map(|v| format!("Retry-After: {v}\r\n"))
            .unwrap_or_default();
        let body = r#"{"errors":["rate limit quota exceeded"]}"#;
        let answer = format!(
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n{header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        CountingProxy::serve(upstream, None, refusals, answer)
    }

    /// The proxy: the first `refusals` connections get `answer` from the proxy itself;
    /// every other one is piped to `upstream`, its requests and 429s counted.
    fn serve(
        upstream: &str,
        hold: Option<(&'static str, Duration)>,
        refusals: usize,
        answer: String,
    ) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener
            .local_addr()
            .expect("the proxy's address")
            .to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let too_many = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_string();
        let (counter, refused) = (requests.clone(), too_many.clone());
        std::thread::spawn(move || {
            for mut client in listener.incoming().flatten() {
                if refused.load(Ordering::SeqCst) < refusals {
                    // Read the request head, count it, refuse it.
                    let mut buf = [0u8; 16 * 1024];
                    let _ = client.read(&mut buf);
                    counter.fetch_add(1, Ordering::SeqCst);
                    refused.fetch_add(1, Ordering::SeqCst);
                    let _ = client.write_all(answer.as_bytes());
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (counter, refused, client2, server2) = (
                    counter.clone(),
                    refused.clone(),
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || pipe(client, server, &counter, b" HTTP/1.1\r", hold));
                std::thread::spawn(move || {
                    pipe(server2, client2, &refused, b"HTTP/1.1 429 ", None)
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
