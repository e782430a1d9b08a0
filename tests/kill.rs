//! The kill campaign: `secret-zero rotate --retire --trim` over 200 Secrets, killed
//! with SIGKILL at 20 moments spread over its run, while another controller keeps
//! changing an unrelated data key of those Secrets. After every kill each Secret still
//! decrypts with the key as it is then, nothing is half-written and nothing still in
//! use is retired; a rerun converges, and the other controller's last change to each
//! Secret is still there (ARCHITECTURE.md I10, I11).
//!
//! The moments come from a seeded generator (the seed is printed; set
//! `KILL_CAMPAIGN_SEED` to replay one): a third are delays up to the length of an
//! unkilled run, a third are the k-th Vault request the run sends (counted by a proxy
//! in front of OpenBao), a third the k-th list request the API double sees.

// The rig is shared with tests/rotate.rs; this campaign uses only part of it.
#[allow(dead_code)]
mod rotate {
    pub mod rig;
}

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rotate::rig::{Rig, Sealed, Summary, version_of};
use secret_zero_testbed::bed::{DERIVED as KEY, ciphertext_of};
use secret_zero_testbed::cmd::Process;
use secret_zero_testbed::kube_double::KubeDouble;
use secret_zero_testbed::proxy::CountingProxy;
use secret_zero_testbed::text::{b64, unb64};
use serde_json::{Value, json};

/// Secrets in the campaign, and kills that must land.
const SECRETS: usize = 200;
const KILLS: usize = 20;
/// Rounds allowed for them: a run that finishes before its moment is not a kill.
const MAX_ROUNDS: usize = 80;
/// The data key the other controller writes.
const WRITER_KEY: &str = "writer";

/// When to kill one run.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// After this long.
    After(Duration),
    /// Once the run has sent this many Vault requests.
    VaultRequest(usize),
    /// Once the API double has seen this many list requests from the run.
    List(usize),
}

/// What an unkilled run costs, to spread the moments over all of it.
struct Measure {
    duration: Duration,
    vault_requests: usize,
    lists: usize,
}

#[test]
fn sigkill_twenty_times_over_two_hundred_secrets_then_a_rerun_converges_and_keeps_every_concurrent_change()
 {
    let seed = std::env::var("KILL_CAMPAIGN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("kill campaign seed {seed} (KILL_CAMPAIGN_SEED={seed} replays it)");
    let mut rng = fastrand::Rng::with_seed(seed);

    let rig = Rig::new();
    // Mixed versions to start with: v1 and v2, in two namespaces.
    let mut all = rig.seal_many("shop", SECRETS / 2, KEY, |i| format!("kill-{i:03}"));
    rig.rotate_as_root(KEY);
    all.extend(rig.seal_many("bank", SECRETS / 2, KEY, |i| format!("kill-{i:03}")));
    let vault = CountingProxy::start(rig.bed.bao.addr().trim_start_matches("http://"));
    let url = vault.url();
    let args = [
        "--vault-addr",
        &url,
        "--transit-key",
        KEY,
        "-A",
        "--retire",
        "--trim",
        "--page-size",
        "50",
        "--batch-size",
        "10",
    ];

    let stop = AtomicBool::new(false);
    let stored: Mutex<BTreeMap<String, String>> = Mutex::default();
    let writer_seed = rng.u64(..);
    std::thread::scope(|scope| {
        let writer =
            scope.spawn(|| write_until(&rig.bed.double, &all, writer_seed, &stop, &stored));

        // One unkilled run, under the writer: how long and how many requests.
        let (mark_vault, mark_lists) = (vault.requests(), lists(&rig.bed.double));
        let started = Instant::now();
        let first = rig.rotate(&args);
        first.expect(0);
        let full = Measure {
            duration: started.elapsed(),
            vault_requests: vault.requests() - mark_vault,
            lists: lists(&rig.bed.double) - mark_lists,
        };
        check(&rig, &all, "after the unkilled run");

        let (mut kills, mut finished, mut mixed, mut after_retire) = (0, 0, 0, 0);
        for round in 0..MAX_ROUNDS {
            if kills == KILLS {
                break;
            }
            let moment = pick(&mut rng, &full);
            let retired_before = min_decryption(&rig);
            let (mark_vault, mark_lists) = (vault.requests(), lists(&rig.bed.double));
            let mut child = rig.spawn_rotate(&args);
            let started = Instant::now();
            let reached = || match moment {
                Moment::After(at) => started.elapsed() >= at,
                Moment::VaultRequest(k) => vault.requests() - mark_vault >= k,
                Moment::List(k) => lists(&rig.bed.double) - mark_lists >= k,
            };
            if !kill_at(&mut child, reached) {
                finished += 1;
                continue;
            }
            kills += 1;
            let when = format!("after kill {kills} (round {round}, {moment:?})");
            let versions = check(&rig, &all, &when);
            if versions.len() > 1 {
                mixed += 1;
            }
            if min_decryption(&rig) > retired_before {
                after_retire += 1;
            }
        }
        eprintln!(
            "{kills} kills ({mixed} with Secrets at mixed versions, {after_retire} after a retire), \
             {finished} runs finished first; unkilled run: {:?}, {} Vault requests, {} lists",
            full.duration, full.vault_requests, full.lists
        );
        assert_eq!(
            kills, KILLS,
            "only {kills} kills landed in {MAX_ROUNDS} rounds"
        );
        assert!(
            mixed >= 1,
            "no kill landed while Secrets were being rewrapped"
        );

        // The rerun, with the writer still at work: it converges and says so.
        let run = rig.rotate(&args);
        let summary = run.expect(0).summary();
        let latest = rig.latest(KEY);
        assert_eq!(summary["failed"], json!(0), "{summary}");
        assert_eq!(summary["retired_to"], json!(latest), "{summary}");
        assert_eq!(
            summary["rewrapped"].as_u64().unwrap() + summary["unchanged"].as_u64().unwrap(),
            SECRETS as u64,
            "{summary}"
        );
        stop.store(true, Ordering::Relaxed);
        let writes = writer.join().unwrap();

        let versions = check(&rig, &all, "after the rerun");
        assert_eq!(versions, BTreeSet::from([latest]), "not all on v{latest}");
        let stored = stored.lock().unwrap();
        assert!(
            stored.len() >= SECRETS / 4,
            "the writer stored on only {} Secrets ({writes} attempts)",
            stored.len()
        );
        for s in &all {
            let object = rig.object(s);
            let have = object["data"][WRITER_KEY].as_str().map(unb64);
            let want = stored.get(&s.id()).map(|v| v.as_bytes().to_vec());
            assert_eq!(have, want, "{}: the writer's last change was lost", s.id());
        }
        eprintln!(
            "the writer stored {writes} changes on {} Secrets; every last one kept",
            stored.len()
        );
    });
}

/// A moment somewhere in a run like `full`.
fn pick(rng: &mut fastrand::Rng, full: &Measure) -> Moment {
    match rng.u8(0..3) {
        0 => Moment::After(full.duration.mul_f64(rng.f64())),
        1 => Moment::VaultRequest(rng.usize(1..=full.vault_requests.max(1))),
        _ => Moment::List(rng.usize(1..=full.lists.max(1))),
    }
}

/// SIGKILL `child` once `reached` says so; false if it exited first.
fn kill_at(child: &mut Process, reached: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.exited().is_some() {
            return false;
        }
        if reached() {
            child.kill();
            return true;
        }
        assert!(Instant::now() < deadline, "a rotate run hangs");
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// List requests the double has seen (only `rotate` lists; the writer never does).
fn lists(double: &KubeDouble) -> usize {
    double
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.ends_with("/secrets"))
        .count()
}

fn min_decryption(rig: &Rig) -> u64 {
    rig.key_info(KEY)["min_decryption_version"]
        .as_u64()
        .unwrap()
}

/// Every Secret, read from the double and decrypted through Vault (as root, one batch
/// request) with the key as it is now: its original document; each whole (its labels,
/// annotations and data keys as sealed, plus the writer's); none behind the key's
/// `min_decryption_version`. Returns the key versions in use.
fn check(rig: &Rig, all: &[Sealed], when: &str) -> BTreeSet<u64> {
    let objects: Vec<Value> = all.iter().map(|s| rig.object(s)).collect();
    for (s, object) in all.iter().zip(&objects) {
        Rig::assert_whole(s, object, KEY, Some(WRITER_KEY), when);
        assert_eq!(
            object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            json!("secret-zero"),
            "{} {when}",
            s.id()
        );
    }
    let ciphertexts: Vec<String> = objects
        .iter()
        .map(|o| ciphertext_of(o, "ciphertext"))
        .collect();
    let batch: Vec<Value> = all
        .iter()
        .zip(&ciphertexts)
        .map(|(s, ct)| json!({"ciphertext": ct, "context": b64(s.id())}))
        .collect();
    // Vault answers 400 when any item fails, still with every item's result.
    let answer = match rig.bed.bao.api(
        "POST",
        &format!("transit/decrypt/{KEY}"),
        Some(json!({ "batch_input": batch })),
    ) {
        Ok(answer) => answer,
        Err(e) => serde_json::from_str(&e.body).unwrap_or_else(|_| panic!("{when}: {e:?}")),
    };
    let results = answer["data"]["batch_results"]
        .as_array()
        .unwrap_or_else(|| panic!("{when}: {answer}"));
    assert_eq!(results.len(), all.len(), "{when}");
    for ((s, ct), result) in all.iter().zip(&ciphertexts).zip(results) {
        let Some(plaintext) = result["plaintext"].as_str() else {
            panic!("{} ({ct:.12}...) does not decrypt {when}: {result}", s.id());
        };
        assert_eq!(
            unb64(plaintext),
            s.doc,
            "{}: wrong plaintext {when}",
            s.id()
        );
    }
    let versions: BTreeSet<u64> = ciphertexts.iter().map(|ct| version_of(ct)).collect();
    let min = min_decryption(rig);
    assert!(
        min <= *versions.first().unwrap(),
        "{when}: retired below v{min} while Secrets are at {versions:?}"
    );
    versions
}

/// Another controller: until `stop`, set data key `writer` of a random Secret to a new
/// value, the proper way (GET, change, PUT with the resourceVersion read, again on a
/// 409), and remember the last value stored on each. Returns its attempts.
fn write_until(
    double: &KubeDouble,
    all: &[Sealed],
    seed: u64,
    stop: &AtomicBool,
    stored: &Mutex<BTreeMap<String, String>>,
) -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    let admin = double.admin_token();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let s = &all[rng.usize(..all.len())];
        let path = format!("/api/v1/namespaces/{}/secrets/{}", s.ns, s.name);
        let value = format!("change-{n}");
        for _ in 0..20 {
            let (status, mut object) = double.call("GET", &path, Some(&admin), None);
            assert_eq!(status, 200, "writer GET {path}: {object}");
            object["data"][WRITER_KEY] = json!(b64(&value));
            let (status, answer) = double.call("PUT", &path, Some(&admin), Some(&object));
            match status {
                200 => {
                    stored.lock().unwrap().insert(s.id(), value.clone());
                    break;
                }
                409 => continue,
                _ => panic!("writer PUT {path}: {status} {answer}"),
            }
        }
    }
    n
}
