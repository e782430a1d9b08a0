//! The agent's socket under many and hostile clients, with `secret-zero serve` as a
//! process against a real OpenBao: 64 clients racing for one delivery and for three
//! (each from its own Vault login, counted on the wire to OpenBao), idle and slow
//! clients in numbers beyond the agent's open-file limit, and `accept` failing at that
//! limit. The bounds are correctness deadlines, stated where they are asserted, not
//! speed targets (docs/socket-limits.md).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use secret_zero::client::{self, ClientError, SocketSpec};
use secret_zero_testbed::agent::{self, Agent};
use secret_zero_testbed::bed::Bed;
use secret_zero_testbed::bin;
use secret_zero_testbed::cmd::Cmd;
use secret_zero_testbed::text::{doc_with, json_of, sentinel};

const PRLIMIT: &str = "/usr/bin/prlimit";

/// How long the allowed client may wait for its delivery while the flood goes on: a
/// correctness deadline (the header-read timeout is 5 s; without the limits it waited
/// for the 120 s connection timeout, or forever).
const DELIVERY_BOUND: Duration = Duration::from_secs(10);

/// The share of one CPU the agent may use while flooded: a busy loop would be near 100%.
const CPU_BOUND: f64 = 0.3;

/// /proc reports times in USER_HZ, which is 100 on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// Counts, on the wire between the agent and OpenBao, the requests whose request line
/// contains `marker` (e.g. `auth/kubernetes/login`): what OpenBao was really asked.
struct WireCounter {
    url: String,
    seen: Arc<AtomicUsize>,
}

impl WireCounter {
    fn start(upstream: &str, marker: &'static str) -> WireCounter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let counter = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (back_from, back_to) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                let counter = counter.clone();
                std::thread::spawn(move || forward(client, server, Some((marker, counter))));
                std::thread::spawn(move || forward(back_from, back_to, None));
            }
        });
        WireCounter { url, seen }
    }

    fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

/// Copy until either side closes, counting request lines that hold the marker.
fn forward(mut from: TcpStream, mut to: TcpStream, count: Option<(&str, Arc<AtomicUsize>)>) {
    let mut chunk = [0u8; 16 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((marker, seen)) = &count {
            // Keep a tail so a request line split between two reads is still seen.
            carry.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&carry).into_owned();
            let mut lines = text.split("\r\n").collect::<Vec<_>>();
            let last = lines.pop().unwrap_or_default().to_string();
            for line in lines {
                if line.ends_with(" HTTP/1.1") && line.contains(marker) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            }
            carry = last.into_bytes();
            carry.truncate(4096);
        }
        if to.write_all(&chunk[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// `serve` as shop/app, as the bed runs it, against `vault` and under `prefix` (e.g.
/// `prlimit --nofile=256:256 --`).
fn serve(bed: &Bed, socket: &str, vault: &str, prefix: &[&str], extra: &[&str]) -> Agent {
    let mut cmd = match prefix.split_first() {
        Some((program, args)) => {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install it with `apt-get install -y util-linux`"
            );
            let mut cmd = Cmd::new(program);
            cmd.args(args).arg(bin::secret_zero());
            cmd
        }
        None => Cmd::secret_zero(),
    };
    cmd.args(["serve", "--socket", socket])
        .args(["--vault-addr", vault, "--role", "shop-app"])
        .arg("--token-file")
        .arg(bed.token_file("shop", "app", "vault", 600))
        .arg("--kubeconfig")
        .arg(bed.kubeconfig("app"))
        .args(["--retry-timeout", "10s"])
        .args(extra);
    let mut agent = Agent::start(&cmd, socket);
    agent.wait_ready();
    agent
}

/// `clients` threads fetch at once: the documents delivered and the number of 410s.
fn race(socket: &str, clients: usize) -> (Vec<Vec<u8>>, usize) {
    let socket = SocketSpec::Path(socket.into());
    let start = Arc::new(Barrier::new(clients));
    let racers: Vec<_> = (0..clients)
        .map(|_| {
            let (socket, start) = (socket.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                client::fetch_json_blocking(&socket).map(|doc| doc.bytes().to_vec())
            })
        })
        .collect();
    let (mut delivered, mut gone) = (Vec::new(), 0);
    for racer in racers {
        match racer.join().unwrap() {
            Ok(doc) => delivered.push(doc),
            Err(ClientError::Gone { .. }) => gone += 1,
            Err(e) => panic!("a racing client got neither the document nor 410: {e}"),
        }
    }
    (delivered, gone)
}

#[test]
fn sixty_four_clients_racing_for_one_delivery_get_one_200_and_sixty_three_410s() {
    let bed = Bed::new();
    let doc = doc_with(&sentinel());
    bed.put_bound("shop", "app-secrets", &doc);
    let socket = bed.socket();
    let _agent = serve(
        &bed,
        &socket,
        bed.bao.addr(),
        &[],
        &["--secret", "shop/app-secrets"],
    );

    let (delivered, gone) = race(&socket, 64);
    assert_eq!((delivered.len(), gone), (1, 63));
    assert_eq!(json_of(&delivered[0]), json_of(&doc));
}

/// Logins and decrypts are counted on the wire to OpenBao, by two counting forwarders
/// in front of it (OpenBao refuses audit devices enabled through its API, and the test
/// bed's dev server has no audit configuration).
#[test]
fn sixty_four_clients_racing_for_three_deliveries_get_three_each_from_its_own_login() {
    let bed = Bed::new();
    let doc = doc_with(&sentinel());
    bed.put_bound("shop", "app-secrets", &doc);
    // Agent -> login counter -> decrypt counter -> OpenBao.
    let decrypts = WireCounter::start(bed.bao.addr(), "/v1/transit/decrypt/");
    let logins = WireCounter::start(&decrypts.url, "/v1/auth/kubernetes/login");
    let socket = bed.socket();
    let agent = serve(
        &bed,
        &socket,
        &logins.url,
        &[],
        &["--secret", "shop/app-secrets", "--max-deliveries", "3"],
    );
    assert_eq!(
        (logins.seen(), decrypts.seen()),
        (1, 1),
        "one login at start-up"
    );

    let (delivered, gone) = race(&socket, 64);
    assert_eq!((delivered.len(), gone), (3, 61));
    for copy in &delivered {
        assert_eq!(json_of(copy), json_of(&doc));
    }
    assert_eq!(
        (logins.seen(), decrypts.seen()),
        (3, 3),
        "each delivery its own login and decrypt, and no more"
    );
    // Each login's token was its own and is revoked.
    let log = agent.log();
    assert_eq!(log.matches("Vault token revoked").count(), 3, "{log}");
    let mut accessors: Vec<&str> = log
        .match_indices("accessor=")
        .map(|(at, _)| {
            log[at + "accessor=".len()..]
                .split(|c: char| c.is_whitespace() || c == '"' || c == ',')
                .next()
                .unwrap()
        })
        .collect();
    accessors.sort_unstable();
    accessors.dedup();
    assert_eq!(accessors.len(), 3, "three distinct tokens: {accessors:?}");
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / TICKS_PER_SECOND
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Opens connections that never send a byte, `per_second` of them, keeping the last
/// `keep` open, and `slow` connections that send one byte a second of a head that
/// never ends; until dropped.
struct Flood {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    opened: Arc<AtomicUsize>,
}

impl Flood {
    fn start(socket: &str, initial: usize, per_second: u32, keep: usize, slow: usize) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicUsize::new(0));
        let mut idle: Vec<UnixStream> = (0..initial)
            .map(|_| UnixStream::connect(socket).expect("the backlog takes an idle client"))
            .collect();
        opened.fetch_add(initial, Ordering::SeqCst);
        let mut threads = Vec::new();
        {
            let (socket, stop, opened) = (socket.to_string(), stop.clone(), opened.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Ok(stream) = UnixStream::connect(&socket) {
                        idle.push(stream);
                        opened.fetch_add(1, Ordering::SeqCst);
                    }
                    if idle.len() > keep {
                        idle.remove(0);
                    }
                    std::thread::sleep(Duration::from_secs(1) / per_second);
                }
            }));
        }
        {
            let (socket, stop) = (socket.to_string(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut slow: Vec<UnixStream> = (0..slow)
                    .filter_map(|_| UnixStream::connect(&socket).ok())
                    .collect();
                let head = b"GET /v1/status HTTP/1.1\r\nX-Slow: ";
                for stream in &mut slow {
                    let _ = stream.write_all(&head[..1]);
                }
                let mut sent = 1;
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_secs(1));
                    let byte = head.get(sent).copied().unwrap_or(b'a');
                    sent += 1;
                    for stream in &mut slow {
                        let _ = stream.write_all(&[byte]);
                    }
                }
            }));
        }
        Flood {
            stop,
            threads,
            opened,
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The allowed client is delivered within [`DELIVERY_BOUND`] while connections that
/// never speak (of the agent's own uid, so not refusable) and slow ones outnumber the
/// agent's open-file limit (256, set with prlimit), and the agent stays under
/// [`CPU_BOUND`] of a CPU meanwhile.
#[test]
fn idle_and_slow_clients_beyond_the_open_file_limit_do_not_keep_the_application_out() {
    let bed = Bed::new();
    let doc = doc_with(&sentinel());
    bed.put_bound("shop", "app-secrets", &doc);
    let socket = bed.socket();
    let agent = serve(
        &bed,
        &socket,
        bed.bao.addr(),
        &[PRLIMIT, "--nofile=256:256", "--"],
        &["--secret", "shop/app-secrets", "--max-deliveries", "2"],
    );
    let pid = agent.pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 256 ")),
        "{limits}"
    );

    // 400 silent connections at once, 50 more a second (the last 400 kept open), and
    // 20 clients sending one byte a second.
    let flood = Flood::start(&socket, 400, 50, 400, 20);
    std::thread::sleep(Duration::from_secs(1));
    let cpu_before = cpu_seconds(pid);
    let measured = Instant::now();

    let mut waited = Vec::new();
    for n in 1..=2 {
        let asked = Instant::now();
        let got = client::fetch_json_blocking(&SocketSpec::Path(socket.as_str().into()))
            .unwrap_or_else(|e| panic!("delivery {n} during the flood: {e}\n{}", agent.log()));
        assert_eq!(json_of(got.bytes()), json_of(&doc));
        assert!(
            asked.elapsed() < DELIVERY_BOUND,
            "delivery {n} took {:?} during the flood",
            asked.elapsed()
        );
        waited.push(asked.elapsed());
        std::thread::sleep(Duration::from_secs(2));
    }
    while measured.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let window = measured.elapsed().as_secs_f64();
    let files = open_files(pid);
    let opened = flood.opened.load(Ordering::SeqCst);
    drop(flood);
    assert!(
        opened > 256 + 100,
        "the flood opened only {opened} connections"
    );
    assert!(
        cpu < CPU_BOUND * window,
        "the agent used {cpu:.2} s of CPU in {window:.1} s of flood"
    );
    // At most the connection cap (128) and the 48 kept free, whatever the flood.
    assert!(files <= 128 + 48, "{files} descriptors open");
    let gone = agent::get(&socket, &[]);
    assert_eq!(gone.code, 11, "{}", gone.stderr);
    eprintln!(
        "flood: {opened} connections opened, deliveries after {waited:?}, agent CPU {cpu:.2} s \
         in {window:.1} s, {files} descriptors open at the end"
    );
}

/// With its open-file limit lowered under what its connections hold (prlimit on the
/// running agent), `accept` fails: the agent logs it once, closes the oldest silent
/// connection to free a descriptor, backs off instead of spinning, and still delivers.
#[test]
fn accept_failing_at_the_open_file_limit_backs_off_logs_once_and_still_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let doc = doc_with(&sentinel());
    let file = dir.path().join("doc.json");
    std::fs::write(&file, &doc).unwrap();
    let socket = dir.path().join("agent.sock").display().to_string();
    let mut cmd = agent::serve(&socket);
    cmd.arg("--plaintext-file").arg(&file);
    let mut agent = Agent::start(&cmd, socket.as_str());
    agent.wait_ready();
    let pid = agent.pid();
    let lowered = Cmd::new(PRLIMIT)
        .args([format!("--pid={pid}"), "--nofile=48:48".into()])
        .run();
    assert!(lowered.success(), "prlimit: {}", lowered.stderr);

    let flood = Flood::start(&socket, 150, 20, 200, 0);
    std::thread::sleep(Duration::from_secs(1));
    let cpu_before = cpu_seconds(pid);
    let measured = Instant::now();
    let asked = Instant::now();
    let got = client::fetch_json_blocking(&SocketSpec::Path(socket.as_str().into()))
        .unwrap_or_else(|e| panic!("no delivery at the open-file limit: {e}\n{}", agent.log()));
    assert_eq!(json_of(got.bytes()), json_of(&doc));
    let waited = asked.elapsed();
    assert!(waited < DELIVERY_BOUND, "took {waited:?}");
    while measured.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let window = measured.elapsed().as_secs_f64();
    drop(flood);
    let log = agent.log();
    assert_eq!(
        log.matches("accept failed").count(),
        1,
        "logged once, not once per failure:\n{log}"
    );
    assert!(
        log.contains("Too many open files") || log.contains("os error 24"),
        "{log}"
    );
    assert!(
        cpu < CPU_BOUND * window,
        "the agent used {cpu:.2} s of CPU in {window:.1} s at the limit"
    );
    eprintln!("at the limit: delivery after {waited:?}, agent CPU {cpu:.2} s in {window:.1} s");
}

/// Under a small open-file limit the connection cap is lowered to leave 48 descriptors
/// free, so connections alone never exhaust it: 150 silent clients against a limit of
/// 100 never make `accept` fail, and the application is delivered.
#[test]
fn the_connection_cap_is_lowered_to_leave_room_under_the_open_file_limit() {
    let dir = tempfile::tempdir().unwrap();
    let doc = doc_with(&sentinel());
    let file = dir.path().join("doc.json");
    std::fs::write(&file, &doc).unwrap();
    let socket = dir.path().join("agent.sock").display().to_string();
    let mut cmd = Cmd::new(PRLIMIT);
    cmd.args(["--nofile=100:100", "--"])
        .arg(bin::secret_zero())
        .args(["serve", "--socket", &socket])
        .arg("--plaintext-file")
        .arg(&file);
    let mut agent = Agent::start(&cmd, socket.as_str());
    agent.wait_ready();
    assert!(
        agent.log().contains("lowered_to=52"),
        "128 lowered to 100 - 48:\n{}",
        agent.log()
    );

    let flood = Flood::start(&socket, 150, 20, 200, 0);
    std::thread::sleep(Duration::from_secs(1));
    let files = open_files(agent.pid());
    let asked = Instant::now();
    let got = client::fetch_json_blocking(&SocketSpec::Path(socket.as_str().into()))
        .unwrap_or_else(|e| panic!("no delivery: {e}\n{}", agent.log()));
    assert_eq!(json_of(got.bytes()), json_of(&doc));
    let waited = asked.elapsed();
    assert!(waited < DELIVERY_BOUND, "took {waited:?}");
    drop(flood);
    assert!(files <= 52 + 20, "{files} descriptors open");
    assert!(!agent.log().contains("accept failed"), "{}", agent.log());
    eprintln!("lowered cap: delivery after {waited:?}, {files} descriptors open");
}
