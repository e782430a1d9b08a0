//! The static release binary (`scripts/build-static.sh`) in an empty root, as in a
//! `scratch` image: a directory holding only the binary, a CA bundle, `/etc/hosts`,
//! `/etc/resolv.conf`, the pod's token files and the socket directory; no libc, no
//! loader, no `/proc`, no `/etc/nsswitch.conf`. `serve` runs there under `chroot` as
//! uid 65532, logs in to a real OpenBao with kubernetes auth, reads its Secret from the
//! Kubernetes API double and decrypts it; the app (another uid, outside the root)
//! `get`s the document through the socket.
//!
//! Both peers are dialled by DNS name, never by address: the API server as
//! `kubernetes.default.svc` (in-cluster configuration, found in the root's `/etc/hosts`)
//! and Vault as `vault.secret-zero.test` over TLS (answered by a nameserver this test
//! runs on a loopback address, named in the root's `/etc/resolv.conf`). The static
//! glibc resolves both with its built-in `files` and `dns` back ends.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use secret_zero_testbed::agent::Agent;
use secret_zero_testbed::bed::{APP_POLICY, DERIVED, sealed_secret};
use secret_zero_testbed::certs::TestCa;
use secret_zero_testbed::cmd::Cmd;
use secret_zero_testbed::kube_double::{KubeDouble, Rule};
use secret_zero_testbed::openbao::{OpenBao, TlsListener};
use secret_zero_testbed::shared::{NOBODY, SharedDir, require_root};
use secret_zero_testbed::text::{doc_with, json_of, sentinel};
use secret_zero_testbed::wait::Poll;
use secret_zero_testbed::wiring;

/// The agent's uid, as the image's `USER` sets it.
const AGENT_UID: u32 = 65532;
/// Vault's name, known only to the test's nameserver.
const VAULT_NAME: &str = "vault.secret-zero.test";
/// The API server's in-cluster name (the double's certificate covers it), known only
/// to the root's `/etc/hosts`.
const API_NAME: &str = "kubernetes.default.svc";
/// Where the test's nameserver listens: a loopback address of its own, so it cannot
/// clash with a resolver the machine runs on 127.0.0.1 or 127.0.0.53.
const NAMESERVER: Ipv4Addr = Ipv4Addr::new(127, 83, 83, 1);
/// The socket inside the root, where the injected sidecar has it.
const SOCKET: &str = "/run/secret-zero/agent.sock";

#[test]
fn the_static_binary_serves_a_document_from_openbao_in_an_empty_root() {
    require_root("chroot into an empty root and listen on port 53");
    let binary = static_binary();
    assert_static(&binary);

    // Vault over TLS under its DNS name; the API double, whose certificate names
    // kubernetes.default.svc.
    let ca = TestCa::new("static-root-ca");
    let vault_cert = ca.server_cert(&[VAULT_NAME]);
    let bao = OpenBao::start_tls(TlsListener {
        cert_pem: &vault_cert.chain_pem,
        key_pem: &vault_cert.key_pem,
    });
    let double = KubeDouble::start();
    double.create_service_account("shop", "app");
    double.grant("shop", "app", Rule::new(&["get"], &["secrets"]));
    bao.enable_transit("transit");
    bao.create_key("transit", DERIVED, true);
    bao.write_policy("app", APP_POLICY);
    wiring::kubernetes_auth(&bao, &double);
    wiring::kubernetes_role(&bao, "shop-app", "shop", "app", &["app"]);

    let secret = sentinel();
    let doc = doc_with(&secret);
    let ciphertext = bao.encrypt("transit", DERIVED, &doc, Some("shop/app-secrets"));
    double.put_secret(sealed_secret(
        "shop",
        "app-secrets",
        DERIVED,
        "identity",
        &ciphertext,
    ));

    let nameserver = Nameserver::start(NAMESERVER, VAULT_NAME, Ipv4Addr::LOCALHOST);

    // The root: nothing but what a scratch image and the pod's mounts put there.
    let root = SharedDir::new();
    root.copy(&binary, "secret-zero");
    root.subdir("etc");
    root.write("etc/hosts", format!("127.0.0.1 {API_NAME}\n"));
    root.write(
        "etc/resolv.conf",
        format!("nameserver {NAMESERVER}\noptions timeout:2 attempts:3\n"),
    );
    root.subdir("etc/ssl/certs");
    root.write("etc/ssl/certs/ca-certificates.crt", ca.pem());
    root.subdir("var/run/secrets/kubernetes.io/serviceaccount");
    let api_token = double.issue_token("shop", "app", &[&double.issuer()], 3600);
    root.write(
        "var/run/secrets/kubernetes.io/serviceaccount/token",
        &api_token,
    );
    root.write(
        "var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        double.ca_pem(),
    );
    root.write(
        "var/run/secrets/kubernetes.io/serviceaccount/namespace",
        "shop",
    );
    root.subdir("var/run/secrets/secret-zero");
    root.write(
        "var/run/secrets/secret-zero/token",
        double.issue_token("shop", "app", &["vault"], 600),
    );
    let socket_dir = root.subdir("run/secret-zero");
    chown(&socket_dir, Some(AGENT_UID), Some(AGENT_UID)).expect("chown the socket directory");
    let listing = tree(root.path());

    // The agent's arguments as `inject` writes them, the app's uid admitted.
    let vault_port = port_of(bao.tls_addr());
    let api_port = port_of(&double.url());
    let mut serve = in_root(root.path());
    serve
        .args(["/secret-zero", "serve", "--secret=shop/app-secrets"])
        .arg(format!("--vault-addr=https://{VAULT_NAME}:{vault_port}"))
        .args([
            "--role=shop-app",
            "--token-file=/var/run/secrets/secret-zero/token",
        ])
        .arg(format!("--socket={SOCKET}"))
        .arg(format!("--allow-uid={NOBODY}"))
        .arg("--socket-mode=0666")
        .env("KUBERNETES_SERVICE_HOST", API_NAME)
        .env("KUBERNETES_SERVICE_PORT", api_port.to_string());
    let host_socket = root.join(SOCKET.trim_start_matches('/'));
    let agent = Agent::start(&serve, host_socket.display().to_string());

    // Ready, as kubelet's exec probe asks it: from inside the root, as the agent's uid.
    let mut probe = in_root(root.path());
    probe
        .args(["/secret-zero", "probe", "--socket", SOCKET])
        .quiet();
    Poll::within(Duration::from_secs(30)).eventually(
        || probe.run().success().then_some(()),
        || {
            format!(
                "the agent in the empty root is not ready\nroot:\n{listing}\nnameserver saw: {:?}\nagent log:\n{}",
                nameserver.queries(),
                agent.log()
            )
        },
    );

    // The app, another uid outside the root, takes the document through the socket.
    let app = SharedDir::new();
    let client = app.copy(&binary, "secret-zero");
    let got = Cmd::new(&client)
        .as_uid(NOBODY, &app)
        .args(["get", "--socket"])
        .arg(&host_socket)
        .run();
    assert!(
        got.success(),
        "get failed: {}\nagent log:\n{}",
        got.stderr,
        agent.log()
    );
    assert_eq!(json_of(&got.bytes), json_of(&doc));

    // Vault's name came from the nameserver (the double answered no other), the API
    // server's from /etc/hosts: the nameserver answers NXDOMAIN for it, which the
    // resolver takes as final, so the Secret could only be read through the file.
    let queries = nameserver.queries();
    assert!(
        queries.iter().any(|q| q == VAULT_NAME),
        "the agent never asked the nameserver for {VAULT_NAME}: {queries:?}"
    );
    assert!(
        double.requests().iter().any(|r| r.contains("app-secrets")),
        "the agent never read its Secret from the API server"
    );
    let log = agent.log();
    assert!(!log.contains(&secret), "the log leaks the secret:\n{log}");
}

/// The static binary, built (or found up to date) by `scripts/build-static.sh`, which
/// `scripts/test.sh` runs before the tests so that this is a no-op there.
fn static_binary() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-static.sh");
    let mut build = Command::new(&script);
    // What cargo sets for a test, not for a build: a build script that watches one of
    // these (ring's watches CARGO_MANIFEST_DIR) would otherwise see it change between
    // this build and the one scripts/test.sh ran, and rebuild the whole release tree.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_tests = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || ["CARGO_TARGET_TMPDIR", "CARGO_PRIMARY_PACKAGE", "OUT_DIR"].contains(&&*name);
        if set_for_tests {
            build.env_remove(&*name);
        }
    }
    let out = build
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("a path");
    let path = PathBuf::from(stdout.lines().last().expect("the binary's path").trim());
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// The binary asks for no program interpreter (`ld-linux.so`) and no shared library:
/// its ELF program headers have no `PT_INTERP`, and its dynamic section (a static PIE
/// has one, for its own relocations) has no `DT_NEEDED`.
fn assert_static(binary: &Path) {
    let elf = std::fs::read(binary).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "{} is not ELF", binary.display());
    assert_eq!(elf[4], 2, "64-bit ELF");
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let header = phoff + i * phentsize;
        let kind = u32_at(header);
        const PT_DYNAMIC: u32 = 2;
        const PT_INTERP: u32 = 3;
        assert_ne!(
            kind,
            PT_INTERP,
            "{} has a program interpreter",
            binary.display()
        );
        if kind == PT_DYNAMIC {
            let (offset, size) = (u64_at(header + 8), u64_at(header + 32));
            for entry in (offset..offset + size).step_by(16) {
                const DT_NEEDED: usize = 1;
                assert_ne!(
                    u64_at(entry),
                    DT_NEEDED,
                    "{} needs a shared library",
                    binary.display()
                );
            }
        }
    }
}

/// `chroot --userspec=65532:65532 ROOT`, `HOME=/`: the rest of the command line runs
/// inside the root as the agent's uid.
fn in_root(root: &Path) -> Cmd {
    let mut cmd = Cmd::new("chroot");
    cmd.arg(format!("--userspec={AGENT_UID}:{AGENT_UID}"))
        .arg(root)
        .home("/");
    cmd
}

fn port_of(url: &str) -> u16 {
    let port = url.rsplit(':').next().expect("a port");
    port.trim_end_matches('/').parse().expect("a port number")
}

/// Every path under `dir`, for a failure message.
fn tree(dir: &Path) -> String {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(format!("/{}", path.strip_prefix(base).unwrap().display()));
            if path.is_dir() {
                walk(&path, base, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out.join("\n")
}

/// A nameserver for one name: an A record for `name`, no AAAA record (an empty
/// answer), NXDOMAIN for every other name. It records each name it was asked.
struct Nameserver {
    stop: Arc<AtomicBool>,
    queries: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Nameserver {
    fn start(addr: Ipv4Addr, name: &str, answer: Ipv4Addr) -> Nameserver {
        let socket = UdpSocket::bind((addr, 53))
            .unwrap_or_else(|e| panic!("the test's nameserver cannot listen on {addr}:53: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, queries, name) = (stop.clone(), queries.clone(), name.to_string());
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some((asked, reply)) = dns_reply(&buf[..n], &name, answer) {
                        queries.lock().unwrap().push(asked);
                        let _ = socket.send_to(&reply, from);
                    }
                }
            })
        };
        Nameserver {
            stop,
            queries,
            thread: Some(thread),
        }
    }

    fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for Nameserver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The answer to a DNS query (RFC 1035 §4.1) with one question: the name asked and
/// the reply. `None` for anything that is not such a query.
fn dns_reply(query: &[u8], name: &str, answer: Ipv4Addr) -> Option<(String, Vec<u8>)> {
    const TYPE_A: u16 = 1;
    const CLASS_IN: u16 = 1;
    const NXDOMAIN: u16 = 3;
    let be16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(query.get(at..at + 2)?.try_into().ok()?))
    };
    let flags = be16(2)?;
    if flags & 0x8000 != 0 || be16(4)? != 1 {
        return None;
    }
    // The question's name: length-prefixed labels up to a zero byte (a query carries
    // no compression pointers).
    let mut labels = Vec::new();
    let mut at = 12;
    loop {
        let len = *query.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_lowercase());
        at += len;
    }
    let (qtype, qclass) = (be16(at)?, be16(at + 2)?);
    let question = &query[12..at + 4];
    let asked = labels.join(".");

    let known = asked == name;
    let answers = u16::from(known && qtype == TYPE_A && qclass == CLASS_IN);
    let rcode = if known { 0 } else { NXDOMAIN };
    // QR, the query's opcode and RD, RA, and the answer code.
    let reply_flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode;
    let mut reply = Vec::with_capacity(64);
    for word in [be16(0)?, reply_flags, 1, answers, 0, 0] {
        reply.extend_from_slice(&word.to_be_bytes());
    }
    reply.extend_from_slice(question);
    if answers == 1 {
        // The name by a pointer to the question's (offset 12), TTL 60 s, 4 bytes.
        reply.extend_from_slice(&[0xc0, 0x0c]);
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&CLASS_IN.to_be_bytes());
        reply.extend_from_slice(&60u32.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&answer.octets());
    }
    Some((asked, reply))
}
