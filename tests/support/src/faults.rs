//! A server that answers every request with one canned HTTP response: for the
//! transport faults a healthy Vault never produces on demand (a 502 from a proxy, a
//! body that is not JSON). Vault's own behaviour is always tested on a real OpenBao.
//! And [`FaultProxy`], in front of a real OpenBao, for faults in the middle of a
//! conversation: Vault killed between the login and the decrypt, or one answer
//! replaced by garbage, while everything else is the real server's.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A listening canned-response server; stops on drop.
pub struct FaultServer {
    addr: String,
    stop: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

impl FaultServer {
    /// Answer every request with `status`, `content_type` and `body`.
    pub fn start(status: u16, content_type: &str, body: &str) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault server");
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let response = format!(
            "HTTP/1.1 {status} Canned\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let (stop2, hits2) = (stop.clone(), hits.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        hits2.fetch_add(1, Ordering::Relaxed);
                        let mut buf = [0u8; 8192];
                        // Read the request head (and a small body) before answering.
                        let _ = stream.read(&mut buf);
                        let _ = stream.write_all(response.as_bytes());
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        FaultServer { addr, stop, hits }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How many requests were answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A server that accepts connections and never answers: for timeouts.
/// Returns its address; the listener lives until the process ends.
pub fn silent_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    addr
}

/// An address where nothing listens: a port we bound and released.
pub fn closed_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// What [`FaultProxy`] does to a request that matches a rule.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Close the connection without an answer (the server died mid-request).
    Drop,
    /// Close the connection without an answer, and refuse every connection from then
    /// on until [`FaultProxy::up`]: the server was killed.
    Down,
    /// Answer with this status, content type and body instead of the server.
    Answer(u16, &'static str, String),
}

struct Rule {
    marker: String,
    /// Matching requests still to forward before the fault applies.
    skip: usize,
    fault: Fault,
}

#[derive(Default)]
struct ProxyState {
    rules: Vec<Rule>,
    down: bool,
    /// Request lines (`POST /v1/transit/decrypt/k`) in the order they arrived.
    seen: Vec<String>,
    /// Request lines a rule applied to.
    faulted: Vec<String>,
}

/// An HTTP proxy in front of a real server (OpenBao) that forwards every request
/// unless a rule names it: then it drops the connection, answers instead of the
/// server, or goes down altogether. One request per connection (it asks the server
/// to close after each answer), so a client that keeps connections alive still has
/// each request looked at.
pub struct FaultProxy {
    addr: String,
    state: Arc<std::sync::Mutex<ProxyState>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(std::sync::Mutex::new(ProxyState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (state2, stop2) = (state.clone(), stop.clone());
        std::thread::spawn(move || accept_loop(Some(listener), addr, &upstream, &state2, &stop2));
        FaultProxy {
            addr: format!("http://{addr}"),
            state,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.addr
    }

    /// Requests whose request line contains `marker` meet `fault`, after the first
    /// `skip` of them have been forwarded.
    pub fn on(&self, marker: &str, skip: usize, fault: Fault) -> &FaultProxy {
        self.lock().rules.push(Rule {
            marker: marker.to_string(),
            skip,
            fault,
        });
        self
    }

    /// Accept and forward again (after [`Fault::Down`]); the rules are dropped.
    pub fn up(&self) {
        let mut state = self.lock();
        state.rules.clear();
        state.down = false;
    }

    /// Whether a [`Fault::Down`] has taken the proxy down.
    pub fn is_down(&self) -> bool {
        self.lock().down
    }

    /// Every request line seen so far.
    pub fn seen(&self) -> Vec<String> {
        self.lock().seen.clone()
    }

    /// The request lines a rule applied to.
    pub fn faulted(&self) -> Vec<String> {
        self.lock().faulted.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Accept while up; while down, hold no listener, so connections are refused.
fn accept_loop(
    mut listener: Option<TcpListener>,
    addr: std::net::SocketAddr,
    upstream: &str,
    state: &Arc<std::sync::Mutex<ProxyState>>,
    stop: &AtomicBool,
) {
    let pause = || std::thread::sleep(std::time::Duration::from_millis(2));
    while !stop.load(Ordering::Relaxed) {
        let down = state.lock().unwrap_or_else(|e| e.into_inner()).down;
        match (&listener, down) {
            (Some(_), true) => listener = None,
            (None, false) => listener = TcpListener::bind(addr).ok(),
            _ => {}
        }
        let Some(open) = &listener else {
            pause();
            continue;
        };
        open.set_nonblocking(true).unwrap();
        match open.accept() {
            Ok((client, _)) => {
                let (upstream, state) = (upstream.to_string(), state.clone());
                std::thread::spawn(move || handle(client, &upstream, &state));
            }
            Err(_) => pause(),
        }
    }
}

/// One request: read it whole, then forward it, or meet its rule's fault.
fn handle(mut client: TcpStream, upstream: &str, state: &std::sync::Mutex<ProxyState>) {
    client.set_nonblocking(false).unwrap();
    let Some((head, body)) = read_request(&mut client) else {
        return;
    };
    let line = head.lines().next().unwrap_or("").to_string();
    let fault = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.seen.push(line.clone());
        let fault = if state.down {
            Some(Fault::Drop)
        } else {
            matching_fault(&mut state.rules, &line)
        };
        if fault.is_some() {
            state.faulted.push(line.clone());
        }
        if matches!(fault, Some(Fault::Down)) {
            state.down = true;
        }
        fault
    };
    match fault {
        None => forward(client, upstream, &head, &body),
        Some(Fault::Drop | Fault::Down) => {
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::Answer(status, content_type, text)) => {
            let answer = format!(
                "HTTP/1.1 {status} Canned\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = client.write_all(answer.as_bytes());
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

fn matching_fault(rules: &mut [Rule], line: &str) -> Option<Fault> {
    let rule = rules.iter_mut().find(|r| line.contains(&r.marker))?;
    if rule.skip > 0 {
        rule.skip -= 1;
        return None;
    }
    Some(rule.fault.clone())
}

/// The request head (up to the blank line, as text) and its `Content-Length` body.
fn read_request(client: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = client.read(&mut buf).ok().filter(|&n| n > 0)?;
        bytes.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = bytes[end..].to_vec();
    while body.len() < length {
        let n = client.read(&mut buf).ok().filter(|&n| n > 0)?;
        body.extend_from_slice(&buf[..n]);
    }
    Some((head, body))
}

/// Send the request on with `Connection: close`, and the answer back until the server
/// closes.
fn forward(mut client: TcpStream, upstream: &str, head: &str, body: &[u8]) {
    let Ok(mut server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let mut lines: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let head = format!("{}\r\n\r\n", lines.join("\r\n"));
    if server.write_all(head.as_bytes()).is_err() || server.write_all(body).is_err() {
        return;
    }
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Both);
}

/// The accessors of every live token, as root sees them (`auth/token/accessors`),
/// less the root token's own: what a run must leave as it found.
pub fn live_accessors(bao: &crate::openbao::OpenBao) -> std::collections::BTreeSet<String> {
    let root = bao.read("auth/token/lookup-self")["data"]["accessor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let listed = bao
        .api("LIST", "auth/token/accessors", None)
        .unwrap_or_else(|e| panic!("LIST auth/token/accessors: {} {}", e.status, e.body));
    listed["data"]["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str())
        .filter(|k| *k != root)
        .map(str::to_string)
        .collect()
}
