//! A TCP proxy that counts the HTTP requests going through it: how many requests an
//! agent really sends to Vault, seen from outside the agent.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Listens on a free loopback port and forwards every connection to `upstream`.
pub struct CountingProxy {
    addr: String,
    requests: Arc<AtomicUsize>,
}

impl CountingProxy {
    /// Forward to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener
            .local_addr()
            .expect("the proxy's address")
            .to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_string();
        let counter = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (counter, client2, server2) = (
                    counter.clone(),
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || pipe(client, server, Some(counter)));
                std::thread::spawn(move || pipe(server2, client2, None));
            }
        });
        CountingProxy { addr, requests }
    }

    /// `http://127.0.0.1:PORT`, to give the agent as its Vault address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen so far (request lines ending in ` HTTP/1.1`).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Copy `from` to `to` until either closes; with `count`, count the request lines.
fn pipe(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicUsize>>) {
    let mut buf = [0u8; 16 * 1024];
    let mut tail = Vec::new();
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(count) = &count {
            // A request line may straddle two reads: keep a short tail to search.
            tail.extend_from_slice(&buf[..n]);
            let found = tail.windows(10).filter(|w| w == b" HTTP/1.1\r").count();
            count.fetch_add(found, Ordering::SeqCst);
            let keep = tail.len().saturating_sub(9);
            tail.drain(..keep);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
