//! What a new user trips over: stopping an agent that is still retrying, the hints and
//! log lines that must not send anyone the wrong way, flags that must agree with the
//! Secret, and the command line's exit codes.

use std::path::Path;
use std::time::{Duration, Instant};

use secret_zero_testbed::agent::Agent;
use secret_zero_testbed::bed::{Bed, DERIVED, sealed_secret};
use secret_zero_testbed::cmd::{Cmd, Process, Run};
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
    let mut agent = Agent::start(&cmd, &socket);
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

// ---------------------------------------------------------------- messages

/// The last line of stderr, which must be the one error line.
fn error_line(run: &Run) -> String {
    let line = run.stderr.trim().lines().last().unwrap_or("").to_string();
    assert!(line.starts_with("secret-zero: error:"), "{}", run.stderr);
    line
}

/// A `serve --plaintext-file` agent on a fresh socket, with `env` set.
fn dev_agent(dir: &Path, env: &[(&str, &str)]) -> Agent {
    let doc = dir.join("doc.json");
    std::fs::write(&doc, r#"{"a":"b"}"#).unwrap();
    let socket = dir.join("agent.sock").display().to_string();
    let mut cmd = secret_zero_testbed::agent::serve(&socket);
    cmd.arg("--plaintext-file")
        .arg(&doc)
        .envs(env.iter().copied());
    let mut agent = Agent::start(&cmd, &socket);
    agent.wait_ready();
    agent
}

#[test]
fn a_phrase_two_layers_both_say_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let agent = dev_agent(dir.path(), &[]);
    agent.get_ok(&[]);
    let gone = agent.get(&[]);
    assert_eq!(gone.code, 11, "{}", gone.stderr);
    let line = error_line(&gone);
    assert_eq!(line.matches("no delivery left").count(), 1, "{line}");
    assert!(line.contains("has no delivery left: 1 of 1 made"), "{line}");
}

/// Operator credentials for the bed's OpenBao: a token file holding `token`.
fn token_file(bed: &Bed, token: &str) -> String {
    bed.file(&format!("vault-token-{}", fastrand::u32(..)), token)
}

#[test]
fn rotate_on_a_missing_key_says_which_key_and_no_filler() {
    let bed = Bed::new();
    let root = token_file(&bed, bed.bao.root_token());
    let kubeconfig = bed.double.admin_kubeconfig(bed.dir.path());
    let run = Cmd::secret_zero()
        .args(["rotate", "--transit-key", "nope", "-n", "shop"])
        .args(["--vault-addr", bed.bao.addr(), "--vault-token-file", &root])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .run();
    assert_eq!(run.code, 5, "{}", run.stderr);
    let report = report_line(&run);
    let error = report["error"].as_str().unwrap();
    assert!(!error.contains("no error message"), "{error}");
    assert!(
        error.contains(r#"no Transit key "nope" on mount "transit""#),
        "{error}"
    );
}

#[test]
fn a_forbidden_cluster_wide_list_names_the_verb_and_a_cluster_role() {
    let bed = Bed::new();
    let root = token_file(&bed, bed.bao.root_token());
    // shop/app may only get Secrets in shop.
    let kubeconfig = bed.kubeconfig("app");
    let run = Cmd::secret_zero()
        .args(["rotate", "--transit-key", DERIVED, "-A", "--dry-run"])
        .args(["--vault-addr", bed.bao.addr(), "--vault-token-file", &root])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .run();
    assert_eq!(run.code, 7, "{}", run.stderr);
    let line = error_line(&run);
    assert!(
        line.contains(
            "(hint: grant this identity the verb `list` on secrets in every namespace: a ClusterRole and a ClusterRoleBinding)"
        ),
        "{line}"
    );
}

#[test]
fn seal_with_a_bogus_token_says_the_token_is_not_valid() {
    let bed = Bed::new();
    let bogus = token_file(&bed, "s.not-a-real-token");
    let doc = bed.file("doc.json", r#"{"a":"b"}"#);
    for extra in [&[][..], &["--binding", "identity"][..]] {
        let run = Cmd::secret_zero()
            .args(["seal", "--transit-key", DERIVED, "--namespace", "shop"])
            .args(["--name", "app-secrets", "--from-file", &doc])
            .args(["--vault-addr", bed.bao.addr(), "--vault-token-file", &bogus])
            .args(extra)
            .run();
        assert_eq!(run.code, 4, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        let line = error_line(&run);
        assert!(line.contains("it is not a valid token"), "{line}");
        assert!(line.contains("expired, revoked or mistyped"), "{line}");
        assert!(!line.contains("grants this operation"), "{line}");
        assert!(!line.contains("s.not-a-real-token"), "{line}");
    }
    // A valid token that lacks a grant is still told about its policy.
    let bare = bed
        .bao
        .api(
            "POST",
            "auth/token/create",
            Some(serde_json::json!({"policies": ["default"]})),
        )
        .unwrap();
    let bare = token_file(&bed, bare["auth"]["client_token"].as_str().unwrap());
    let run = Cmd::secret_zero()
        .args(["seal", "--transit-key", DERIVED, "--namespace", "shop"])
        .args(["--name", "app-secrets", "--from-file", &doc])
        .args(["--vault-addr", bed.bao.addr(), "--vault-token-file", &bare])
        .run();
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        error_line(&run).contains("grants this operation"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------- the command line

#[test]
fn on_off_variables_take_what_manifests_write_and_a_bad_one_is_named() {
    for on in ["1", "true", "TRUE", "yes", "on"] {
        let dir = tempfile::tempdir().unwrap();
        let mut agent = dev_agent(dir.path(), &[("SECRET_ZERO_EXIT_AFTER_DELIVERY", on)]);
        agent.get_ok(&[]);
        let (code, log) = agent.wait_exit();
        assert_eq!(code, 0, "{on}: {log}");
    }
    for off in ["0", "false", "no", "off"] {
        let dir = tempfile::tempdir().unwrap();
        let agent = dev_agent(dir.path(), &[("SECRET_ZERO_EXIT_AFTER_DELIVERY", off)]);
        agent.get_ok(&[]);
        // Still up, answering 410.
        assert_eq!(agent.get(&[]).code, 11, "{off}");
    }
    // A variable set to off is not a flag given: no "requires" complaint.
    // Each then stops at its first input, a file that does not exist (exit 3).
    #[rustfmt::skip]
    let cases: [(&str, &[&str]); 2] = [
        ("SECRET_ZERO_ADOPT", &["seal", "--transit-key", "k", "--namespace", "shop", "--name", "x", "--from-file", "no-such-file.json"]),
        ("SECRET_ZERO_TRIM", &["rotate", "--transit-key", "k", "--kubeconfig", "no-such-kubeconfig"]),
    ];
    for (variable, args) in cases {
        let run = Cmd::secret_zero().args(args).env(variable, "false").run();
        assert_eq!(run.code, 3, "{variable}=false: {}", run.stderr);
    }
    let run = Cmd::secret_zero()
        .args(["serve", "--plaintext-file", "doc.json"])
        .env("SECRET_ZERO_EXIT_AFTER_DELIVERY", "maybe")
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            r#"SECRET_ZERO_EXIT_AFTER_DELIVERY="maybe" (--exit-after-delivery) is not on or off"#
        ),
        "{}",
        run.stderr
    );
}

/// Ours or clap's, a command line that is wrong exits 2.
#[test]
fn every_usage_error_exits_two() {
    #[rustfmt::skip]
    let cases: &[&[&str]] = &[
        &["serve", "--no-such-flag"],                                   // clap
        &["serve", "--max-deliveries", "0"],                            // clap
        &["serve"],                                                     // ours: no source
        &["serve", "--ciphertext-file", "ct"],                          // ours: no --role
        &["serve", "--env-file", "x.env", "--plaintext-file", "d.json"], // ours
        &["get", "--key", "a", "--format", "dotenv"],                   // ours
        &["serve", "--secret", "Not/A/Ref", "--role", "r"],             // ours: a malformed value
        &["seal", "--transit-key", "k", "--namespace", "Shop", "--name", "x", "--from-file", "-"],
        &["rotate", "--transit-key", ""],                               // empty value
        &["audit", "--image", ""],
        &["seal", "--transit-key", "k", "--namespace", "shop", "--name", "x", "--from-file", "-", "--adopt"],
    ];
    for args in cases {
        let run = Cmd::secret_zero().args(*args).run();
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
}

/// The JSON line on stdout of `rotate`, which must be its only line there.
fn report_line(run: &Run) -> serde_json::Value {
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one report line: {}", run.stdout);
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]))
}

#[test]
fn rotate_prints_its_report_line_even_when_its_arguments_are_wrong() {
    for (args, key, says) in [
        (
            &["rotate", "--trim", "--transit-key", "shop-app"][..],
            "shop-app",
            "--retire",
        ),
        (&["rotate", "--retire"][..], "", "--transit-key"),
        (
            &[
                "--log-format",
                "json",
                "rotate",
                "--transit-key=k",
                "--batch-size",
                "many",
            ][..],
            "k",
            "--batch-size",
        ),
    ] {
        let run = Cmd::secret_zero().args(args).run();
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let report = report_line(&run);
        assert_eq!(report["transit_key"], key, "{report}");
        assert_eq!(report["rewrapped"], 0, "{report}");
        let error = report["error"].as_str().unwrap();
        assert!(error.contains(says), "{args:?}: {error}");
        assert!(!error.contains('\n'), "{error}");
    }
    // Other commands print nothing on stdout for a usage error.
    let run = Cmd::secret_zero().args(["seal", "--bogus"]).run();
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

// ---------------------------------------------------------------- manifests

/// The rotator's policy file tells the name setup.sh gives it.
#[test]
fn the_rotator_policy_is_named_as_setup_sh_names_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/vault");
    let setup = std::fs::read_to_string(root.join("setup.sh")).unwrap();
    let hcl = std::fs::read_to_string(root.join("rotator.hcl")).unwrap();
    let key = setup
        .lines()
        .find_map(|l| l.strip_prefix("KEY=${SZ_TRANSIT_KEY:-"))
        .and_then(|rest| rest.strip_suffix('}'))
        .expect("setup.sh's default key");
    assert!(
        setup.contains(r#"policy "$KEY-rotator" "$here/rotator.hcl""#),
        "setup.sh no longer names the rotator's policy KEY-rotator"
    );
    let named: Vec<&str> = hcl
        .lines()
        .filter_map(|l| l.split_once("policy write ").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(named, [format!("{key}-rotator")], "{hcl}");
}
