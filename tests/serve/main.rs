//! `secret-zero serve`, `get` and `probe` as processes, against a real OpenBao and the
//! Kubernetes API double: both auth methods, both ciphertext sources, bound and
//! unbound ciphertexts, the old tool's Secrets, one-shot delivery, memory hygiene, and
//! every bad input ending in one clear line and its exit code.

mod memory;

use std::path::Path;
use std::time::Duration;

use secret_zero_testbed::agent::{self, Agent, get};
use secret_zero_testbed::bed::{Bed, DERIVED as KEY, PLAIN};
use secret_zero_testbed::cmd::{Cmd, Run};
use secret_zero_testbed::kube_double::Rule;
use secret_zero_testbed::shared::{NOBODY, SharedDir, require_root};
use secret_zero_testbed::text::{b64, doc_with, json_of, logged_accessor, sentinel};
use secret_zero_testbed::wait::Poll;
use secret_zero_testbed::{bin, wiring};
use serde_json::json;

/// The test bed's [`Bed`], plus ServiceAccount shop/intruder, policy `nothing` and its
/// kubernetes role `no-decrypt` for shop/app, and jwt auth trusting the double's JWKS
/// with role `shop-app` for shop/app.
fn bed() -> Bed {
    let bed = Bed::new();
    bed.double.create_service_account("shop", "intruder");
    bed.bao.write_policy(
        "nothing",
        r#"path "sys/nothing" { capabilities = ["read"] }"#,
    );
    wiring::kubernetes_role(&bed.bao, "no-decrypt", "shop", "app", &["nothing"]);
    wiring::jwt_auth(&bed.bao, &bed.double, wiring::JwtKeys::Jwks);
    wiring::jwt_role(&bed.bao, "shop-app", "shop", "app", &["app"]);
    bed
}

/// The one runner finds the binary where cargo says it is.
#[test]
fn the_test_bed_runs_the_binary_cargo_built() {
    assert_eq!(
        bin::secret_zero(),
        Path::new(env!("CARGO_BIN_EXE_secret-zero"))
    );
}

#[test]
fn an_identity_bound_secret_is_served_once_and_the_token_revoked() {
    let bed = bed();
    let secret = sentinel();
    let doc = doc_with(&secret);
    let ct = bed.encrypt(KEY, &doc, Some("shop/app-secrets"));
    bed.put_sealed("shop", "app-secrets", &ct, "identity");

    let agent = bed.serve_ready(&["--secret", "shop/app-secrets"]);
    let socket = agent.socket().to_string();

    let out = get(&socket, &[]).ok().bytes;
    assert_eq!(json_of(&out), json_of(&doc));

    let Run {
        code,
        bytes: out,
        stderr: err,
        ..
    } = get(&socket, &[]);
    assert_eq!(code, 11, "second get must be refused: {err}");
    assert!(out.is_empty());
    assert!(err.contains("no delivery left"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // Still up and healthy for kubelet after delivery.
    let probe = Cmd::secret_zero()
        .args(["probe", "--socket", &socket])
        .run();
    assert!(probe.success(), "{}", probe.stderr);

    let log = agent.log();
    let accessor = logged_accessor(&log);
    let lookup = bed.bao.api(
        "POST",
        "auth/token/lookup-accessor",
        Some(json!({"accessor": accessor})),
    );
    assert!(
        lookup.is_err(),
        "the agent's token is still alive: {lookup:?}"
    );

    let jwt = std::fs::read_to_string(bed.path("token-shop-app-vault-600")).unwrap();
    for forbidden in [
        secret.as_str(),
        &b64(secret.as_bytes()),
        jwt.trim(),
        bed.bao.root_token(),
    ] {
        assert!(
            !log.contains(forbidden),
            "the log leaks {forbidden}:\n{log}"
        );
    }
    assert!(
        log.contains("outcome") && log.contains("peer_uid"),
        "no audit line:\n{log}"
    );
}

#[test]
fn jwt_auth_with_a_ciphertext_file_and_a_binding_context() {
    let bed = bed();
    let doc = doc_with("from-a-file");
    let ct = bed.encrypt(KEY, &doc, Some("shop/app-secrets"));
    let file = bed.path("ciphertext");
    std::fs::write(&file, format!("{ct}\n")).unwrap();

    let file_arg = file.display().to_string();
    let agent = bed.serve_ready(&[
        "--auth-method",
        "jwt",
        "--ciphertext-file",
        &file_arg,
        "--transit-key",
        KEY,
        "--binding-context",
        "shop/app-secrets",
    ]);
    let out = agent.get(&["--key", "db_password"]).ok().bytes;
    assert_eq!(out, b"from-a-file\n");
    // OpenBao checked the signature itself through the double's JWKS.
    assert!(
        bed.double
            .requests()
            .iter()
            .any(|r| r.contains("/openid/v1/jwks"))
    );
}

#[test]
fn an_unbound_ciphertext_file_needs_no_context() {
    let bed = bed();
    let doc = doc_with("unbound");
    let file = bed.path("ciphertext");
    std::fs::write(&file, bed.encrypt(PLAIN, &doc, None)).unwrap();
    let file_arg = file.display().to_string();
    let agent = bed.serve_ready(&["--ciphertext-file", &file_arg, "--transit-key", PLAIN]);
    let out = agent.get(&["--format", "dotenv"]).ok().bytes;
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("db_password='unbound'"), "{text}");
    assert!(text.contains("port='5432'"), "{text}");
}

#[test]
fn the_old_tools_secret_is_served_with_flags_alone() {
    let bed = bed();
    let doc = doc_with("legacy");
    bed.put_legacy("shop", "weather-api-keys", &bed.encrypt(PLAIN, &doc, None));
    let agent = bed.serve_ready(&[
        "--secret",
        "shop/weather-api-keys#secrets.json",
        "--transit-key",
        PLAIN,
    ]);
    let out = agent.get(&[]).ok().bytes;
    assert_eq!(json_of(&out), json_of(&doc));
}

/// `get --key` asks the agent for the key, which checks it before the delivery counts:
/// a typo exits 3 naming the key (never a value) and leaves the pod's only delivery for
/// the next, correct request.
#[test]
fn a_mistyped_key_leaves_the_only_delivery_for_the_right_one() {
    let bed = bed();
    let secret = sentinel();
    let doc = doc_with(&secret);
    bed.put_bound("shop", "app-secrets", &doc);
    let agent = bed.serve_ready(&["--secret", "shop/app-secrets", "--max-deliveries", "1"]);

    let typo = agent.get(&["--key", "db_pasword"]);
    assert_eq!(typo.code, 3, "{}", typo.stderr);
    assert!(typo.bytes.is_empty());
    assert!(typo.stderr.contains("\"db_pasword\""), "{}", typo.stderr);
    assert_eq!(
        typo.stderr.trim().lines().count(),
        1,
        "one line: {}",
        typo.stderr
    );
    assert!(!typo.stderr.contains(&secret), "{}", typo.stderr);

    let value = agent.get_ok(&["--key", "db_password"]).bytes;
    assert_eq!(value, format!("{secret}\n").into_bytes());
    let gone = agent.get(&["--key", "db_password"]);
    assert_eq!(gone.code, 11, "{}", gone.stderr);
    assert!(!agent.log().contains(&secret));
}

#[test]
fn each_later_delivery_is_a_fresh_login_and_decrypt() {
    let bed = bed();
    let doc = doc_with("thrice");
    bed.put_bound("shop", "app-secrets", &doc);
    let reviews = || {
        bed.double
            .requests()
            .iter()
            .filter(|r| r.contains("tokenreviews"))
            .count()
    };

    let agent = bed.serve_ready(&["--secret", "shop/app-secrets", "--max-deliveries", "3"]);
    assert_eq!(reviews(), 1, "one login at start-up");
    for n in 1..=3 {
        let Run {
            code,
            bytes: out,
            stderr: err,
            ..
        } = agent.get(&[]);
        assert_eq!(code, 0, "delivery {n}: {err}");
        assert_eq!(json_of(&out), json_of(&doc));
        // The first delivery uses the start-up copy; each later one logs in again.
        assert_eq!(reviews(), n.max(1), "after delivery {n}");
    }
    let Run {
        code, stderr: err, ..
    } = agent.get(&[]);
    assert_eq!(code, 11, "{err}");
    // Every login's token was revoked.
    let log = agent.log();
    assert_eq!(log.matches("Vault token revoked").count(), 3, "{log}");
}

#[test]
fn after_delivery_the_agents_memory_holds_no_plaintext() {
    let bed = bed();
    let secret = sentinel();
    let doc = doc_with(&secret);
    bed.put_bound("shop", "app-secrets", &doc);
    let agent = bed.serve_ready(&["--secret", "shop/app-secrets"]);
    let needles = memory::needles(secret.as_bytes(), &doc);

    // The scan works: while the copy waits for its delivery, it is found.
    let before = memory::scan(agent.pid(), &needles);
    assert!(
        before.found.iter().any(|f| *f),
        "the scan cannot see the waiting copy ({} bytes read)",
        before.bytes_read
    );

    agent.get(&[]).ok();
    // The answer is written before the copy is wiped: wait for the wipe (a full scan
    // that finds nothing), not a fixed time; the last scan is the one checked.
    let wiped = Poll::within(Duration::from_secs(10))
        .every(Duration::from_millis(50))
        .until(|| {
            let after = memory::scan(agent.pid(), &needles);
            let clean = after.bytes_read > 1_000_000 && !after.found.iter().any(|f| *f);
            clean.then_some(after)
        });
    let after = wiped.unwrap_or_else(|| memory::scan(agent.pid(), &needles));
    assert!(
        after.bytes_read > 1_000_000,
        "scan read only {} bytes",
        after.bytes_read
    );
    for (needle, found) in needles.iter().zip(&after.found) {
        assert!(
            !found,
            "found {:?} in the agent's memory after delivery",
            String::from_utf8_lossy(needle)
        );
    }
}

#[test]
fn exit_after_delivery_exits_zero_and_removes_the_socket() {
    let bed = bed();
    bed.put_bound("shop", "app-secrets", &doc_with("x"));
    let agent = bed.serve_ready(&["--secret", "shop/app-secrets", "--exit-after-delivery"]);
    assert_eq!(agent.get(&[]).code, 0);
    assert_exits_clean(agent);
}

#[test]
fn sigterm_wipes_removes_the_socket_and_exits_zero() {
    let bed = bed();
    bed.put_bound("shop", "app-secrets", &doc_with("x"));
    let agent = bed.serve_ready(&["--secret", "shop/app-secrets"]);
    agent.terminate();
    assert_exits_clean(agent);
}

/// The agent exits 0 by itself and takes its socket file with it.
fn assert_exits_clean(mut agent: Agent) {
    let (code, log) = agent.wait_exit();
    assert_eq!(code, 0, "{log}");
    assert!(!Path::new(agent.socket()).exists(), "socket left behind");
}

#[test]
fn an_abstract_socket_leaves_no_file() {
    let bed = bed();
    let doc = doc_with("abstract");
    bed.put_bound("shop", "app-secrets", &doc);
    let socket = format!("@secret-zero-test-{:x}", fastrand::u64(..));
    let mut agent = bed.serve(&socket, &["--secret", "shop/app-secrets"]);
    agent.wait_ready();
    let out = agent.get(&[]).ok().bytes;
    assert_eq!(json_of(&out), json_of(&doc));
}

#[test]
fn the_development_source_serves_yaml_and_says_it_is_not_secret_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.yaml");
    std::fs::write(&file, "db_password: dev-only\nport: 5432\n").unwrap();
    let socket = dir.path().join("agent.sock").display().to_string();
    let mut cmd = agent::serve(&socket);
    cmd.arg("--plaintext-file").arg(&file);
    let mut agent = Agent::start(&cmd, &socket);
    agent.wait_ready();
    let out = get(&socket, &[]).ok().bytes;
    assert_eq!(
        json_of(&out),
        json!({"db_password": "dev-only", "port": 5432})
    );
    assert!(agent.log().contains("NOT Secret Zero"), "{}", agent.log());
}

/// Each bad input: the agent exits with its documented code and one clear line that
/// names what failed, and never prints a secret.
#[test]
fn bad_inputs_end_in_one_clear_line_and_their_exit_code() {
    let bed = bed();
    let doc = doc_with(&sentinel());
    let bound = bed.encrypt(KEY, &doc, Some("shop/app-secrets"));
    bed.put_sealed("shop", "app-secrets", &bound, "identity");
    // The same ciphertext copied into another Secret.
    bed.put_sealed("shop", "copied", &bound, "identity");
    let mut broken = bound.clone();
    broken.replace_range(12..16, "AAAA");
    bed.put_sealed("shop", "broken", &broken, "identity");
    bed.put_sealed(
        "shop",
        "array",
        &bed.encrypt(KEY, b"[1,2,3]", Some("shop/array")),
        "identity",
    );
    bed.double
        .grant("shop", "intruder", Rule::new(&["get"], &["nothing"]));

    let missing = bed.path("no-such-token").display().to_string();
    let empty = bed.path("empty-token");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.display().to_string();
    let expired = bed
        .token_file("shop", "app", "vault", -30)
        .display()
        .to_string();
    let intruder = bed
        .token_file("shop", "intruder", "vault", 600)
        .display()
        .to_string();
    let intruder_kube = bed.kubeconfig("intruder").display().to_string();
    let not_a_dir = bed.path("plain-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let under_file = not_a_dir.join("agent.sock").display().to_string();
    let no_dir = bed.path("no/such/dir/agent.sock").display().to_string();
    let closed = secret_zero_testbed::faults::closed_addr();
    let ct_file = bed.path("wrong-key-ciphertext");
    std::fs::write(&ct_file, &bound).unwrap();
    let ct_file = ct_file.display().to_string();

    // Serving shop/app-secrets with one flag changed.
    let app = |flag, value| vec!["--secret", "shop/app-secrets", flag, value];
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<&str>, i32, &str)> = vec![
        ("token file missing", app("--token-file", &missing), 3, "cannot read the ServiceAccount token"),
        ("token file empty", app("--token-file", &empty), 3, "is empty"),
        ("token expired", app("--token-file", &expired), 3, "expired"),
        ("vault unreachable", app("--vault-addr", &closed), 6, "cannot connect"),
        ("login denied", app("--token-file", &intruder), 4, "auth/kubernetes/login"),
        ("policy denies decrypt", app("--role", "no-decrypt"), 5, "permission denied on transit/decrypt/shop-app"),
        ("flag contradicts annotation", app("--transit-key", PLAIN), 3, "contradicts"),
        ("wrong transit key", vec!["--ciphertext-file", &ct_file, "--transit-key", PLAIN], 5, "transit/decrypt/plain-key"),
        ("corrupted ciphertext", vec!["--secret", "shop/broken"], 5, "transit/decrypt/shop-app"),
        ("binding mismatch", vec!["--secret", "shop/copied"], 5, "binding context"),
        ("secret missing", vec!["--secret", "shop/nope"], 7, "shop/nope"),
        ("data key missing", vec!["--secret", "shop/app-secrets#nokey"], 3, "nokey"),
        ("kube forbidden", app("--kubeconfig", &intruder_kube), 7, "forbidden"),
        ("not a JSON object", vec!["--secret", "shop/array"], 3, "not a JSON object"),
        ("socket directory missing", app("--socket", &no_dir), 13, "no/such/dir"),
        ("socket parent not a directory", app("--socket", &under_file), 13, "plain-file"),
    ];
    let mut failures = Vec::new();
    for (name, extra, want_code, want_text) in &cases {
        let socket = bed.socket();
        let mut agent = bed.serve(&socket, extra);
        let (code, log) = agent.wait_exit();
        let last = log.trim().lines().last().unwrap_or("").to_string();
        let ok = code == *want_code
            && last.starts_with("secret-zero: error:")
            && last.contains(want_text)
            && last.contains("hint:");
        if !ok {
            failures.push(format!(
                "{name}: exit {code} (want {want_code}), last line: {last}"
            ));
        }
        assert!(
            !log.contains("sz-sentinel"),
            "{name}: plaintext in the log:\n{log}"
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_live_agent_keeps_its_socket() {
    let bed = bed();
    bed.put_bound("shop", "app-secrets", &doc_with("x"));
    let socket = bed.socket();
    let mut first = bed.serve(&socket, &["--secret", "shop/app-secrets"]);
    first.wait_ready();
    let mut second = bed.serve(&socket, &["--secret", "shop/app-secrets"]);
    let (code, log) = second.wait_exit();
    assert_eq!(code, 13, "{log}");
    // The first agent still serves.
    assert_eq!(get(&socket, &[]).code, 0);
}

#[test]
fn a_socket_directory_the_agent_cannot_write_is_one_clear_line() {
    // Root writes anywhere, so the agent runs as nobody (uid 65534) here, from a copy
    // of the binary in a directory it may read but not write.
    require_root("this test runs the agent as uid 65534");
    let dir = SharedDir::new();
    let binary = dir.copy(bin::secret_zero(), "secret-zero");
    let file = dir.write("doc.json", r#"{"a":"b"}"#);
    let socket = dir.join("agent.sock");
    let run = Cmd::new(binary)
        .args(["serve", "--plaintext-file"])
        .arg(&file)
        .arg("--socket")
        .arg(&socket)
        .as_uid(NOBODY, &dir)
        .run();
    let last = run.stderr.trim().lines().last().unwrap_or("");
    assert_eq!(run.code, 13, "{}", run.stderr);
    assert!(
        last.starts_with("secret-zero: error:") && last.contains(&dir.path().display().to_string()),
        "{last}"
    );
}

#[test]
fn json_logs_are_one_object_per_line_without_secrets() {
    let bed = bed();
    let secret = sentinel();
    bed.put_bound("shop", "app-secrets", &doc_with(&secret));
    let mut agent = bed.serve_ready(&[
        "--secret",
        "shop/app-secrets",
        "--log-format",
        "json",
        "--exit-after-delivery",
    ]);
    assert_eq!(agent.get(&[]).code, 0);
    let (code, log) = agent.wait_exit();
    assert_eq!(code, 0, "{log}");
    let mut outcomes = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if let Some(outcome) = value.get("outcome") {
            outcomes.push(outcome.as_str().unwrap().to_string());
        }
    }
    assert_eq!(outcomes, ["delivered"], "{log}");
    assert!(!log.contains(&secret), "{log}");
}
