//! `secret-zero rotate` as a process against a real OpenBao and the Kubernetes API
//! double, with a Vault token holding exactly `manifests/vault/rotator.hcl` (no
//! decrypt): rewrap in batches, identity-bound and old-layout Secrets, mixed key
//! versions, concurrent writers, dry runs, idempotence, `--retire`/`--trim` across
//! namespaces, permission failures, and a loop of SIGKILLs at random moments.

mod rotate {
    pub mod rig;
}

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rotate::rig::{POLICY_FILE, Rig, Sealed, Summary};
use secret_zero_testbed::assert_eventually;
use secret_zero_testbed::bed::{DERIVED as KEY, PLAIN as PLAIN_KEY};
use secret_zero_testbed::cmd::Cmd;
use secret_zero_testbed::kube_double::KubeDouble;
use secret_zero_testbed::text::{b64, json_of};
use secret_zero_testbed::wait::Poll;
use serde_json::{Value, json};

fn count(summary: &Value, field: &str) -> u64 {
    summary[field]
        .as_u64()
        .unwrap_or_else(|| panic!("summary has no {field}: {summary}"))
}

/// Each `(field, value)` of the summary, or a panic naming the field.
fn assert_counts(summary: &Value, want: &[(&str, u64)]) {
    for (field, value) in want {
        assert_eq!(count(summary, field), *value, "{field}: {summary}");
    }
}

fn puts(requests: &[String]) -> Vec<&String> {
    requests.iter().filter(|r| r.starts_with("PUT ")).collect()
}

#[test]
fn rotation_rewraps_every_secret_in_batches_and_serve_still_decrypts() {
    let rig = Rig::new();
    // Mixed versions: sealed at v1, v2 and v3 of the derived key, in two namespaces.
    let mut all = Vec::new();
    all.extend(rig.seal_many("shop", 4, KEY, |i| format!("v1-{i}")));
    rig.rotate_as_root(KEY);
    all.extend(rig.seal_many("bank", 4, KEY, |i| format!("v2-{i}")));
    rig.rotate_as_root(KEY);
    all.extend(rig.seal_many("shop", 4, KEY, |i| format!("v3-{i}")));
    // Under another key, and unlabelled: not ours to touch.
    let other = rig.seal("shop", "other-key", PLAIN_KEY, false);
    let other_before = rig.object(&other);
    let legacy = rig.seal_legacy("shop", "legacy", PLAIN_KEY);
    let legacy_before = rig.object(&legacy);
    assert_eq!(rig.latest(KEY), 3);

    // The CronJob way: log in with the rotator's ServiceAccount (kubernetes auth, role
    // bound to exactly the shipped policy); list/update Secrets cluster-wide.
    let (kubeconfig, jwt) = rig.as_rotator();
    let jwt = jwt.display().to_string();
    let run = rig.rotate_with(
        None,
        &kubeconfig,
        &[
            "--transit-key",
            KEY,
            "--all-namespaces",
            "--batch-size",
            "5",
            "--role",
            "rotator",
            "--token-file",
            &jwt,
        ],
    );
    let summary = run.expect(0).summary();
    assert_counts(
        &summary,
        &[
            ("secrets_scanned", 12),
            ("rewrapped", 12),
            ("unchanged", 0),
            ("failed", 0),
            ("key_version_before", 3),
            ("key_version_after", 4),
        ],
    );
    assert_eq!(summary["rotated"], json!(true));
    assert_eq!(summary["retired_to"], Value::Null);
    // All 12 are bound: ceil(12 / 5) = 3 batches, no more.
    assert_counts(&summary, &[("rewrap_requests", 3)]);
    assert!(count(&summary, "vault_requests") >= 6, "{summary}");
    assert!(count(&summary, "kube_requests") >= 13, "{summary}");
    assert!(summary["duration_ms"].is_u64(), "{summary}");
    // One progress line per batch.
    for batch in ["batch 1/3", "batch 2/3", "batch 3/3: 12/12"] {
        assert!(run.stderr.contains(batch), "no {batch:?}:\n{}", run.stderr);
    }

    assert_eq!(rig.latest(KEY), 4);
    for s in &all {
        assert_eq!(rig.version(s), 4, "{} not rewrapped", s.id());
        let object = rig.object(s);
        assert_eq!(object["data"]["unrelated"], json!(b64(b"kept as is")));
        assert_eq!(object["metadata"]["labels"]["app"], json!(s.name));
    }
    rig.assert_all_decrypt(&all, "after rotate");
    assert_eq!(
        rig.object(&other),
        other_before,
        "a Secret under another key was touched"
    );
    assert_eq!(
        rig.object(&legacy),
        legacy_before,
        "an unnamed old-layout Secret was touched"
    );

    // The agent still gets the document, from the rewrapped ciphertext.
    let served = rig.serve_once(&all[0], &[]);
    assert_eq!(served, json_of(&all[0].doc));

    // The policy the rotator ran with has no decrypt.
    let policy = std::fs::read_to_string(POLICY_FILE).unwrap();
    assert!(!policy.contains("decrypt/") && !policy.contains("encrypt/"));
    let rotator = rig.token_with("rotator");
    let token = std::fs::read_to_string(rotator).unwrap();
    let refused = rig.bed.bao.api_as(
        token.trim(),
        "POST",
        &format!("transit/decrypt/{KEY}"),
        Some(
            json!({"ciphertext": rig.ciphertext(&all[0]), "context": b64(all[0].id().as_bytes())}),
        ),
    );
    assert_eq!(refused.unwrap_err().status, 403);
}

#[test]
fn old_layout_secrets_are_rotated_when_named() {
    let rig = Rig::new();
    let legacy = vec![
        rig.seal_legacy("shop", "legacy-1", PLAIN_KEY),
        rig.seal_legacy("bank", "legacy-2", PLAIN_KEY),
    ];
    let labelled = rig.seal("shop", "labelled", PLAIN_KEY, false);

    // --secret alone: exactly the named Secrets, nothing listed.
    let mark = rig.request_mark();
    let run = rig.rotate(&[
        "--transit-key",
        PLAIN_KEY,
        "--secret",
        "shop/legacy-1#secrets.json",
        "--secret",
        "bank/legacy-2",
    ]);
    let summary = run.expect(0).summary();
    assert_counts(&summary, &[("rewrapped", 2)]);
    assert!(
        rig.requests_since(mark)
            .iter()
            .all(|r| !r.contains("secrets?") && !r.ends_with("/secrets")),
        "a --secret-only run listed Secrets: {:?}",
        rig.requests_since(mark)
    );
    for s in &legacy {
        assert_eq!(rig.version(s), 2, "{}", s.id());
        // Still the old layout: no annotations or labels added.
        let object = rig.object(s);
        assert!(object["metadata"]["annotations"].is_null(), "{object}");
        assert!(object["data"]["ciphertext"].is_null(), "{object}");
    }
    assert_eq!(rig.version(&labelled), 1);
    rig.assert_all_decrypt(&legacy, "after rotate");

    // With a namespace, the labelled ones there come too; named ones already current stay.
    let run = rig.rotate(&[
        "--transit-key",
        PLAIN_KEY,
        "--namespace",
        "shop",
        "--secret",
        "shop/legacy-1#secrets.json",
        "--no-rotate",
    ]);
    let summary = run.expect(0).summary();
    assert_counts(
        &summary,
        &[("secrets_scanned", 2), ("rewrapped", 1), ("unchanged", 1)],
    );
    assert_eq!(rig.version(&labelled), 2);

    // serve reads the old layout with flags alone, after rotation.
    let served = rig.serve_once(&legacy[0], &["--transit-key", PLAIN_KEY]);
    assert_eq!(served, json_of(&legacy[0].doc));

    // A named Secret that is annotated for another key is a contradiction, named in the log.
    let foreign = rig.seal("shop", "foreign", KEY, true);
    let run = rig.rotate(&[
        "--transit-key",
        PLAIN_KEY,
        "--no-rotate",
        "--secret",
        "shop/foreign",
    ]);
    run.expect(14);
    assert!(
        run.stderr.contains("shop/foreign") && run.stderr.contains("contradicts"),
        "{}",
        run.stderr
    );
    assert_eq!(run.summary()["failures"], json!(["shop/foreign"]));
    assert_eq!(rig.version(&foreign), 1);
}

#[test]
fn dry_run_and_a_second_no_rotate_run_write_nothing() {
    let rig = Rig::new();
    // A plain key ignores the context, so identity-annotated and unbound Secrets can
    // share it; Vault wants a context in every item of a batch or in none.
    let mut all = Vec::new();
    all.extend(rig.seal_many("default", 5, PLAIN_KEY, |i| format!("app-{i}")));
    all.push(rig.seal("default", "plain", PLAIN_KEY, false));

    // Dry run, flags from the environment only; default namespace from the kubeconfig.
    let mark = rig.request_mark();
    let run = Cmd::secret_zero()
        .arg("rotate")
        .env("SECRET_ZERO_TRANSIT_KEY", PLAIN_KEY)
        .env("SECRET_ZERO_DRY_RUN", "true")
        .env("SECRET_ZERO_KUBECONFIG", &rig.admin_kubeconfig)
        .env("SECRET_ZERO_VAULT_TOKEN_FILE", &rig.token_file)
        .env("VAULT_ADDR", rig.bed.bao.addr())
        .run();
    let stderr = &run.stderr;
    assert_eq!(run.code, 0, "{stderr}");
    let summary = run.summary();
    assert_eq!(summary["dry_run"], json!(true));
    assert_counts(
        &summary,
        &[("to_rewrap", 6), ("rewrapped", 0), ("key_version_after", 2)],
    );
    assert_eq!(summary["rotated"], json!(false));
    assert_counts(&summary, &[("rewrap_requests", 0)]);
    assert!(stderr.contains("would rewrap"), "{stderr}");
    assert!(puts(&rig.requests_since(mark)).is_empty());
    assert_eq!(rig.latest(PLAIN_KEY), 1, "a dry run rotated the key");
    for s in &all {
        assert_eq!(rig.version(s), 1);
    }

    // The real run: bound and unbound apart, so 2 rewrap requests (≤ 1 + ceil(6/100)).
    let run = rig.rotate(&["--transit-key", PLAIN_KEY]);
    let summary = run.expect(0).summary();
    assert_counts(&summary, &[("rewrapped", 6), ("rewrap_requests", 2)]);
    rig.assert_all_decrypt(&all, "after rotate");

    // A second run without rotation: everything is current, nothing is written.
    let mark = rig.request_mark();
    let run = rig.rotate(&["--transit-key", PLAIN_KEY, "--no-rotate"]);
    let summary = run.expect(0).summary();
    assert_counts(
        &summary,
        &[
            ("unchanged", 6),
            ("rewrapped", 0),
            ("rewrap_requests", 0),
            ("kube_requests", 1),
        ],
    );
    let requests = rig.requests_since(mark);
    assert!(puts(&requests).is_empty(), "{requests:?}");
    assert_eq!(rig.latest(PLAIN_KEY), 2);

    // One Secret behind (sealed with v1 after the rotation): --no-rotate writes just it.
    let behind = {
        let doc = Rig::doc("behind");
        let answer = rig.bed.bao.write(
            &format!("transit/encrypt/{PLAIN_KEY}"),
            json!({"plaintext": b64(&doc), "context": b64(b"default/behind"), "key_version": 1}),
        );
        let ct = answer["data"]["ciphertext"].as_str().unwrap().to_string();
        assert!(ct.starts_with("vault:v1:"));
        rig.bed.double.put_secret(json!({
            "metadata": {
                "namespace": "default", "name": "behind",
                "labels": {"app.kubernetes.io/managed-by": "secret-zero"},
                "annotations": {"secret-zero.dev/transit-key": PLAIN_KEY, "secret-zero.dev/binding": "identity"},
            },
            "data": {"ciphertext": b64(ct.as_bytes())},
        }));
        Sealed {
            ns: "default".into(),
            name: "behind".into(),
            key: PLAIN_KEY.into(),
            data_key: "ciphertext".into(),
            bound: true,
            doc,
        }
    };
    let mark = rig.request_mark();
    let run = rig.rotate(&["--transit-key", PLAIN_KEY, "--no-rotate"]);
    let summary = run.expect(0).summary();
    assert_counts(
        &summary,
        &[("rewrapped", 1), ("unchanged", 6), ("rewrap_requests", 1)],
    );
    assert_eq!(
        puts(&rig.requests_since(mark)),
        vec!["PUT /api/v1/namespaces/default/secrets/behind"]
    );
    assert_eq!(rig.version(&behind), 2);
    rig.assert_all_decrypt(&[behind], "after --no-rotate");
}

#[test]
fn a_concurrent_writer_keeps_its_change_and_the_secret_ends_rewrapped() {
    let rig = Rig::new();
    let all: Vec<Sealed> = rig.seal_many("shop", 120, KEY, |i| format!("busy-{i:03}"));

    // Another controller relabels Secrets in a loop, the proper way: GET, change a
    // label, PUT with the resourceVersion it read, again on 409. It remembers the last
    // value it managed to store on each Secret.
    let stop = AtomicBool::new(false);
    let stored: Mutex<BTreeMap<String, u64>> = Mutex::default();
    let double = &rig.bed.double;
    let (run, writes) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = &all[fastrand::usize(..all.len())].name;
                n += 1;
                if relabel(double, "shop", name, n) {
                    stored.lock().unwrap().insert(name.clone(), n);
                }
            }
            n
        });
        // Let the writer get going, then rotate under it.
        assert_eventually!(
            Poll::within(Duration::from_secs(10)).every(Duration::from_millis(5));
            stored.lock().unwrap().len() >= 3,
            "the writer made no progress"
        );
        let run = rig.rotate(&["--transit-key", KEY, "-n", "shop", "--batch-size", "10"]);
        stop.store(true, Ordering::Relaxed);
        (run, writer.join().unwrap())
    });
    let summary = run.expect(0).summary();
    assert_counts(&summary, &[("failed", 0)]);
    assert!(
        count(&summary, "conflicts_retried") >= 1,
        "the race never happened ({writes} writer attempts): {summary}\n{}",
        run.stderr
    );
    assert_eq!(
        count(&summary, "rewrapped") + count(&summary, "unchanged"),
        120,
        "{summary}"
    );
    let stored = stored.into_inner().unwrap();
    assert!(stored.len() >= 3);
    for s in &all {
        assert_eq!(rig.version(s), 2, "{} did not end rewrapped", s.id());
        let label = rig.object(s)["metadata"]["labels"]["touched"].clone();
        match stored.get(&s.name) {
            Some(n) => assert_eq!(
                label,
                json!(n.to_string()),
                "{}: the writer's change was lost",
                s.id()
            ),
            None => assert!(label.is_null(), "{}", s.id()),
        }
    }
    rig.assert_all_decrypt(&all, "after a raced rotate");
}

/// Set label `touched=n` on NS/NAME with optimistic concurrency; true once stored.
fn relabel(double: &KubeDouble, ns: &str, name: &str, n: u64) -> bool {
    let path = format!("/api/v1/namespaces/{ns}/secrets/{name}");
    let admin = double.admin_token();
    for _ in 0..20 {
        let (status, mut object) = double.call("GET", &path, Some(&admin), None);
        assert_eq!(status, 200, "{object}");
        object["metadata"]["labels"]["touched"] = json!(n.to_string());
        let (status, answer) = double.call("PUT", &path, Some(&admin), Some(&object));
        match status {
            200 => return true,
            409 => continue,
            _ => panic!("writer PUT {path}: {status} {answer}"),
        }
    }
    false
}

#[test]
fn retire_refuses_while_a_secret_in_another_namespace_lags_then_retires_and_trims() {
    let rig = Rig::new();
    let mut all: Vec<Sealed> = rig.seal_many("shop", 4, KEY, |i| format!("app-{i}"));
    let laggard = rig.seal("bank", "vault-door", KEY, true);
    all.push(laggard.clone());
    // A ciphertext as it was before rotation: after retiring it must be useless.
    let saved = rig.ciphertext(&all[0]);

    // Only shop is handled; bank's Secret is behind, so --retire refuses and names it.
    let run = rig.rotate(&["--transit-key", KEY, "-n", "shop", "--retire"]);
    run.expect(15);
    let summary = run.summary();
    assert_counts(&summary, &[("rewrapped", 4)]);
    assert_eq!(summary["laggards"], json!(["bank/vault-door"]), "{summary}");
    assert_eq!(summary["retired_to"], Value::Null);
    assert!(run.stderr.contains("bank/vault-door"), "{}", run.stderr);
    assert!(run.stderr.contains("--retire refused"), "{}", run.stderr);
    assert_eq!(rig.key_info(KEY)["min_decryption_version"], json!(1));
    rig.assert_all_decrypt(&all, "after a refused retire");
    assert!(rig.decrypt(&all[0], &saved).is_ok());

    // A dry run over bank says retiring would now work, and changes nothing.
    let bank = [
        "--transit-key",
        KEY,
        "-n",
        "bank",
        "--no-rotate",
        "--retire",
    ];
    let run = rig.rotate(&[&bank[..], &["--dry-run"]].concat());
    run.expect(0);
    assert!(run.stderr.contains("would retire"), "{}", run.stderr);
    assert_eq!(rig.key_info(KEY)["min_decryption_version"], json!(1));
    assert_eq!(rig.version(&laggard), 1);

    // Rewrap bank without rotating again: now nothing lags, and the old version retires.
    let run = rig.rotate(&bank);
    let summary = run.expect(0).summary();
    assert_counts(&summary, &[("rewrapped", 1), ("retired_to", 2)]);
    assert_eq!(summary["trimmed_to"], Value::Null);
    let info = rig.key_info(KEY);
    assert_eq!(info["min_decryption_version"], json!(2), "{info}");
    assert_eq!(info["min_encryption_version"], json!(2), "{info}");
    let refused = rig
        .decrypt(&all[0], &saved)
        .expect_err("a retired version still decrypts");
    assert!(refused.starts_with("400"), "{refused}");
    rig.assert_all_decrypt(&all, "after retiring");
    let served = rig.serve_once(&all[1], &[]);
    assert_eq!(served, json_of(&all[1].doc));

    // Rotate again everywhere, retire and trim: the old versions are deleted for good.
    let run = rig.rotate(&["--transit-key", KEY, "-A", "--retire", "--trim"]);
    let summary = run.expect(0).summary();
    assert_counts(
        &summary,
        &[("rewrapped", 5), ("retired_to", 3), ("trimmed_to", 3)],
    );
    let info = rig.key_info(KEY);
    assert_eq!(info["min_available_version"], json!(3), "{info}");
    assert_eq!(info["keys"].as_object().unwrap().len(), 1, "{info}");
    rig.assert_all_decrypt(&all, "after trimming");

    // --trim without --retire is a usage error.
    let run = rig.rotate(&["--transit-key", KEY, "--trim"]);
    run.expect(2);
}

#[test]
fn sigkill_at_random_moments_leaves_every_secret_decryptable_and_a_rerun_converges() {
    let rig = Rig::new();
    let mut all = Vec::new();
    all.extend(rig.seal_many("shop", 40, KEY, |i| format!("kill-{i:02}")));
    all.extend(rig.seal_many("bank", 10, KEY, |i| format!("kill-{i:02}")));
    let args = [
        "--transit-key",
        KEY,
        "-A",
        "--retire",
        "--trim",
        "--batch-size",
        "4",
    ];

    // How long an uninterrupted run takes, to spread the kills over all of it.
    let started = Instant::now();
    rig.rotate(&args).expect(0);
    let full = started.elapsed();
    rig.assert_all_decrypt(&all, "after the first run");

    let (mut kills, mut mid_rewrap, mut finished) = (0, 0, 0);
    for round in 0..80 {
        if kills >= 24 {
            break;
        }
        let mut child = rig.spawn_rotate(&args);
        // The experiment itself: a kill at a random moment of a run, not a wait.
        let at = full.mul_f64(fastrand::f64() * 1.1);
        std::thread::sleep(at);
        if child.exited().is_some() {
            finished += 1;
            continue;
        }
        child.kill(); // SIGKILL
        kills += 1;

        // Whatever the moment, every Secret decrypts, and nothing still in use is retired.
        rig.assert_all_decrypt(
            &all,
            &format!("after kill {kills} (round {round}, at {at:?})"),
        );
        let versions: BTreeSet<u64> = all.iter().map(|s| rig.version(s)).collect();
        let min_decryption = rig.key_info(KEY)["min_decryption_version"]
            .as_u64()
            .unwrap();
        assert!(
            min_decryption <= *versions.first().unwrap(),
            "retired v{min_decryption} while a Secret is at {versions:?}"
        );
        if versions.len() > 1 {
            mid_rewrap += 1;
        }
    }
    eprintln!(
        "{kills} kills ({mid_rewrap} mid-rewrap), {finished} runs finished first; full run {full:?}"
    );
    assert!(
        kills >= 20,
        "only {kills} kills landed ({finished} runs finished first)"
    );
    assert!(
        mid_rewrap >= 1,
        "no kill landed while Secrets were being rewrapped"
    );

    // Running again converges: all at the latest version, old versions retired.
    let run = rig.rotate(&args);
    run.expect(0);
    let latest = rig.latest(KEY);
    let summary = run.summary();
    assert_counts(&summary, &[("retired_to", latest)]);
    for s in &all {
        assert_eq!(rig.version(s), latest, "{}", s.id());
    }
    rig.assert_all_decrypt(&all, "after converging");
    let served = rig.serve_once(&all[7], &[]);
    assert_eq!(served, json_of(&all[7].doc));
}

#[test]
fn without_rotate_capability_the_run_stops_cleanly() {
    let rig = Rig::new();
    let all: Vec<Sealed> = rig.seal_many("shop", 3, KEY, |i| format!("app-{i}"));
    // The shipped policy minus its rotate block.
    let policy = std::fs::read_to_string(POLICY_FILE).unwrap();
    let start = policy.find("path \"transit/keys/+/rotate\"").unwrap();
    let end = start + policy[start..].find('}').unwrap() + 1;
    let crippled = format!("{}{}", &policy[..start], &policy[end..]);
    assert!(!crippled.contains("/rotate"));
    rig.bed.bao.write_policy("no-rotate", &crippled);
    let token = rig.token_with("no-rotate");

    let mark = rig.request_mark();
    let run = rig.rotate_with(
        Some(&token),
        &rig.admin_kubeconfig,
        &["--transit-key", KEY, "-n", "shop"],
    );
    run.expect(5);
    let line = run.stderr.lines().last().unwrap();
    assert!(
        line.contains("permission denied on transit/keys/shop-app/rotate")
            && line.contains("hint: check that the token's policy grants"),
        "{}",
        run.stderr
    );
    let summary = run.summary();
    assert!(
        summary["error"]
            .as_str()
            .unwrap()
            .contains("permission denied"),
        "{summary}"
    );
    assert!(puts(&rig.requests_since(mark)).is_empty());
    assert_eq!(rig.latest(KEY), 1);
    rig.assert_all_decrypt(&all, "after a refused rotation");

    // The same token can still bring lagging Secrets up with --no-rotate.
    let run = rig.rotate_with(
        Some(&token),
        &rig.admin_kubeconfig,
        &["--transit-key", KEY, "-n", "shop", "--no-rotate"],
    );
    run.expect(0);
    assert_eq!(count(&run.summary(), "unchanged"), 3);
}

#[test]
fn a_kube_403_on_update_names_each_secret_and_retires_nothing() {
    let rig = Rig::new();
    let all: Vec<Sealed> = rig.seal_many("shop", 3, KEY, |i| format!("app-{i}"));
    let kubeconfig = rig.kubeconfig_for("read-only", &["get", "list"]);

    let run = rig.rotate_with(
        Some(&rig.token_file),
        &kubeconfig,
        &["--transit-key", KEY, "-n", "shop", "--retire"],
    );
    run.expect(14);
    let summary = run.summary();
    assert_counts(&summary, &[("failed", 3), ("rewrapped", 0)]);
    assert_eq!(summary["retired_to"], Value::Null);
    assert_eq!(
        summary["failures"],
        json!(["shop/app-0", "shop/app-1", "shop/app-2"])
    );
    for s in &all {
        let line = run
            .stderr
            .lines()
            .find(|l| l.contains(&format!("{}: ", s.id())))
            .unwrap_or_else(|| panic!("{} not named in the log:\n{}", s.id(), run.stderr));
        assert!(
            line.contains("forbidden") && line.contains("hint: grant"),
            "{line}"
        );
    }
    assert!(run.stderr.contains("not retiring"), "{}", run.stderr);
    // The key rotated, but nothing was retired: the old ciphertexts still decrypt.
    assert_eq!(rig.latest(KEY), 2);
    assert_eq!(rig.key_info(KEY)["min_decryption_version"], json!(1));
    for s in &all {
        assert_eq!(rig.version(s), 1);
    }
    rig.assert_all_decrypt(&all, "after a forbidden update");
}

#[test]
fn a_batch_too_big_for_openbao_is_split_not_failed() {
    let rig = Rig::new();
    // OpenBao refuses a body of more than 1,000 JSON strings: 260 bound items is 1,041.
    let all: Vec<Sealed> = rig.seal_many("shop", 260, KEY, |i| format!("big-{i:03}"));
    let run = rig.rotate(&["--transit-key", KEY, "-n", "shop", "--batch-size", "1000"]);
    let summary = run.expect(0).summary();
    assert_counts(&summary, &[("rewrapped", 260)]);
    // One refused request of 260, then two of 130.
    assert_counts(&summary, &[("rewrap_requests", 3)]);
    assert!(run.stderr.contains("too big"), "{}", run.stderr);
    for s in &all {
        assert_eq!(rig.version(s), 2);
    }
    rig.assert_all_decrypt(&all, "after split batches");
}

/// `n` identity-bound Secrets in each of `shop` and `bank`.
fn seal_two_namespaces(rig: &Rig, n: usize) -> Vec<Sealed> {
    let mut all = rig.seal_many("shop", n, KEY, |i| format!("app-{i:03}"));
    all.extend(rig.seal_many("bank", n, KEY, |i| format!("vault-{i:03}")));
    all
}

/// The list requests and the writes among `requests`, and each Secret written once.
fn lists_and_writes(requests: &[String], all: &[Sealed]) -> (usize, usize) {
    let lists = requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.ends_with("/secrets"))
        .count();
    let writes = puts(requests);
    let distinct: BTreeSet<&String> = writes.iter().copied().collect();
    assert_eq!(distinct.len(), writes.len(), "a Secret was written twice");
    for s in all {
        let path = format!("PUT /api/v1/namespaces/{}/secrets/{}", s.ns, s.name);
        assert!(distinct.contains(&path), "{} was not written", s.id());
    }
    (lists, writes.len())
}

#[test]
fn paged_rotation_rewraps_every_secret_exactly_once() {
    let rig = Rig::new();
    let all = seal_two_namespaces(&rig, 25);
    let mark = rig.request_mark();
    let run = rig.rotate(&["--transit-key", KEY, "-A", "--page-size", "7"]);
    let summary = run.expect(0).summary();
    // 50 Secrets, 7 a page: 8 pages.
    assert_counts(
        &summary,
        &[
            ("secrets_scanned", 50),
            ("to_rewrap", 50),
            ("rewrapped", 50),
            ("unchanged", 0),
            ("failed", 0),
            ("list_pages", 8),
            ("list_restarts", 0),
            ("kube_requests", 8 + 50),
        ],
    );
    let requests = rig.requests_since(mark);
    assert_eq!(requests.len(), 8 + 50, "{requests:#?}");
    assert_eq!(lists_and_writes(&requests, &all), (8, 50));
    let latest = rig.latest(KEY);
    for s in &all {
        assert_eq!(rig.version(s), latest, "{} not rewrapped", s.id());
    }
    rig.assert_all_decrypt(&all, "after a paged rotate");

    // The `--secret` ones are not done twice when the labelled list meets them again.
    let named = format!("{}#ciphertext", all[3].id());
    let run = rig.rotate(&[
        "--transit-key",
        KEY,
        "-A",
        "--page-size",
        "7",
        "--secret",
        &named,
    ]);
    let summary = run.expect(0).summary();
    assert_counts(
        &summary,
        &[
            ("secrets_scanned", 50),
            ("rewrapped", 50),
            ("list_pages", 8),
        ],
    );
}

#[test]
fn an_expired_continue_token_restarts_the_list_and_nothing_is_written_twice() {
    let rig = Rig::new();
    let all = seal_two_namespaces(&rig, 25);
    let double = &rig.bed.double;
    // An etcd compaction right after the first page: its continue token is too old.
    double.expire_continue_tokens_after(1);
    let mark = rig.request_mark();
    let run = rig.rotate(&["--transit-key", KEY, "-A", "--page-size", "7"]);
    let summary = run.expect(0).summary();
    // The first page, the refused second one, then all 8 again (the first 7 skipped).
    assert_counts(
        &summary,
        &[
            ("secrets_scanned", 50),
            ("to_rewrap", 50),
            ("rewrapped", 50),
            ("failed", 0),
            ("list_pages", 1 + 8),
            ("list_restarts", 1),
            ("kube_requests", 1 + 1 + 8 + 50),
        ],
    );
    assert_eq!(double.refused_lists(), 1);
    let requests = rig.requests_since(mark);
    assert_eq!(lists_and_writes(&requests, &all), (1 + 1 + 8, 50));
    assert!(
        run.stderr.contains("410 Expired") && run.stderr.contains("restarting the list"),
        "{}",
        run.stderr
    );
    let latest = rig.latest(KEY);
    for s in &all {
        assert_eq!(rig.version(s), latest, "{} not rewrapped", s.id());
    }
    rig.assert_all_decrypt(&all, "after a restarted list");
}

#[test]
fn the_double_answers_an_expired_continue_token_as_the_api_server_does() {
    let double = KubeDouble::start();
    for i in 0..3 {
        double.put_secret(json!({"metadata": {"name": format!("s{i}"), "namespace": "shop"}}));
    }
    let admin = double.admin_token();
    let (code, first) = double.call(
        "GET",
        "/api/v1/namespaces/shop/secrets?limit=1",
        Some(&admin),
        None,
    );
    assert_eq!(code, 200, "{first}");
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    double.expire_continue_tokens();
    let (code, status) = double.call(
        "GET",
        &format!("/api/v1/namespaces/shop/secrets?limit=1&continue={token}"),
        Some(&admin),
        None,
    );
    assert_eq!(code, 410, "{status}");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(
        status["message"],
        secret_zero_testbed::kube_double::EXPIRED_MESSAGE
    );
    // A new list works, and so does its token.
    let (code, again) = double.call(
        "GET",
        "/api/v1/namespaces/shop/secrets?limit=1",
        Some(&admin),
        None,
    );
    assert_eq!(code, 200, "{again}");
    let token = again["metadata"]["continue"].as_str().unwrap().to_string();
    let (code, next) = double.call(
        "GET",
        &format!("/api/v1/namespaces/shop/secrets?limit=1&continue={token}"),
        Some(&admin),
        None,
    );
    assert_eq!(code, 200, "{next}");
    assert_eq!(next["items"][0]["metadata"]["name"], "s1");
}

#[test]
fn the_api_server_answering_429_mid_listing_is_retried_after_retry_after() {
    let rig = Rig::new();
    let all = seal_two_namespaces(&rig, 10);
    let double = &rig.bed.double;
    // The third page is refused once, as API Priority and Fairness refuses: a
    // plain-text 429 with the wait only in its `Retry-After: 1` header.
    double.throttle_lists_after(2, 1, 1);
    let mark = rig.request_mark();
    let run = rig.rotate(&["--transit-key", KEY, "-A", "--page-size", "7"]);
    let summary = run.expect(0).summary();
    assert_counts(
        &summary,
        &[
            ("secrets_scanned", 20),
            ("rewrapped", 20),
            ("failed", 0),
            ("list_pages", 3),
            ("list_restarts", 0),
        ],
    );
    assert_eq!(double.refused_lists(), 1);
    let requests = rig.requests_since(mark);
    assert_eq!(lists_and_writes(&requests, &all), (3 + 1, 20));
    assert!(
        run.stderr.contains("retry_after_s=1") || run.stderr.contains("retry_after_s: 1"),
        "{}",
        run.stderr
    );
    rig.assert_all_decrypt(&all, "after a throttled list");
}

#[test]
fn the_retire_re_list_survives_429_and_an_expired_continue_token() {
    let rig = Rig::new();
    let all = seal_two_namespaces(&rig, 10);
    let double = &rig.bed.double;
    // The rotate list takes 3 pages of 7. Then the retire list: its first request is
    // throttled once, and its continue token expires after its first page.
    double.throttle_lists_after(3, 1, 1);
    double.expire_continue_tokens_after(4);
    let run = rig.rotate(&["--transit-key", KEY, "-A", "--page-size", "7", "--retire"]);
    let summary = run.expect(0).summary();
    let latest = rig.latest(KEY);
    assert_counts(
        &summary,
        &[
            ("rewrapped", 20),
            ("failed", 0),
            ("list_pages", 3 + 1 + 3),
            ("list_restarts", 1),
            ("retired_to", latest),
        ],
    );
    assert_eq!(double.refused_lists(), 2);
    assert!(run.stderr.contains("restarting the list"), "{}", run.stderr);
    assert_eq!(
        rig.key_info(KEY)["min_decryption_version"].as_u64(),
        Some(latest)
    );
    rig.assert_all_decrypt(&all, "after retiring");

    // Laggards are still found, each named once, when the retire list restarts: after
    // a rotation over shop alone, bank's Secrets are behind.
    rig.bed.double.expire_continue_tokens_after(2);
    let run = rig.rotate(&[
        "--transit-key",
        KEY,
        "-n",
        "shop",
        "--page-size",
        "3",
        "--retire",
    ]);
    let summary = run.expect(15).summary();
    let want: Vec<Value> = all
        .iter()
        .filter(|s| s.ns == "bank")
        .map(|s| json!(s.id()))
        .collect();
    assert_eq!(summary["laggards"], json!(want), "{summary}");
    assert_counts(&summary, &[("rewrapped", 10), ("list_restarts", 1)]);
}

/// `count` unbound Secrets in `shop` sharing one ciphertext, each padded with
/// `padding` bytes of data rotation must keep: a cluster where listing everything at
/// once costs memory.
fn seal_padded(rig: &Rig, count: usize, padding: usize) {
    let template = rig.object(&rig.seal("shop", "template", PLAIN_KEY, false));
    let pad = b64(vec![b'x'; padding]);
    for i in 0..count {
        let mut secret = template.clone();
        secret["metadata"] = json!({
            "name": format!("big-{i:05}"),
            "namespace": "shop",
            "labels": template["metadata"]["labels"].clone(),
            "annotations": template["metadata"]["annotations"].clone(),
        });
        secret["data"]["padding"] = json!(pad);
        rig.bed.double.put_secret(secret);
    }
}

#[test]
fn paging_bounds_the_memory_of_a_rotate_over_many_secrets() {
    let rig = Rig::new();
    // 1,500 Secrets of 24 KiB: some 48 MB of list answer when read at once.
    seal_padded(&rig, 1500, 24 * 1024);
    let peak = |page: &str| {
        let run = rig.rotate(&[
            "--transit-key",
            PLAIN_KEY,
            "-n",
            "shop",
            "--page-size",
            page,
        ]);
        let summary = run.expect(0).summary();
        assert_counts(&summary, &[("rewrapped", 1501), ("failed", 0)]);
        count(&summary, "peak_rss_kib")
    };
    // Everything in one page (what listing all at once costs), then 20 a page.
    let at_once = peak("100000");
    let paged = peak("20");
    eprintln!("peak RSS: {at_once} KiB in one page, {paged} KiB 20 a page");
    assert!(
        paged * 2 < at_once,
        "paged {paged} KiB is not well below all at once {at_once} KiB"
    );
    assert!(paged < 48 * 1024, "paged peak {paged} KiB");
}
