//! `secret-zero webhook`: real AdmissionReview bodies over real TLS.
//!
//! The server runs in-process on a free port (one test runs the binary); the client
//! is tokio-rustls with a hand-written HTTP/1.1 request, so each test chooses exactly
//! which CA it trusts and how many requests fly at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use secret_zero::testing::inject::{Options, STATUS, inject_object};
use secret_zero::testing::webhook::{CertFiles, Config, DEFAULT_MAX_BODY_BYTES, Server};
use secret_zero_testbed::certs::{ServerCert, TestCa};
use secret_zero_testbed::cmd::{Cmd, Sink};
use secret_zero_testbed::wait::{Poll, WAIT};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhook");

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join(name)).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

/// The webhook's injection defaults in these tests.
fn options() -> Options {
    Options {
        image: "registry.example/secret-zero:test".into(),
        ..Options::default()
    }
}

/// The options the webhook uses for a review in namespace `shop`.
fn shop_options() -> Options {
    Options {
        namespace: Some("shop".into()),
        ..options()
    }
}

/// A serving certificate for this host, signed by `ca`.
fn localhost_cert(ca: &TestCa) -> ServerCert {
    ca.server_cert(&["127.0.0.1", "localhost"])
}

/// The server configuration for certificate files in `dir`.
fn config(dir: &Path, reload_interval: Duration, drain_delay: Duration) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: CertFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        },
        reload_interval,
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        drain_delay,
        options: options(),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
    }
}

/// A running in-process webhook and the files it serves from.
struct Webhook {
    addr: SocketAddr,
    /// The plain-HTTP `/metrics` endpoint.
    metrics: SocketAddr,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Webhook {
    async fn start(cert: &ServerCert) -> Webhook {
        let dir = tempfile::tempdir().unwrap();
        write_cert(dir.path(), cert);
        let config = config(dir.path(), Duration::from_millis(100), Duration::ZERO);
        let server = Server::bind(config).await.expect("webhook starts");
        let addr = server.local_addr().unwrap();
        let metrics = server.metrics_addr().expect("metrics are served").unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Webhook {
            addr,
            metrics,
            dir,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// A webhook serving a certificate of a fresh CA, and a client trusting that CA.
    async fn start_trusted() -> (Webhook, tokio_rustls::TlsConnector) {
        let ca = TestCa::new("webhook test CA");
        let webhook = Webhook::start(&localhost_cert(&ca)).await;
        (webhook, client(&[&ca]))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.done.take().unwrap())
            .await
            .expect("webhook stops")
            .unwrap();
    }
}

/// Replace the files the way kubelet does for a Secret volume: write aside, rename.
fn write_cert(dir: &Path, cert: &ServerCert) {
    for (name, text) in [("tls.crt", &cert.chain_pem), ("tls.key", &cert.key_pem)] {
        let aside = dir.join(format!(".{name}.new"));
        std::fs::write(&aside, text).unwrap();
        std::fs::rename(&aside, dir.join(name)).unwrap();
    }
}

fn client(cas: &[&TestCa]) -> tokio_rustls::TlsConnector {
    client_with_versions(cas, rustls::DEFAULT_VERSIONS)
}

fn client_with_versions(
    cas: &[&TestCa],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in CertificateDer::pem_slice_iter(ca.pem().as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 request on a fresh TLS connection: `(status, body)`.
async fn request(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut message = head.into_bytes();
    message.extend_from_slice(body);
    tls.write_all(&message).await?;
    tls.flush().await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP head in the answer"))?;
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, answer[split + 4..].to_vec()))
}

/// The status of a bodiless request that must be answered.
async fn status_of(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> u16 {
    request(connector, addr, method, path, b"").await.unwrap().0
}

/// POST a review and return the response part of the answer.
async fn mutate(connector: &tokio_rustls::TlsConnector, addr: SocketAddr, review: &Value) -> Value {
    let (status, body) = request(
        connector,
        addr,
        "POST",
        "/mutate",
        &serde_json::to_vec(review).unwrap(),
    )
    .await
    .expect("the webhook answers");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    answer["response"].clone()
}

/// The object after the response's patch, as the API server would apply it.
fn patched(review: &Value, response: &Value) -> Value {
    let mut object = review["request"]["object"].clone();
    if let Some(patch) = response.get("patch") {
        assert_eq!(response["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch.as_str().unwrap())
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut object, &patch).expect("the patch applies");
    }
    object
}

/// What `secret-zero inject -o json` (the binary, the other door) makes of `object`.
fn inject_cli(object: &Value, namespace: &str) -> Value {
    let run = Cmd::secret_zero()
        .args(["inject", "-o", "json", "-n", namespace])
        .args(["--image", "registry.example/secret-zero:test"])
        .stdin(serde_json::to_vec(object).unwrap())
        .run();
    assert!(run.success(), "inject failed: {}", run.stderr);
    run.json()
}

fn init_container<'a>(pod_spec: &'a Value, name: &str) -> &'a Value {
    pod_spec["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no init container {name}"))
}

fn with_uid(mut review: Value, uid: &str) -> Value {
    review["request"]["uid"] = json!(uid);
    review
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_create_is_patched_into_exactly_what_inject_makes() {
    let (webhook, connector) = Webhook::start_trusted().await;

    let review = fixture("pod-create.json");
    let response = mutate(&connector, webhook.addr, &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("patch").is_some(), "{response}");
    let got = patched(&review, &response);

    let mut want = review["request"]["object"].clone();
    inject_object(&mut want, &shop_options(), "pod").unwrap();
    assert_eq!(got, want, "the webhook and the library disagree");
    assert_eq!(
        got,
        inject_cli(&review["request"]["object"], "shop"),
        "the webhook and `secret-zero inject` disagree"
    );
    assert_eq!(got["metadata"]["annotations"][STATUS], "injected");
    webhook.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_of_a_deployment_gets_the_agent_of_the_injected_template() {
    let (webhook, connector) = Webhook::start_trusted().await;

    // As the API server sends it for a ReplicaSet's pod: generateName, ownerReferences,
    // no name, defaults filled in, the ServiceAccount volume already added.
    let review = fixture("replicaset-pod-create.json");
    assert!(
        review["request"]["object"]["metadata"]
            .get("name")
            .is_none()
    );
    let response = mutate(&connector, webhook.addr, &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    let got = patched(&review, &response);
    assert_eq!(got, inject_cli(&review["request"]["object"], "shop"));
    assert_eq!(
        got["metadata"]["ownerReferences"],
        review["request"]["object"]["metadata"]["ownerReferences"]
    );

    // `inject` on the Deployment file and the webhook on its pod add the same agent.
    let deployment = inject_cli(&fixture("deployment.json"), "shop");
    let template = &deployment["spec"]["template"];
    assert_eq!(
        init_container(&got["spec"], "secret-zero"),
        init_container(&template["spec"], "secret-zero")
    );
    assert_eq!(
        got["metadata"]["annotations"],
        template["metadata"]["annotations"]
    );
    for volume in template["spec"]["volumes"].as_array().unwrap() {
        assert!(
            got["spec"]["volumes"].as_array().unwrap().contains(volume),
            "the pod lacks the template's volume {volume}"
        );
    }
    webhook.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_in_bad_annotations_reinvocation_and_dry_run() {
    let (webhook, connector) = Webhook::start_trusted().await;
    let review = fixture("pod-create.json");

    // Not opted in: allowed, untouched.
    let mut plain = with_uid(review.clone(), "uid-plain");
    plain["request"]["object"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("secret-zero.dev/inject");
    let response = mutate(&connector, webhook.addr, &plain).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response}");
    assert!(response.get("patchType").is_none(), "{response}");

    // Explicitly "false": the same.
    let mut off = with_uid(review.clone(), "uid-off");
    off["request"]["object"]["metadata"]["annotations"]["secret-zero.dev/inject"] = json!("false");
    let response = mutate(&connector, webhook.addr, &off).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response}");

    // Bad annotations: refused, with a message kubectl will print.
    let mut bad = with_uid(review.clone(), "uid-bad");
    bad["request"]["object"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("secret-zero.dev/role");
    let response = mutate(&connector, webhook.addr, &bad).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert!(response.get("patch").is_none());
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("secret-zero.dev/role"), "{message}");
    assert!(message.contains("shop/web"), "{message}");
    let mut garbled = with_uid(review.clone(), "uid-garbled");
    garbled["request"]["object"]["metadata"]["annotations"]["secret-zero.dev/max-deliveries"] =
        json!("many");
    let response = mutate(&connector, webhook.addr, &garbled).await;
    assert_eq!(response["allowed"], false, "{response}");

    // Reinvocation: the pod as patched comes back; no second agent, no patch.
    let response = mutate(&connector, webhook.addr, &review).await;
    let once = patched(&review, &response);
    let mut again = with_uid(review.clone(), "uid-again");
    again["request"]["object"] = once.clone();
    let response = mutate(&connector, webhook.addr, &again).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none(), "{response}");
    let agents = once["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "secret-zero")
        .count();
    assert_eq!(agents, 1);

    // Reinvocation after a later webhook added a container: only that container gets
    // the socket, the rest stays as it was.
    let mut added = with_uid(review.clone(), "uid-added");
    let mut grown = once.clone();
    grown["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "logger", "image": "registry.example/logger:1"}));
    added["request"]["object"] = grown.clone();
    let response = mutate(&connector, webhook.addr, &added).await;
    let regrown = patched(&added, &response);
    let mut want = grown.clone();
    inject_object(&mut want, &shop_options(), "pod").unwrap();
    assert_eq!(regrown, want);
    let logger = &regrown["spec"]["containers"][1];
    assert!(
        logger["env"]
            .as_array()
            .is_some_and(|env| env.iter().any(|e| e["name"] == "SECRET_ZERO_SOCKET")),
        "{logger}"
    );
    assert_eq!(
        regrown["spec"]["initContainers"],
        once["spec"]["initContainers"]
    );

    // Dry run: the same answer.
    let mut dry = review.clone();
    dry["request"]["dryRun"] = json!(true);
    let wet = mutate(&connector, webhook.addr, &review).await;
    assert_eq!(mutate(&connector, webhook.addr, &dry).await, wet);

    // Other operations and resources are none of its business.
    let mut update = with_uid(review.clone(), "uid-update");
    update["request"]["operation"] = json!("UPDATE");
    update["request"]["oldObject"] = review["request"]["object"].clone();
    let response = mutate(&connector, webhook.addr, &update).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());
    webhook.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_stray_requests_are_refused() {
    let (webhook, connector) = Webhook::start_trusted().await;
    let addr = webhook.addr;

    for body in [
        &b"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": \"AdmissionRev"[..],
        b"not json at all",
        b"",
        br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#,
    ] {
        let (status, answer) = request(&connector, addr, "POST", "/mutate", body)
            .await
            .unwrap();
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert!(answer["error"].is_string(), "{answer}");
    }

    // Over the limit: a pod with a 4 MiB annotation, refused before it is parsed.
    let mut big = fixture("pod-create.json");
    big["request"]["object"]["metadata"]["annotations"]["filler"] = json!("x".repeat(4 << 20));
    let body = serde_json::to_vec(&big).unwrap();
    assert!(body.len() > DEFAULT_MAX_BODY_BYTES);
    let (status, _) = request(&connector, addr, "POST", "/mutate", &body)
        .await
        .unwrap();
    assert_eq!(status, 413);

    // Just under the limit still works.
    let mut large = fixture("pod-create.json");
    large["request"]["object"]["metadata"]["annotations"]["filler"] =
        json!("x".repeat(DEFAULT_MAX_BODY_BYTES - 16 * 1024));
    let response = mutate(&connector, addr, &large).await;
    assert_eq!(response["allowed"], true);

    assert_eq!(status_of(&connector, addr, "GET", "/mutate").await, 405);
    assert_eq!(status_of(&connector, addr, "GET", "/nope").await, 404);
    assert_eq!(status_of(&connector, addr, "GET", "/healthz").await, 200);
    assert_eq!(status_of(&connector, addr, "GET", "/readyz").await, 200);
    webhook.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_reviews_are_all_answered_right() {
    let (webhook, connector) = Webhook::start_trusted().await;
    let pod = fixture("pod-create.json");
    let rs_pod = fixture("replicaset-pod-create.json");
    let expected = |review: &Value| {
        let mut object = review["request"]["object"].clone();
        inject_object(&mut object, &shop_options(), "pod").unwrap();
        object
    };
    let (want_pod, want_rs) = (expected(&pod), expected(&rs_pod));

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (review, want) = if i % 2 == 0 {
            (pod.clone(), want_pod.clone())
        } else {
            (rs_pod.clone(), want_rs.clone())
        };
        let review = with_uid(review, &format!("uid-{i:03}"));
        let connector = connector.clone();
        let addr = webhook.addr;
        tasks.spawn(async move {
            let response = mutate(&connector, addr, &review).await;
            assert_eq!(response["uid"], format!("uid-{i:03}"));
            assert_eq!(patched(&review, &response), want);
        });
    }
    let mut answered = 0;
    while let Some(done) = tasks.join_next().await {
        done.expect("a review failed");
        answered += 1;
    }
    assert_eq!(answered, 200);
    webhook.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_trusts_only_the_ca_and_follows_a_replaced_certificate() {
    let first = TestCa::new("first CA");
    let second = TestCa::new("second CA");
    let webhook = Webhook::start(&localhost_cert(&first)).await;
    let trusts_first = client(&[&first]);
    let trusts_second = client(&[&second]);
    let trusts_both = client(&[&first, &second]);
    let addr = webhook.addr;

    assert_eq!(status_of(&trusts_first, addr, "GET", "/healthz").await, 200);
    assert!(
        request(&trusts_second, addr, "GET", "/healthz", b"")
            .await
            .is_err(),
        "a client that does not trust the CA must fail"
    );

    // Reviews keep flowing while the files are replaced; none may fail.
    let review = fixture("pod-create.json");
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        let (connector, review) = (trusts_both.clone(), review.clone());
        load.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let body = serde_json::to_vec(&review).unwrap();
                match request(&connector, addr, "POST", "/mutate", &body).await {
                    Ok((200, _)) => {}
                    _ => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let requests = || sent.load(Ordering::SeqCst);
    let reached = |n: usize| move || std::future::ready((requests() >= n).then_some(()));
    WAIT.eventually_async(reached(10), || "the load never got going".into())
        .await;
    write_cert(webhook.dir.path(), &localhost_cert(&second));
    let new_ca = &trusts_second;
    Poll::within(Duration::from_secs(10))
        .every(Duration::from_millis(50))
        .eventually_async(
            || async move {
                let answer = request(new_ca, addr, "GET", "/healthz", b"").await;
                answer.ok().map(drop)
            },
            || "the new certificate is not served within 10 s".into(),
        )
        .await;
    // And the load goes on over the new certificate for a while.
    let at_switch = requests();
    WAIT.eventually_async(reached(at_switch + 40), || {
        "the load stopped after the switch".into()
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    while let Some(done) = load.join_next().await {
        done.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "requests failed during the swap"
    );
    assert!(sent.load(Ordering::SeqCst) > 10);

    // Now the old CA no longer works, the new one does.
    assert!(
        request(&trusts_first, addr, "GET", "/healthz", b"")
            .await
            .is_err()
    );
    assert_eq!(
        status_of(&trusts_second, addr, "GET", "/healthz").await,
        200
    );

    // A broken pair (half-written files) is not taken: the last good one keeps serving.
    // Checked through four reload intervals.
    std::fs::write(webhook.path("tls.key"), "not a key").unwrap();
    Poll::within(Duration::from_millis(400))
        .every(Duration::from_millis(50))
        .always_async(
            || async { status_of(new_ca, addr, "GET", "/healthz").await == 200 },
            || "a broken key pair replaced the good one".into(),
        )
        .await;
    webhook.stop().await;
}

/// The binary: flags, TLS 1.2 and 1.3, readiness, and a clean exit on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};

    let ca = TestCa::new("webhook test CA");
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path(), &localhost_cert(&ca));
    let mut process = Cmd::secret_zero()
        .args([
            "webhook",
            "--listen",
            "127.0.0.1:0",
            "--drain-delay",
            "200ms",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(dir.path().join("tls.crt"))
        .env("SECRET_ZERO_TLS_KEY", dir.path().join("tls.key"))
        .env(
            "SECRET_ZERO_INJECT_IMAGE",
            "registry.example/secret-zero:test",
        )
        .stdout(Sink::Inherit)
        .spawn();
    let mut lines = BufReader::new(process.child().stderr.take().unwrap()).lines();
    let mut early = Vec::new();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the webhook logs no address: {early:?}"))
            .unwrap();
        if let Some(rest) = line.split("listening on https://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        early.push(line);
    };
    let metrics: SocketAddr = {
        let line = lines
            .next()
            .expect("the webhook logs its metrics address")
            .unwrap();
        let rest = line
            .split("metrics on http://")
            .nth(1)
            .unwrap_or_else(|| panic!("{line}"));
        rest.trim_end_matches("/metrics").parse().unwrap()
    };
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let connector = client(&[&ca]);
    let review = fixture("replicaset-pod-create.json");
    let response = mutate(&connector, addr, &review).await;
    assert_eq!(
        patched(&review, &response),
        inject_cli(&review["request"]["object"], "shop")
    );
    let scraped = scrape(metrics).await;
    assert_eq!(scraped.value(REVIEWS, &[("outcome", "patched")]), 1.0);
    assert_eq!(
        scraped.value(
            NAMESPACE_REVIEWS,
            &[("namespace", "shop"), ("outcome", "patched")]
        ),
        1.0
    );
    assert_eq!(status_of(&connector, addr, "GET", "/readyz").await, 200);

    // TLS 1.2 is accepted too (older API servers and proxies).
    let tls12 = client_with_versions(&[&ca], &[&rustls::version::TLS12]);
    assert_eq!(status_of(&tls12, addr, "GET", "/healthz").await, 200);

    process.terminate();
    let exit = tokio::task::spawn_blocking(move || {
        process.wait_exit(Poll::within(Duration::from_secs(15)), String::new)
    })
    .await
    .unwrap();
    assert!(exit.success(), "exit status {exit}");
    assert!(
        http(metrics, "GET", "/metrics").await.is_err(),
        "the metrics port is closed"
    );
    let log = log.join().unwrap();
    let review_line = log
        .iter()
        .find(|l| l.contains("b0a1c3d2-8e7f-4a6b-9c5d-e4f3a2b1c0d9"))
        .expect("one log line for the review");
    assert!(
        review_line.contains("shop-web-6d4b75cb6d-"),
        "{review_line}"
    );
    assert!(review_line.contains("outcome=patched"), "{review_line}");
    assert!(log.iter().any(|l| l.contains("stopped")), "{log:?}");
}

/// Shutdown: `/readyz` fails at once, reviews keep being answered through the drain
/// delay, and none in flight is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_without_dropping_reviews() {
    let ca = TestCa::new("webhook test CA");
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path(), &localhost_cert(&ca));
    let server = Server::bind(config(
        dir.path(),
        Duration::from_secs(2),
        Duration::from_millis(1500),
    ))
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let connector = client(&[&ca]);
    let review = fixture("pod-create.json");

    // A stream of reviews that starts before the signal and runs into the drain.
    let answered = Arc::new(AtomicUsize::new(0));
    let stop_load = Arc::new(AtomicBool::new(false));
    let load = {
        let (connector, review) = (connector.clone(), review.clone());
        let (answered, stop_load) = (answered.clone(), stop_load.clone());
        tokio::spawn(async move {
            while !stop_load.load(Ordering::SeqCst) {
                let response = mutate(&connector, addr, &review).await;
                assert_eq!(response["allowed"], true);
                answered.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let count = || answered.load(Ordering::SeqCst);
    let reached = |n: usize| move || std::future::ready((count() >= n).then_some(()));
    WAIT.eventually_async(reached(3), || "no review answered before the signal".into())
        .await;
    stop.send(()).unwrap();
    // Readiness fails at once (within 50 ms), long before the drain is over.
    Poll::within(Duration::from_millis(50))
        .every(Duration::from_millis(5))
        .eventually_async(
            || async {
                let ready = status_of(&connector, addr, "GET", "/readyz").await;
                (ready == 503).then_some(())
            },
            || "/readyz still answers ready after the signal".into(),
        )
        .await;
    assert_eq!(status_of(&connector, addr, "GET", "/healthz").await, 200);
    // Reviews sent after readiness failed are still answered.
    let at_unready = count();
    Poll::within(Duration::from_secs(1))
        .eventually_async(reached(at_unready + 5), || {
            "reviews stopped being answered in the drain".into()
        })
        .await;
    stop_load.store(true, Ordering::SeqCst);
    load.await.expect("no review failed during the drain");
    tokio::time::timeout(Duration::from_secs(5), done)
        .await
        .expect("the server stops after the drain")
        .unwrap();
    assert!(
        request(&connector, addr, "GET", "/healthz", b"")
            .await
            .is_err(),
        "the listener is closed"
    );
}

// ---- Metrics ----

const REVIEWS: &str = "secret_zero_webhook_reviews_total";
const NAMESPACE_REVIEWS: &str = "secret_zero_webhook_namespace_reviews_total";
const DURATION: &str = "secret_zero_webhook_review_duration_seconds";
const RELOADS: &str = "secret_zero_webhook_certificate_reloads_total";
const RELOAD_FAILURES: &str = "secret_zero_webhook_certificate_reload_failures_total";
const EXPIRATION: &str = "secret_zero_webhook_certificate_expiration_timestamp_seconds";
const OUTCOMES: [&str; 5] = ["patched", "unchanged", "skipped", "denied", "error"];

/// One plain HTTP/1.1 request on a fresh connection: `(status, head, body)`.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    let head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await?;
    let answer = String::from_utf8(answer).map_err(std::io::Error::other)?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP head in the answer"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}

/// One sample line of the text format.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape of `/metrics`, parsed strictly as the Prometheus text format 0.0.4: every
/// line is a HELP, a TYPE or a sample; every sample belongs to a family typed before it.
#[derive(Debug)]
struct Scrape {
    types: HashMap<String, String>,
    samples: Vec<Sample>,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut types = HashMap::new();
        let mut helps = HashSet::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let mut words = comment.trim_start().splitn(3, ' ');
                match (words.next(), words.next(), words.next()) {
                    (Some("HELP"), Some(name), Some(_)) => {
                        assert!(is_metric_name(name), "bad HELP line: {line}");
                        assert!(helps.insert(name.to_string()), "a second HELP: {line}");
                    }
                    (Some("TYPE"), Some(name), Some(kind)) => {
                        assert!(is_metric_name(name), "bad TYPE line: {line}");
                        assert!(
                            ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                            "bad TYPE line: {line}"
                        );
                        assert!(
                            types.insert(name.to_string(), kind.to_string()).is_none(),
                            "a second TYPE: {line}"
                        );
                    }
                    _ => {} // a comment
                }
                continue;
            }
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let (name, mut rest) = line.split_at(end);
            assert!(is_metric_name(name), "bad sample line: {line}");
            let mut labels = BTreeMap::new();
            if let Some(inner) = rest.strip_prefix('{') {
                let mut chars = inner.char_indices().peekable();
                loop {
                    if let Some((i, '}')) = chars.peek().copied() {
                        rest = &inner[i + 1..];
                        break;
                    }
                    let key: String = chars
                        .by_ref()
                        .map(|(_, c)| c)
                        .take_while(|&c| c != '=')
                        .collect();
                    assert!(
                        is_metric_name(&key) && !key.contains(':'),
                        "bad label in: {line}"
                    );
                    assert_eq!(
                        chars.next().map(|(_, c)| c),
                        Some('"'),
                        "unquoted label value: {line}"
                    );
                    let mut value = String::new();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            Some('"') => break,
                            Some('\\') => match chars.next().map(|(_, c)| c) {
                                Some('\\') => value.push('\\'),
                                Some('"') => value.push('"'),
                                Some('n') => value.push('\n'),
                                other => panic!("bad escape {other:?} in: {line}"),
                            },
                            Some(c) => value.push(c),
                            None => panic!("unterminated label value: {line}"),
                        }
                    }
                    assert!(labels.insert(key, value).is_none(), "a label twice: {line}");
                    if let Some((_, ',')) = chars.peek() {
                        chars.next();
                    }
                }
            }
            let mut fields = rest
                .strip_prefix(' ')
                .unwrap_or_else(|| panic!("no value: {line}"))
                .split(' ');
            let value = match fields.next() {
                Some("+Inf") => f64::INFINITY,
                Some("-Inf") => f64::NEG_INFINITY,
                Some(v) => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
                None => panic!("no value: {line}"),
            };
            if let Some(timestamp) = fields.next() {
                timestamp
                    .parse::<i64>()
                    .unwrap_or_else(|_| panic!("bad timestamp: {line}"));
            }
            assert!(fields.next().is_none(), "trailing fields: {line}");
            let family = [
                name,
                name.trim_end_matches("_bucket"),
                name.trim_end_matches("_sum"),
                name.trim_end_matches("_count"),
            ]
            .into_iter()
            .find(|f| types.contains_key(*f))
            .unwrap_or_else(|| panic!("a sample of no typed family: {line}"));
            if family != name {
                assert!(
                    ["histogram", "summary"].contains(&types[family].as_str()),
                    "{name} is not a sample of {family} ({})",
                    types[family]
                );
            }
            samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
        Scrape { types, samples }
    }

    fn of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the one series `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<_> = self.of(name).filter(|s| s.labels == want).collect();
        assert_eq!(
            found.len(),
            1,
            "series {name}{want:?} in {:#?}",
            self.samples
        );
        found[0].value
    }

    /// `outcome` → value of `reviews_total`, every outcome present.
    fn reviews(&self) -> BTreeMap<String, f64> {
        self.of(REVIEWS)
            .map(|s| {
                assert_eq!(s.labels.keys().collect::<Vec<_>>(), ["outcome"]);
                (s.labels["outcome"].clone(), s.value)
            })
            .collect()
    }

    /// `(namespace, outcome)` → value of `namespace_reviews_total`.
    fn namespace_reviews(&self) -> BTreeMap<(String, String), f64> {
        self.of(NAMESPACE_REVIEWS)
            .map(|s| {
                (
                    (s.labels["namespace"].clone(), s.labels["outcome"].clone()),
                    s.value,
                )
            })
            .collect()
    }

    /// The histogram's count, after checking that its buckets add up.
    fn duration_count(&self) -> f64 {
        let count = self.value(&format!("{DURATION}_count"), &[]);
        let mut last = (f64::NEG_INFINITY, 0.0);
        for bucket in self.of(&format!("{DURATION}_bucket")) {
            let le: f64 = match bucket.labels["le"].as_str() {
                "+Inf" => f64::INFINITY,
                le => le.parse().unwrap(),
            };
            assert!(
                le > last.0 && bucket.value >= last.1,
                "buckets out of order: {bucket:?}"
            );
            last = (le, bucket.value);
        }
        assert_eq!(last, (f64::INFINITY, count), "the +Inf bucket is the count");
        count
    }
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, head, body) = http(addr, "GET", "/metrics")
        .await
        .expect("the metrics answer");
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    Scrape::parse(&body)
}

/// A self-signed certificate for localhost, valid until midnight UTC of that day:
/// `(chain, key, notAfter in Unix seconds)`.
fn cert_until(year: i32, month: u8, day: u8) -> (String, String, f64) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_after = rcgen::date_time_ymd(year, month, day);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let not_after = params.not_after.unix_timestamp() as f64;
    (cert.pem(), key.serialize_pem(), not_after)
}

fn write_files(dir: &Path, chain: &str, key: &str) {
    for (name, text) in [("tls.crt", chain), ("tls.key", key)] {
        let aside = dir.join(format!(".{name}.new"));
        std::fs::write(&aside, text).unwrap();
        std::fs::rename(&aside, dir.join(name)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_review_and_certificate_reload() {
    let (webhook, connector) = Webhook::start_trusted().await;
    let (addr, metrics) = (webhook.addr, webhook.metrics);
    // TestCa's certificates keep rcgen's default notAfter.
    let test_ca_not_after = rcgen::CertificateParams::default()
        .not_after
        .unix_timestamp() as f64;

    // Before any review: every series of every counter exists, at 0.
    let before = scrape(metrics).await;
    for (name, kind) in [
        (REVIEWS, "counter"),
        (DURATION, "histogram"),
        (RELOADS, "counter"),
        (RELOAD_FAILURES, "counter"),
        (EXPIRATION, "gauge"),
    ] {
        assert_eq!(
            before.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
    }
    let zero: BTreeMap<String, f64> = OUTCOMES.iter().map(|o| (o.to_string(), 0.0)).collect();
    assert_eq!(before.reviews(), zero);
    assert!(
        before.namespace_reviews().is_empty(),
        "no namespace seen yet"
    );
    assert_eq!(before.duration_count(), 0.0);
    assert_eq!(before.value(RELOADS, &[]), 0.0);
    assert_eq!(before.value(RELOAD_FAILURES, &[]), 0.0);
    for sample in &before.samples {
        if before
            .types
            .get(&sample.name)
            .is_some_and(|t| t == "counter")
        {
            assert_eq!(sample.value, 0.0, "{sample:?}");
        }
    }
    assert_eq!(before.value(EXPIRATION, &[]), test_ca_not_after);

    // Reviews that end each way.
    let review = fixture("pod-create.json");
    for uid in ["uid-patched-1", "uid-patched-2"] {
        let response = mutate(&connector, addr, &with_uid(review.clone(), uid)).await;
        assert!(response.get("patch").is_some(), "{response}");
    }
    let mut again = with_uid(review.clone(), "uid-unchanged");
    again["request"]["object"] = patched(&review, &mutate(&connector, addr, &review).await);
    let response = mutate(&connector, addr, &again).await;
    assert!(response.get("patch").is_none(), "{response}");
    let mut plain = with_uid(review.clone(), "uid-skipped");
    plain["request"]["object"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("secret-zero.dev/inject");
    assert!(
        mutate(&connector, addr, &plain)
            .await
            .get("patch")
            .is_none()
    );
    let mut bad = with_uid(review.clone(), "uid-denied");
    bad["request"]["namespace"] = json!("billing");
    bad["request"]["object"]["metadata"]["namespace"] = json!("billing");
    bad["request"]["object"]["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("secret-zero.dev/role");
    assert_eq!(mutate(&connector, addr, &bad).await["allowed"], false);
    let mut big = fixture("pod-create.json");
    big["request"]["object"]["metadata"]["annotations"]["filler"] = json!("x".repeat(4 << 20));
    for (body, status) in [
        (b"not json at all".to_vec(), 400),
        (
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#.to_vec(),
            400,
        ),
        (serde_json::to_vec(&big).unwrap(), 413),
    ] {
        let (got, _) = request(&connector, addr, "POST", "/mutate", &body).await.unwrap();
        assert_eq!(got, status);
    }
    // Not reviews: not counted.
    assert_eq!(status_of(&connector, addr, "GET", "/mutate").await, 405);
    assert_eq!(status_of(&connector, addr, "GET", "/healthz").await, 200);

    let after = scrape(metrics).await;
    assert_eq!(
        after.types.get(NAMESPACE_REVIEWS).map(String::as_str),
        Some("counter")
    );
    let want: BTreeMap<String, f64> = [
        ("patched", 3.0),
        ("unchanged", 1.0),
        ("skipped", 1.0),
        ("denied", 1.0),
        ("error", 3.0),
    ]
    .into_iter()
    .map(|(o, n)| (o.to_string(), n))
    .collect();
    assert_eq!(after.reviews(), want);
    let mut by_namespace: BTreeMap<(String, String), f64> = BTreeMap::new();
    for outcome in OUTCOMES {
        by_namespace.insert(("shop".into(), outcome.into()), 0.0);
        by_namespace.insert(("billing".into(), outcome.into()), 0.0);
    }
    by_namespace.insert(("shop".into(), "patched".into()), 3.0);
    by_namespace.insert(("shop".into(), "unchanged".into()), 1.0);
    by_namespace.insert(("shop".into(), "skipped".into()), 1.0);
    by_namespace.insert(("billing".into(), "denied".into()), 1.0);
    by_namespace.insert(("(none)".into(), "error".into()), 3.0);
    assert_eq!(after.namespace_reviews(), by_namespace);
    assert_eq!(after.duration_count(), 9.0);
    assert!(after.value(&format!("{DURATION}_sum"), &[]) > 0.0);
    assert_eq!(after.value(RELOADS, &[]), 0.0);

    // The metrics port serves nothing else.
    assert_eq!(http(metrics, "GET", "/").await.unwrap().0, 404);
    assert_eq!(http(metrics, "POST", "/metrics").await.unwrap().0, 405);

    // A renewed certificate: one reload, the new notAfter.
    let (chain, key, renewed) = cert_until(2031, 5, 17);
    assert_eq!(renewed, 1_936_742_400.0, "2031-05-17T00:00:00Z");
    write_files(webhook.dir.path(), &chain, &key);
    let counted = |name: &'static str, n: f64| {
        move || async move { (scrape(metrics).await.value(name, &[]) == n).then_some(()) }
    };
    WAIT.eventually_async(counted(RELOADS, 1.0), || "the reload is not counted".into())
        .await;
    let reloaded = scrape(metrics).await;
    assert_eq!(reloaded.value(EXPIRATION, &[]), renewed);
    // The files were replaced one after the other; a poll between them is not a failure.
    assert_eq!(reloaded.value(RELOAD_FAILURES, &[]), 0.0);

    // Garbage: one failure, however long it stays; the served certificate stays.
    std::fs::write(webhook.path("tls.key"), "not a key").unwrap();
    WAIT.eventually_async(counted(RELOAD_FAILURES, 1.0), || {
        "the failed reload is not counted".into()
    })
    .await;
    Poll::within(Duration::from_millis(500))
        .every(Duration::from_millis(50))
        .always_async(
            || async {
                let now = scrape(metrics).await;
                now.value(RELOAD_FAILURES, &[]) == 1.0
                    && now.value(RELOADS, &[]) == 1.0
                    && now.value(EXPIRATION, &[]) == renewed
            },
            || "one broken pair counted more than once".into(),
        )
        .await;
    // Other garbage is another failure.
    std::fs::write(webhook.path("tls.crt"), "not a certificate").unwrap();
    WAIT.eventually_async(counted(RELOAD_FAILURES, 2.0), || {
        "the second failed reload is not counted".into()
    })
    .await;
    // A good pair again: reloaded, served, and its notAfter.
    let ca = TestCa::new("third CA");
    write_cert(webhook.dir.path(), &localhost_cert(&ca));
    WAIT.eventually_async(counted(RELOADS, 2.0), || {
        "the second reload is not counted".into()
    })
    .await;
    assert_eq!(
        status_of(&client(&[&ca]), addr, "GET", "/healthz").await,
        200
    );
    let last = scrape(metrics).await;
    assert_eq!(last.value(EXPIRATION, &[]), test_ca_not_after);
    assert_eq!(last.value(RELOAD_FAILURES, &[]), 2.0);
    assert_eq!(last.reviews(), want);

    webhook.stop().await;
    assert!(
        http(metrics, "GET", "/metrics").await.is_err(),
        "the metrics port closes with the webhook"
    );
}

/// A metrics port in use: one line, exit 13 (like the webhook's own address); `off`
/// serves none, so the same busy port is no obstacle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_port_in_use_exits_13_and_off_serves_none() {
    use std::io::{BufRead, BufReader};

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().to_string();
    let ca = TestCa::new("webhook test CA");
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path(), &localhost_cert(&ca));
    let webhook = || {
        let mut cmd = Cmd::secret_zero();
        cmd.args(["webhook", "--listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(dir.path().join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.path().join("tls.key"));
        cmd
    };

    let run = webhook().args(["--metrics-listen", &port]).run();
    run.expect(13);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].contains(&port), "{}", lines[0]);
    assert!(lines[0].contains("--metrics-listen"), "{}", lines[0]);
    // The variable does the same.
    let run = webhook().env("SECRET_ZERO_METRICS_LISTEN", &port).run();
    run.expect(13);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    // An empty value is refused (off says it), as bad usage.
    let run = webhook().args(["--metrics-listen", ""]).run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("off"), "{}", run.stderr);

    // off: no metrics, the webhook serves.
    let mut process = webhook()
        .env("SECRET_ZERO_METRICS_LISTEN", "off")
        .stdout(Sink::Inherit)
        .spawn();
    let mut lines = BufReader::new(process.child().stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("the webhook logs its address").unwrap();
        log.push(line.clone());
        if let Some(rest) = line.split("listening on https://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    log.push(lines.next().expect("a line about metrics").unwrap());
    assert!(log.iter().any(|l| l.contains("metrics off")), "{log:?}");
    assert_eq!(
        status_of(&client(&[&ca]), addr, "GET", "/healthz").await,
        200
    );
    process.terminate();
    let exit = tokio::task::spawn_blocking(move || {
        process.wait_exit(Poll::within(Duration::from_secs(15)), String::new)
    })
    .await
    .unwrap();
    assert!(exit.success(), "exit status {exit}");
    drop(busy);
}

/// The shipped manifests scrape what the binary serves: the Deployment's `metrics`
/// port is the one `--metrics-listen` binds, the Service and the optional
/// ServiceMonitor point at it by name, and the ServiceMonitor stays optional.
#[test]
fn the_manifests_expose_the_metrics_port() {
    let read = |name: &str| -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("manifests/webhook")
            .join(name);
        serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let default_port: u16 = secret_zero::env::DEFAULT_METRICS_LISTEN
        .parse::<SocketAddr>()
        .unwrap()
        .port();

    let deployment = read("deployment.yaml");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let listen: SocketAddr = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a.as_str()?.strip_prefix("--metrics-listen="))
        .expect("the Deployment sets --metrics-listen")
        .parse()
        .unwrap();
    assert_eq!(listen.port(), default_port);
    let port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a container port named metrics");
    assert_eq!(port["containerPort"], u64::from(listen.port()));

    let service = read("service.yaml");
    let port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a Service port named metrics");
    assert_eq!(port["targetPort"], "metrics");

    let monitor = read("servicemonitor.yaml");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    assert_eq!(
        monitor["metadata"]["namespace"],
        service["metadata"]["namespace"]
    );
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["metadata"]["labels"]
    );
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "metrics");
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["scheme"], "http");

    let kustomization = read("kustomization.yaml");
    let resources = kustomization["resources"].as_array().unwrap();
    assert!(resources.contains(&json!("service.yaml")));
    assert!(
        !resources.contains(&json!("servicemonitor.yaml")),
        "the ServiceMonitor needs the Prometheus Operator: it stays optional"
    );
}
