//! The fault matrix: `serve`, `seal --apply` and `rotate`, each logged in with its
//! ServiceAccount (so each run mints a Vault token of its own), against a real OpenBao
//! behind a [`FaultProxy`] and the API double, meeting one fault at a time: Vault
//! killed between the login and the work, a connection dropped mid-request, a 200 whose
//! body is HTML, empty, or JSON without `data`; the API server closing connections in
//! the middle of a get or a paged list.
//!
//! Each case asserts: its documented exit code; one error line, the last, naming what
//! failed, with a hint; no plaintext in the output; no Vault token of the run left
//! alive (`auth/token/accessors` before and after, as root); and nothing half-written
//! (every Secret decrypts and is whole, or is exactly as it was).

#[allow(dead_code)]
mod rotate {
    pub mod rig;
}
// Both beds are shared with their own suites; the matrix uses part of each.
#[allow(dead_code, unused_imports)]
mod seal {
    pub mod bed;
}

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use rotate::rig::{Rig, Sealed, Summary};
use secret_zero_testbed::agent;
use secret_zero_testbed::bed::{Bed, DERIVED as KEY};
use secret_zero_testbed::cmd::{Cmd, Sink};
use secret_zero_testbed::faults::{Fault, FaultProxy, live_accessors};
use secret_zero_testbed::kube_double::{Cut, KubeDouble};
use secret_zero_testbed::openbao::OpenBao;
use secret_zero_testbed::text::{doc_with, sentinel};
use secret_zero_testbed::wiring;
use serde_json::{Value, json};

const JSON: &str = "application/json";
/// Text a canned answer carries; no output may repeat it.
const ECHO: &str = "sz-sentinel-echo";

/// How a fault is set up, on the proxy in front of OpenBao or on the API double.
#[derive(Clone)]
enum Setup {
    Vault(&'static str, usize, Fault),
    KubeGets(Cut),
    KubeListsAfter(u64, Cut),
}

impl Setup {
    fn apply(&self, proxy: &FaultProxy, double: &KubeDouble) {
        match self {
            Setup::Vault(marker, skip, fault) => {
                proxy.on(marker, *skip, fault.clone());
            }
            Setup::KubeGets(how) => double.cut_gets(u64::MAX, *how),
            Setup::KubeListsAfter(after, how) => double.cut_lists_after(*after, u64::MAX, *how),
        }
    }
}

/// Stop cutting the double's answers.
fn heal_double(double: &KubeDouble) {
    double.cut_gets(0, Cut::MidBody);
    double.cut_lists_after(0, 0, Cut::MidBody);
}

struct Case {
    name: &'static str,
    setup: Setup,
    code: i32,
    /// What the error line must name.
    names: &'static str,
}

fn case(name: &'static str, setup: Setup, code: i32, names: &'static str) -> Case {
    Case {
        name,
        setup,
        code,
        names,
    }
}

fn vault(marker: &'static str, skip: usize, fault: Fault) -> Setup {
    Setup::Vault(marker, skip, fault)
}

fn answer(status: u16, content_type: &'static str, body: &str) -> Fault {
    Fault::Answer(status, content_type, body.to_string())
}

/// The Vault answers no client can use, on `marker`'s requests.
#[rustfmt::skip]
fn garbage(marker: &'static str) -> Vec<(&'static str, Setup)> {
    vec![
        ("an HTML page", vault(marker, 0, answer(200, "text/html", &format!("<html>{ECHO}</html>")))),
        ("an empty body", vault(marker, 0, answer(200, JSON, ""))),
        ("a 200 without data", vault(marker, 0, answer(200, JSON, r#"{"request_id":"1","warnings":null}"#))),
        ("data that is a string", vault(marker, 0, answer(200, JSON, &format!(r#"{{"data":"{ECHO}"}}"#)))),
    ]
}

/// What one run printed.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `cmd` to its end (60 s at most). When the proxy is down (Vault killed), bring it
/// back once the run retries its revoke: a Vault that comes back in time gets the
/// token revoked.
fn run_through(cmd: &Cmd, proxy: &FaultProxy, dir: &Path) -> Ran {
    let (out, err) = (dir.join("stdout"), dir.join("stderr"));
    let mut process = cmd
        .clone()
        .stdout(Sink::File(out.clone()))
        .stderr(Sink::File(err.clone()))
        .spawn();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = process.exited() {
            break status;
        }
        if proxy.is_down() && read(&err).contains("vault revoke") {
            proxy.up();
        }
        assert!(Instant::now() < deadline, "still running:\n{}", read(&err));
        std::thread::sleep(Duration::from_millis(5));
    };
    Ran {
        code: status.code().unwrap_or(-1),
        stdout: read(&out),
        stderr: read(&err),
    }
}

/// What is wrong with a failed run's output, if anything: its exit code, its one error
/// line (the last, naming `names`, with a hint), plaintext or canned text in it, and
/// tokens of the run still alive.
fn problems(
    case: &Case,
    ran: &Ran,
    secret: &str,
    bao: &OpenBao,
    before: &BTreeSet<String>,
) -> Vec<String> {
    let mut found = Vec::new();
    let name = case.name;
    if ran.code != case.code {
        found.push(format!("{name}: exit {} (want {})", ran.code, case.code));
    }
    let errors: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.starts_with("secret-zero: error:"))
        .collect();
    let last = ran.stderr.trim().lines().last().unwrap_or("");
    let one_line = errors.len() == 1 && errors[0] == last;
    if !(one_line && last.contains(case.names) && last.contains("hint:")) {
        found.push(format!(
            "{name}: error lines {errors:?} (want one, the last, naming {:?}, with a hint)",
            case.names
        ));
    }
    let all = format!("{}\n{}", ran.stdout, ran.stderr);
    for leak in [secret, ECHO] {
        if all.contains(leak) {
            found.push(format!("{name}: the output holds {leak:?}"));
        }
    }
    let alive: Vec<String> = live_accessors(bao).difference(before).cloned().collect();
    if !alive.is_empty() {
        found.push(format!("{name}: tokens of the run still alive: {alive:?}"));
    }
    found
}

fn assert_no_problems(found: Vec<String>, cases: usize) {
    assert!(
        found.is_empty(),
        "{} of {cases} cases went wrong:\n{}",
        found.len(),
        found.join("\n")
    );
}

// ---------------------------------------------------------------------------
// serve
// ---------------------------------------------------------------------------

#[test]
fn serve_meets_each_fault_with_its_exit_code_one_line_and_no_live_token() {
    let bed = Bed::new();
    // Tokens without a use limit that live 5 minutes: a leak would show.
    wiring::kubernetes_role_with(&bed.bao, "shop-app", "shop", "app", &["app"], "5m", 0);
    let secret = sentinel();
    bed.put_bound("shop", "app-secrets", &doc_with(&secret));
    let decrypt = "transit/decrypt/shop-app";
    let bad_decrypt = "unexpected answer from transit/decrypt/shop-app";
    let not_base64 = format!(r#"{{"data":{{"plaintext":"{ECHO}%%"}}}}"#);
    #[rustfmt::skip]
    let mut cases = vec![
        case("Vault killed between login and decrypt", vault(decrypt, 0, Fault::Down), 6, decrypt),
        case("decrypt's connection dropped", vault(decrypt, 0, Fault::Drop), 6, decrypt),
        case("decrypt: a plaintext that is not base64", vault(decrypt, 0, answer(200, JSON, &not_base64)), 6, bad_decrypt),
        case("login: a 200 without auth", vault("auth/kubernetes/login", 0, answer(200, JSON, r#"{"data":null}"#)), 6, "unexpected answer from auth/kubernetes/login"),
        case("API server closes the get mid-body", Setup::KubeGets(Cut::MidBody), 9, "shop/app-secrets"),
        case("API server closes the get before answering", Setup::KubeGets(Cut::BeforeAnswer), 9, "shop/app-secrets"),
    ];
    for (what, setup) in garbage(decrypt) {
        cases.push(case(what, setup, 6, bad_decrypt));
    }
    let token = bed.token_file("shop", "app", "vault", 600);
    let kubeconfig = bed.kubeconfig("app");
    let mut found = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let proxy = FaultProxy::start(bed.bao.addr());
        case.setup.apply(&proxy, &bed.double);
        let before = live_accessors(&bed.bao);
        let socket = bed.socket();
        let mut cmd = agent::serve(&socket);
        cmd.args(["--secret", "shop/app-secrets", "--role", "shop-app"])
            .args(["--vault-addr", proxy.url(), "--retry-timeout", "2s"])
            .arg("--token-file")
            .arg(&token)
            .arg("--kubeconfig")
            .arg(&kubeconfig);
        let dir = bed.path(&format!("serve-{i}"));
        std::fs::create_dir(&dir).unwrap();
        let ran = run_through(&cmd, &proxy, &dir);
        heal_double(&bed.double);
        found.extend(problems(case, &ran, &secret, &bed.bao, &before));
    }
    assert_no_problems(found, cases.len());
}

// ---------------------------------------------------------------------------
// seal --apply
// ---------------------------------------------------------------------------

#[test]
fn seal_apply_meets_each_fault_and_leaves_the_secret_as_it_was() {
    let bed = seal::bed::Bed::new();
    // The Secret being resealed, with data and labels of others on it.
    let old = bed.put_bound("shop", "app-secrets", &doc_with("the old one"));
    let secret = sentinel();
    let input = bed.file("doc.json", doc_with(&secret));
    let token = bed.sa_token_file("shop", "sealer");
    let encrypt = "transit/encrypt/shop-app";
    let decrypt = "transit/decrypt/shop-app";
    #[rustfmt::skip]
    let mut cases = vec![
        case("Vault killed between login and encrypt", vault(encrypt, 0, Fault::Down), 6, encrypt),
        case("encrypt's connection dropped", vault(encrypt, 0, Fault::Drop), 6, encrypt),
        case("Vault killed before the verifying decrypt", vault(decrypt, 0, Fault::Down), 6, decrypt),
        case("the verifying decrypt: a 200 without data", vault(decrypt, 0, answer(200, JSON, "{}")), 6, "unexpected answer from transit/decrypt/shop-app"),
        case("API server closes the first get", Setup::KubeGets(Cut::BeforeAnswer), 9, "shop/app-secrets"),
    ];
    for (what, setup) in garbage(encrypt) {
        cases.push(case(
            what,
            setup,
            6,
            "unexpected answer from transit/encrypt/shop-app",
        ));
    }
    let mut found = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let proxy = FaultProxy::start(bed.bao.addr());
        case.setup.apply(&proxy, &bed.double);
        let before = live_accessors(&bed.bao);
        let cmd = seal_apply(&input, &token, proxy.url(), &bed.admin_kubeconfig);
        let dir = bed.path(&format!("seal-{i}"));
        std::fs::create_dir(&dir).unwrap();
        let ran = run_through(&cmd, &proxy, &dir);
        heal_double(&bed.double);
        found.extend(problems(case, &ran, &secret, &bed.bao, &before));
        if bed.stored("shop", "app-secrets") != old {
            found.push(format!("{}: the Secret changed", case.name));
        }
    }
    assert_no_problems(found, cases.len());
}

/// `seal --apply` of `input` into shop/app-secrets as the sealer, through `vault`.
fn seal_apply(input: &str, token: &str, vault: &str, kubeconfig: &Path) -> Cmd {
    let mut cmd = Cmd::secret_zero();
    cmd.args([
        "seal",
        "--apply",
        "--transit-key",
        KEY,
        "--namespace",
        "shop",
    ])
    .args([
        "--name",
        "app-secrets",
        "--from-file",
        input,
        "--role",
        "sealer",
    ])
    .args([
        "--token-file",
        token,
        "--vault-addr",
        vault,
        "--retry-timeout",
        "2s",
    ])
    .arg("--kubeconfig")
    .arg(kubeconfig);
    cmd
}

#[test]
fn seal_apply_killed_vault_after_the_write_puts_the_secret_back() {
    let bed = seal::bed::Bed::new();
    let old = bed.put_bound("shop", "app-secrets", &doc_with("the old one"));
    let secret = sentinel();
    let input = bed.file("doc.json", doc_with(&secret));
    let token = bed.sa_token_file("shop", "sealer");
    // The first decrypt (before the write) goes through; Vault dies before the read-back's.
    let decrypt = "transit/decrypt/shop-app";
    let case = case(
        "Vault killed between the write and its read-back",
        vault(decrypt, 1, Fault::Down),
        6,
        decrypt,
    );
    let proxy = FaultProxy::start(bed.bao.addr());
    case.setup.apply(&proxy, &bed.double);
    let before = live_accessors(&bed.bao);
    let cmd = seal_apply(&input, &token, proxy.url(), &bed.admin_kubeconfig);
    let ran = run_through(&cmd, &proxy, bed.dir.path());
    assert_no_problems(problems(&case, &ran, &secret, &bed.bao, &before), 1);
    let writes = bed.secret_writes();
    assert!(
        writes.len() >= 2,
        "no write and put-back: {writes:?}\n{}",
        ran.stderr
    );
    assert_eq!(
        seal::bed::without_version(bed.stored("shop", "app-secrets")),
        seal::bed::without_version(old),
        "the Secret was not put back as it was"
    );
}

// ---------------------------------------------------------------------------
// rotate
// ---------------------------------------------------------------------------

/// The rig with 20 bound Secrets (shop and bank) and the rotator's kubernetes login
/// (the shipped policy, tokens of 5 minutes without a use limit); the kubeconfig and
/// JWT file for it.
fn rotate_rig() -> (Rig, Vec<Sealed>, String, String) {
    let rig = Rig::new();
    let mut all = rig.seal_many("shop", 10, KEY, |i| format!("app-{i:02}"));
    all.extend(rig.seal_many("bank", 10, KEY, |i| format!("vault-{i:02}")));
    let (kubeconfig, jwt) = rig.as_rotator();
    (
        rig,
        all,
        kubeconfig.display().to_string(),
        jwt.display().to_string(),
    )
}

fn rotate_cmd(kubeconfig: &str, jwt: &str, vault: &str) -> Cmd {
    let mut cmd = Cmd::secret_zero();
    cmd.args([
        "rotate",
        "--transit-key",
        KEY,
        "-A",
        "--retire",
        "--page-size",
        "7",
    ])
    .args([
        "--batch-size",
        "5",
        "--role",
        "rotator",
        "--token-file",
        jwt,
    ])
    .args([
        "--kubeconfig",
        kubeconfig,
        "--vault-addr",
        vault,
        "--retry-timeout",
        "2s",
    ]);
    cmd
}

/// Nothing half-written: every Secret whole (its labels, annotations and data keys as
/// sealed) and decrypting to its document; none behind `min_decryption_version`,
/// which is `retired`. Returns the key versions in use.
fn whole(rig: &Rig, all: &[Sealed], retired: u64, when: &str) -> BTreeSet<u64> {
    for s in all {
        Rig::assert_whole(s, &rig.object(s), KEY, None, when);
    }
    rig.assert_all_decrypt(all, when);
    assert_eq!(
        rig.key_info(KEY)["min_decryption_version"],
        json!(retired),
        "{when}"
    );
    all.iter().map(|s| rig.version(s)).collect()
}

#[test]
fn rotate_meets_each_vault_fault_with_nothing_half_written_or_retired() {
    let (rig, all, kubeconfig, jwt) = rotate_rig();
    let rewrap = "transit/rewrap/shop-app";
    let no_results = r#"{"data":{"batch_results":[]}}"#;
    #[rustfmt::skip]
    let mut cases = vec![
        case("Vault killed mid-rewrap", vault(rewrap, 1, Fault::Down), 6, rewrap),
        case("a rewrap's connection dropped", vault(rewrap, 2, Fault::Drop), 6, rewrap),
        case("rewrap: fewer results than items", vault(rewrap, 0, answer(200, JSON, no_results)), 6, "0 results for 5 items"),
        case("key read: a 200 without data", vault("GET /v1/transit/keys/shop-app ", 0, answer(200, JSON, r#"{"data":null}"#)), 6, "unexpected answer from transit/keys/shop-app"),
        case("Vault killed before the retire", vault("transit/keys/shop-app/config", 0, Fault::Down), 6, "transit/keys/shop-app/config"),
    ];
    for (what, setup) in garbage(rewrap) {
        cases.push(case(
            what,
            setup,
            6,
            "unexpected answer from transit/rewrap/shop-app",
        ));
    }
    let mut found = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let proxy = FaultProxy::start(rig.bed.bao.addr());
        case.setup.apply(&proxy, &rig.bed.double);
        let before = live_accessors(&rig.bed.bao);
        let retired = rig.key_info(KEY)["min_decryption_version"]
            .as_u64()
            .unwrap();
        let latest = rig.latest(KEY);
        let dir = rig.bed.path(&format!("rotate-{i}"));
        std::fs::create_dir(&dir).unwrap();
        let ran = run_through(&rotate_cmd(&kubeconfig, &jwt, proxy.url()), &proxy, &dir);
        found.extend(problems(
            case,
            &ran,
            "no plaintext passes here",
            &rig.bed.bao,
            &before,
        ));
        let report = ran
            .stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str::<Value>(l).ok());
        if !report.as_ref().is_some_and(|r| r["error"].is_string()) {
            found.push(format!(
                "{}: the report has no error: {report:?}",
                case.name
            ));
        }
        let versions = whole(&rig, &all, retired, case.name);
        let now = rig.latest(KEY);
        if !versions.iter().all(|v| *v <= now && *v >= retired) || now > latest + 1 {
            found.push(format!(
                "{}: versions {versions:?}, key v{latest} -> v{now}",
                case.name
            ));
        }
    }
    assert_no_problems(found, cases.len());
    // A run without faults converges.
    let run = rig.rotate_with(
        None,
        Path::new(&kubeconfig),
        &[
            "--transit-key",
            KEY,
            "-A",
            "--retire",
            "--role",
            "rotator",
            "--token-file",
            &jwt,
        ],
    );
    let latest = rig.latest(KEY);
    assert_eq!(run.expect(0).summary()["retired_to"], json!(latest));
    assert_eq!(
        whole(&rig, &all, latest, "after a clean run"),
        BTreeSet::from([latest])
    );
}

#[test]
fn rotate_survives_one_cut_list_and_stops_cleanly_when_the_api_server_keeps_cutting() {
    let (rig, all, kubeconfig, jwt) = rotate_rig();
    let double = &rig.bed.double;
    let proxy = FaultProxy::start(rig.bed.bao.addr());
    let cmd = rotate_cmd(&kubeconfig, &jwt, proxy.url());

    // One page cut mid-body, the second of the rotate list: retried, and the run ends well.
    double.cut_lists_after(1, 1, Cut::MidBody);
    let ran = run_through(&cmd, &proxy, &rig.bed.path(""));
    assert_eq!(double.cut_answers(), 1);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("list secrets"),
        "no retry logged:\n{}",
        ran.stderr
    );
    let latest = rig.latest(KEY);
    let summary: Value = serde_json::from_str(ran.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["rewrapped"], json!(20), "{summary}");
    assert_eq!(summary["retired_to"], json!(latest), "{summary}");
    assert_eq!(
        whole(&rig, &all, latest, "after a cut list"),
        BTreeSet::from([latest])
    );

    // The API server keeps cutting: from the rotate list's second page, then from the
    // retire list's first.
    #[rustfmt::skip]
    let cases = [
        case("API server keeps closing the rotate list", Setup::KubeListsAfter(1, Cut::BeforeAnswer), 9, "secrets in all namespaces"),
        case("API server keeps cutting the retire list", Setup::KubeListsAfter(3, Cut::MidBody), 9, "secrets in all namespaces"),
    ];
    let mut found = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        case.setup.apply(&proxy, double);
        let before = live_accessors(&rig.bed.bao);
        let retired = rig.key_info(KEY)["min_decryption_version"]
            .as_u64()
            .unwrap();
        let dir = rig.bed.path(&format!("cut-{i}"));
        std::fs::create_dir(&dir).unwrap();
        let ran = run_through(&cmd, &proxy, &dir);
        heal_double(double);
        found.extend(problems(
            case,
            &ran,
            "no plaintext passes here",
            &rig.bed.bao,
            &before,
        ));
        let versions = whole(&rig, &all, retired, case.name);
        let summary: Value =
            serde_json::from_str(ran.stdout.lines().last().unwrap_or("{}")).unwrap_or_default();
        if summary["retired_to"] != Value::Null || summary["failed"] != json!(0) {
            found.push(format!("{}: {summary}", case.name));
        }
        // The rotate list's first page was done (7 Secrets); the retire list's cut came
        // after every Secret was rewrapped.
        let newest = rig.latest(KEY);
        let done = all.iter().filter(|s| rig.version(s) == newest).count();
        let want = if i == 0 { 7 } else { 20 };
        if done != want {
            found.push(format!(
                "{}: {done} Secrets at v{newest} (want {want}); versions {versions:?}",
                case.name
            ));
        }
    }
    assert_no_problems(found, cases.len());
}
