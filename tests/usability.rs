//! What a new user trips over: stopping an agent that is still retrying, the hints and
//! log lines that must not send anyone the wrong way, flags that must agree with the
//! Secret, and the command line's exit codes.

use std::path::Path;
use std::time::{Duration, Instant};

use secret_zero_testbed::bed::{Bed, DERIVED, sealed_secret};
use secret_zero_testbed::cmd::{Cmd, Process};
use secret_zero_testbed::faults::closed_addr;
use secret_zero_testbed::text::json_of;
use secret_zero_testbed::wait::Poll;

// ---------------------------------------------------------------- stop signals

/// `serve` started with `source` against peers that are down, its log file, and the
/// socket it bound.
struct Retrying {
    process: Process,
    log: std::path::PathBuf,
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Retrying {
    fn start(source: &dyn Fn(&Path) -> Vec<String>) -> Retrying {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "a-service-account-token").unwrap();
        let socket = dir.path().join("agent.sock");
        let log = dir.path().join("agent.log");
        let mut cmd = Cmd::secret_zero();
        cmd.args(["serve", "--role", "app", "--retry-timeout", "10m"])
            .arg("--vault-addr")
            .arg(closed_addr())
            .arg("--token-file")
            .arg(&token)
            .arg("--socket")
            .arg(&socket)
            .args(source(dir.path()))
            .log_to(&log);
        let mut process = cmd.spawn();
        let read = || std::fs::read_to_string(&log).unwrap_or_default();
        Poll::within(Duration::from_secs(20)).eventually(
            || {
                if let Some(status) = process.exited() {
                    panic!(
                        "serve exited with {status} instead of retrying:\n{}",
                        read()
                    );
                }
                read().contains("transient failure, retrying").then_some(())
            },
            || format!("serve is not retrying:\n{}", read()),
        );
        Retrying {
            process,
            log,
            socket,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send `signal` and return the exit code, asserting that it came within the
    /// deadline.
    fn stop(mut self, signal: &str) -> (i32, String) {
        let sent = Cmd::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.process.id().to_string())
            .run();
        assert!(sent.success(), "kill -{signal}: {}", sent.stderr);
        let sent_at = Instant::now();
        // The agent exits within a second; 5 s is a generous bound for a loaded machine,
        // and far below the 10 minutes of --retry-timeout it would otherwise wait out.
        let status = Poll::within(Duration::from_secs(5))
            .until(|| self.process.exited())
            .unwrap_or_else(|| {
                panic!(
                    "serve still running {:?} after SIG{signal}:\n{}",
                    sent_at.elapsed(),
                    self.log()
                )
            });
        let log = self.log();
        assert!(!self.socket.exists(), "socket left behind:\n{log}");
        (status.code().unwrap_or(-1), log)
    }
}

fn ciphertext_file(dir: &Path) -> Vec<String> {
    let file = dir.join("ciphertext");
    std::fs::write(&file, "vault:v1:AAAA\n").unwrap();
    vec![
        "--ciphertext-file".into(),
        file.display().to_string(),
        "--transit-key".into(),
        "k".into(),
    ]
}

/// A kubeconfig whose API server is a closed port.
fn secret_behind_a_dead_api(dir: &Path) -> Vec<String> {
    let server = closed_addr().replace("http://", "https://");
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters: [{{name: c, cluster: {{server: \"{server}\", insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n\
             contexts: [{{name: c, context: {{cluster: c, user: u, namespace: shop}}}}]\n"
        ),
    )
    .unwrap();
    vec![
        "--secret".into(),
        "shop/app-secrets".into(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
    ]
}

#[test]
fn sigterm_while_vault_is_down_at_start_up_exits_zero_at_once() {
    let agent = Retrying::start(&ciphertext_file);
    let (code, log) = agent.stop("TERM");
    // Code 0, as for a SIGTERM after start-up: a stop that was asked for.
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("SIGTERM during start-up: stopped before the document was fetched"),
        "{log}"
    );
}

#[test]
fn sigint_while_the_api_is_down_at_start_up_exits_zero_at_once() {
    let agent = Retrying::start(&secret_behind_a_dead_api);
    let (code, log) = agent.stop("INT");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("SIGINT"), "{log}");
}

// ---------------------------------------------------------------- flags and annotations

/// `--format` is checked against the Secret's `secret-zero.dev/format` like every other
/// flag that has an annotation: a contradiction is exit 3 and one line, and nothing is
/// served.
#[test]
fn a_format_flag_that_contradicts_the_annotation_is_refused() {
    let bed = Bed::new();
    bed.put_bound("shop", "app-secrets", br#"{"a":"b"}"#);
    let mut raw = bed.encrypt(DERIVED, b"opaque bytes", Some("shop/raw-secrets"));
    let mut secret = sealed_secret("shop", "raw-secrets", DERIVED, "identity", &raw);
    secret["metadata"]["annotations"]["secret-zero.dev/format"] = "raw".into();
    bed.double.put_secret(secret);
    raw.clear();

    #[rustfmt::skip]
    let cases: [(&[&str], &str); 2] = [
        (&["--secret", "shop/app-secrets", "--format", "raw"],
         r#"--format "raw" contradicts Secret shop/app-secrets's annotation secret-zero.dev/format="json" (hint: drop --format or fix the annotation)"#),
        (&["--secret", "shop/raw-secrets"],
         r#"Secret shop/raw-secrets has secret-zero.dev/format="raw" but the agent serves json (the default of --format) (hint: pass --format raw)"#),
    ];
    for (args, line) in cases {
        let mut agent = bed.serve(&bed.socket(), args);
        let (code, log) = agent.wait_exit();
        assert_eq!(code, 3, "{args:?}:\n{log}");
        assert_eq!(
            log.trim().lines().last().unwrap(),
            format!("secret-zero: error: {line}"),
            "{args:?}"
        );
    }
    // Agreeing flags are fine.
    let agent = bed.serve_ready(&["--secret", "shop/raw-secrets", "--format", "raw"]);
    assert_eq!(agent.get_ok(&["--format", "raw"]).bytes, b"opaque bytes");
    let served = bed.serve_and_get("shop/app-secrets", &["--format", "json"]);
    assert_eq!(json_of(&served), serde_json::json!({"a": "b"}));
}

// ---------------------------------------------------------------- hardening

/// Whether this test runs as root (then CAP_IPC_LOCK must be dropped explicitly).
fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Under restricted Pod Security the agent has no CAP_IPC_LOCK and a small
/// RLIMIT_MEMLOCK: it says so once, as information with the reasons it is safe, and
/// gives no instruction to add a capability the platform forbids.
#[test]
fn memory_that_cannot_be_locked_is_explained_not_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.json");
    std::fs::write(&doc, r#"{"a":"b"}"#).unwrap();
    let socket = dir.path().join("agent.sock").display().to_string();
    // util-linux's prlimit and setpriv: the limit kubelet leaves (64 KiB) and, for
    // root, no IPC_LOCK in the bounding set (so not in the agent's effective set).
    let mut cmd = Cmd::new("prlimit");
    cmd.arg("--memlock=65536");
    if running_as_root() {
        cmd.args(["setpriv", "--bounding-set", "-ipc_lock"]);
    }
    cmd.arg(secret_zero_testbed::bin::secret_zero())
        .args(["serve", "--socket", &socket, "--plaintext-file"])
        .arg(&doc);
    let mut agent = secret_zero_testbed::agent::Agent::start(&cmd, &socket);
    agent.wait_ready();
    let log = agent.log();
    let note = log
        .lines()
        .find(|l| l.contains("memory not locked"))
        .unwrap_or_else(|| panic!("no line about memory locking:\n{log}"));
    assert!(note.contains(" INFO "), "not information: {note}");
    assert!(
        note.contains("RLIMIT_MEMLOCK is 65536 bytes")
            && note.contains("restricted Pod Security")
            && note.contains("swap")
            && note.contains("zeroizing allocator"),
        "{note}"
    );
    assert!(!log.contains("add the IPC_LOCK"), "{log}");
    assert!(log.contains("memory_locked=false"), "{log}");
}
