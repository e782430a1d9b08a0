//! The agent's socket server, its client and dotenv rendering, over real Unix sockets:
//! one-shot delivery under concurrency, later deliveries from a source, peer policy
//! against a process of another uid, abstract sockets, socket file life cycle, the HTTP
//! surface, and dotenv output sourced by a real bash.

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secret_zero::Plaintext;
use secret_zero::client::{self, ClientError, FetchFormat};
use secret_zero::client::{AgentState, DocFormat, SocketSpec};
use secret_zero::testing::agent::{
    Agent, AgentConfig, AgentError, Fault, Limits, PeerPolicy, Source, StatusHandle,
};
use secret_zero::testing::error::{Error, Hinted, exit};
use secret_zero_testbed::cmd::Cmd;
use secret_zero_testbed::shared::{NOBODY, SharedDir, require_root};
use secret_zero_testbed::tools;
use secret_zero_testbed::wait::Poll;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const DOC: &[u8] = br#"{"db_password":"s3cr3t-agent-sentinel","port":5432}"#;
const CURL: &str = "/usr/bin/curl";

/// A served agent and the means to stop it.
struct Running {
    socket: SocketSpec,
    handle: StatusHandle,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), AgentError>>,
}

impl Running {
    /// Ask `serve` to stop and wait for it.
    async fn stop(mut self) {
        drop(self.stop.take());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task")
            .expect("serve returns Ok");
    }
}

fn config(socket: SocketSpec) -> AgentConfig {
    AgentConfig {
        socket,
        ..AgentConfig::default()
    }
}

fn path_socket(dir: &Path) -> SocketSpec {
    SocketSpec::Path(dir.join("agent.sock"))
}

fn abstract_socket(tag: &str) -> SocketSpec {
    SocketSpec::Abstract(format!(
        "secret-zero-test-{}-{tag}-{}",
        std::process::id(),
        fastrand::u32(..)
    ))
}

fn start(config: AgentConfig) -> Running {
    let agent = Agent::bind(config).expect("bind");
    let handle = agent.status_handle();
    let socket = agent.socket().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.serve(async move {
        let _ = stopped.await;
    }));
    Running {
        socket,
        handle,
        stop: Some(stop),
        task,
    }
}

/// Start and mark ready with `doc`, no source.
fn start_ready(config: AgentConfig, doc: &[u8]) -> Running {
    let running = start(config);
    running.handle.ready(Plaintext::new(doc.to_vec()), None);
    running
}

/// A source that counts its calls and numbers its copies: `{"copy":N}` with N from 2.
struct Counting(Arc<AtomicU32>);

impl Source for Counting {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Plaintext, Fault>> + Send + '_>> {
        Box::pin(async move {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(Plaintext::new(
                format!("{{\"copy\":{}}}", n + 1).into_bytes(),
            ))
        })
    }
}

/// Start with `max_deliveries`, ready with `{"copy":1}` and a [`Counting`] source;
/// returns the source's call count too.
fn start_counting(dir: &Path, max_deliveries: u32) -> (Running, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let agent = start(AgentConfig {
        max_deliveries,
        ..config(path_socket(dir))
    });
    agent.handle.ready(
        Plaintext::new(br#"{"copy":1}"#.to_vec()),
        Some(Arc::new(Counting(calls.clone()))),
    );
    (agent, calls)
}

/// A source whose fetch always fails, as a Vault outage would.
struct Failing(Arc<AtomicU32>);

impl Source for Failing {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Plaintext, Fault>> + Send + '_>> {
        Box::pin(async move {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(Fault::input(
                "vault at http://127.0.0.1:1 is unreachable",
                "check VAULT_ADDR",
            ))
        })
    }
}

/// A raw HTTP exchange: the status, the headers (lower-case names) and the body.
struct Raw {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

async fn raw(socket: &SocketSpec, request: &str) -> Raw {
    let mut stream = match socket {
        SocketSpec::Path(path) => tokio::net::UnixStream::connect(path).await.unwrap(),
        SocketSpec::Abstract(name) => tokio::net::UnixStream::connect(format!("\0{name}"))
            .await
            .unwrap(),
    };
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the agent closes the connection after answering")
        .unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8(answer[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    Raw {
        status,
        headers,
        body: answer[split + 4..].to_vec(),
    }
}

async fn get(socket: &SocketSpec, target: &str) -> Raw {
    raw(
        socket,
        &format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    )
    .await
}

/// Run curl (as uid 65534 when `as_nobody`, from a directory of its own) against the
/// agent; returns (status, body).
async fn curl(socket: &SocketSpec, as_nobody: bool, target: &str) -> (u16, String) {
    assert!(
        Path::new(CURL).exists(),
        "{CURL} is missing: install it with `apt-get install -y curl`"
    );
    let mut cmd = Cmd::new(CURL);
    cmd.arg("-q")
        .args(["-sS", "-w", "\n%{http_code}", "--max-time", "10"]);
    match socket {
        SocketSpec::Path(path) => cmd.arg("--unix-socket").arg(path),
        SocketSpec::Abstract(name) => cmd.arg("--abstract-unix-socket").arg(name),
    };
    cmd.arg(format!("http://localhost{target}"));
    let run = if as_nobody {
        require_root("the peer-policy tests run curl as uid 65534");
        let dir = SharedDir::new();
        cmd.as_uid(NOBODY, &dir).run_async().await
    } else {
        cmd.run_async().await
    };
    let stdout = String::from_utf8(run.bytes).unwrap();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let code = code.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl gave no status: stdout {stdout:?} stderr {:?}",
            run.stderr
        )
    });
    (code, body.to_string())
}

fn socket_path(socket: &SocketSpec) -> &Path {
    match socket {
        SocketSpec::Path(path) => path,
        SocketSpec::Abstract(_) => panic!("not a path socket"),
    }
}

/// The bind failure as the binary reports it: its exit code and one line.
fn bind_error(config: AgentConfig) -> Error {
    match Agent::bind(config) {
        Ok(_) => panic!("bind should have failed"),
        Err(e) => e.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_once_then_gone_and_status_never_consumes() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start(config(path_socket(dir.path())));
    agent.handle.set_key_version(Some(3));

    let status = client::status(&agent.socket).await.unwrap();
    assert_eq!(status.state, AgentState::Starting);

    agent.handle.ready(Plaintext::new(DOC.to_vec()), None);
    for _ in 0..3 {
        let status = client::status(&agent.socket).await.unwrap();
        assert_eq!(status.state, AgentState::Ready);
        assert_eq!(status.deliveries_left, 1, "status must not consume");
        assert_eq!(status.key_version, Some(3));
        assert_eq!(status.format, DocFormat::Json);
        assert_eq!(status.reason, None);
    }

    let doc = client::fetch(&agent.socket, FetchFormat::Json)
        .await
        .unwrap();
    assert_eq!(doc.bytes(), DOC);
    assert_eq!(doc.content_type(), "application/json");
    assert_eq!(
        doc.key("db_password").unwrap().expose(),
        b"s3cr3t-agent-sentinel"
    );
    assert_eq!(doc.key("port").unwrap().expose(), b"5432");

    match client::fetch(&agent.socket, FetchFormat::Json).await {
        Err(e @ ClientError::Gone { .. }) => {
            assert_eq!(e.exit_code(), exit::AGENT_GONE);
            assert!(e.to_string().contains("no delivery left"), "{e}");
        }
        other => panic!("expected Gone, got {other:?}"),
    }

    let status = client::status(&agent.socket).await.unwrap();
    assert_eq!(status.state, AgentState::Delivered);
    assert_eq!(status.deliveries_left, 0);
    assert!(status.is_healthy());

    // The raw status body has exactly the documented fields and no plaintext.
    let answer = get(&agent.socket, "/v1/status").await;
    let body = answer.json();
    assert_eq!(
        body,
        serde_json::json!({"state":"delivered","deliveries_left":0,"format":"json","key_version":3})
    );

    let path = socket_path(&agent.socket).to_path_buf();
    assert!(path.exists());
    agent.stop().await;
    assert!(
        !path.exists(),
        "the socket file is removed when serve returns"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_clients_get_exactly_one_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_ready(config(path_socket(dir.path())), DOC);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let socket = agent.socket.clone();
        tasks.push(tokio::spawn(async move {
            client::fetch(&socket, FetchFormat::Json).await
        }));
    }
    let (mut delivered, mut gone) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(doc) => {
                assert_eq!(doc.bytes(), DOC);
                delivered += 1;
            }
            Err(ClientError::Gone { .. }) => gone += 1,
            Err(e) => panic!("unexpected answer: {e}"),
        }
    }
    assert_eq!((delivered, gone), (1, 49));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_deliveries_are_fresh_copies_from_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, calls) = start_counting(dir.path(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "ready does not fetch");
    for n in 1..=3 {
        let doc = client::fetch(&agent.socket, FetchFormat::Json)
            .await
            .unwrap();
        assert_eq!(doc.bytes(), format!("{{\"copy\":{n}}}").as_bytes());
        assert_eq!(calls.load(Ordering::SeqCst), n - 1);
        let status = client::status(&agent.socket).await.unwrap();
        assert_eq!(status.deliveries_left, 3 - n);
    }
    assert!(matches!(
        client::fetch(&agent.socket, FetchFormat::Json).await,
        Err(ClientError::Gone { .. })
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a 410 fetches nothing");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_never_exceed_max_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, calls) = start_counting(dir.path(), 3);
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let socket = agent.socket.clone();
            tokio::spawn(async move { client::fetch(&socket, FetchFormat::Json).await })
        })
        .collect();
    let mut copies = Vec::new();
    let mut gone = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(doc) => copies.push(String::from_utf8(doc.bytes().to_vec()).unwrap()),
            Err(ClientError::Gone { .. }) => gone += 1,
            Err(e) => panic!("unexpected answer: {e}"),
        }
    }
    copies.sort();
    assert_eq!(copies, [r#"{"copy":1}"#, r#"{"copy":2}"#, r#"{"copy":3}"#]);
    assert_eq!(gone, 27);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fetch_answers_503_and_consumes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let agent = start(AgentConfig {
        max_deliveries: 2,
        ..config(path_socket(dir.path()))
    });
    agent.handle.ready(
        Plaintext::new(DOC.to_vec()),
        Some(Arc::new(Failing(calls.clone()))),
    );
    assert_eq!(
        client::fetch(&agent.socket, FetchFormat::Json)
            .await
            .unwrap()
            .bytes(),
        DOC
    );
    for attempt in 1..=2 {
        match client::fetch(&agent.socket, FetchFormat::Json).await {
            Err(e @ ClientError::NotReady { .. }) => {
                assert_eq!(e.exit_code(), exit::AGENT_UNREACHABLE);
                assert!(e.to_string().contains("fresh copy"), "{e}");
                assert!(e.to_string().contains("unreachable"), "{e}");
            }
            other => panic!("expected NotReady, got {other:?}"),
        }
        assert_eq!(calls.load(Ordering::SeqCst), attempt);
        let status = client::status(&agent.socket).await.unwrap();
        assert_eq!(
            (status.state, status.deliveries_left),
            (AgentState::Ready, 1)
        );
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_source_only_one_delivery_is_possible() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_ready(
        AgentConfig {
            max_deliveries: 3,
            ..config(path_socket(dir.path()))
        },
        DOC,
    );
    assert_eq!(
        client::status(&agent.socket).await.unwrap().deliveries_left,
        1
    );
    client::fetch(&agent.socket, FetchFormat::Json)
        .await
        .unwrap();
    assert!(matches!(
        client::fetch(&agent.socket, FetchFormat::Json).await,
        Err(ClientError::Gone { .. })
    ));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_after_delivery_returns_once_the_answer_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_ready(
        AgentConfig {
            exit_after_delivery: true,
            ..config(path_socket(dir.path()))
        },
        DOC,
    );
    let path = socket_path(&agent.socket).to_path_buf();
    // Status and refusals do not end it.
    client::status(&agent.socket).await.unwrap();
    Poll::within(Duration::from_millis(50))
        .always_async(
            || std::future::ready(!agent.task.is_finished()),
            || "serve returned after a status request".into(),
        )
        .await;

    let doc = client::fetch(&agent.socket, FetchFormat::Json)
        .await
        .unwrap();
    assert_eq!(doc.bytes(), DOC, "the whole answer arrived before the exit");
    tokio::time::timeout(Duration::from_secs(10), agent.task)
        .await
        .expect("serve returns by itself")
        .unwrap()
        .unwrap();
    assert!(!path.exists(), "socket file removed on exit");
    match client::fetch(&SocketSpec::Path(path), FetchFormat::Json).await {
        Err(e @ ClientError::Unreachable { .. }) => {
            assert_eq!(e.exit_code(), exit::AGENT_UNREACHABLE);
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_and_failed_answer_503_json() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start(config(path_socket(dir.path())));

    let answer = get(&agent.socket, "/v1/secret").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.header("cache-control"), "no-store");
    let body = answer.json();
    assert_eq!(body["error"], "not ready");
    assert!(body["hint"].as_str().unwrap().contains("probe"), "{body}");
    assert!(matches!(
        client::fetch(&agent.socket, FetchFormat::Json).await,
        Err(ClientError::NotReady { .. })
    ));
    assert!(!client::status(&agent.socket).await.unwrap().is_healthy());

    agent
        .handle
        .failed("permission denied on transit/decrypt/shop-app".into());
    let status = client::status(&agent.socket).await.unwrap();
    assert_eq!(status.state, AgentState::Failed);
    assert_eq!(
        status.reason.as_deref(),
        Some("permission denied on transit/decrypt/shop-app")
    );
    assert!(!status.is_healthy());
    let answer = get(&agent.socket, "/v1/secret").await;
    assert_eq!(answer.status, 503);
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("transit/decrypt/shop-app")
    );
    // A late ready() after failure is ignored.
    agent.handle.ready(Plaintext::new(DOC.to_vec()), None);
    assert_eq!(
        client::status(&agent.socket).await.unwrap().state,
        AgentState::Failed
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_surface_404_405_400_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_ready(config(path_socket(dir.path())), DOC);

    let answer = get(&agent.socket, "/v1/nothing").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.header("cache-control"), "no-store");
    let body = answer.json();
    assert!(
        body["error"].is_string() && body["hint"].is_string(),
        "{body}"
    );

    for (method, target) in [
        ("POST", "/v1/secret"),
        ("DELETE", "/v1/secret"),
        ("PUT", "/v1/status"),
    ] {
        let answer = raw(
            &agent.socket,
            &format!("{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
        )
        .await;
        assert_eq!(answer.status, 405, "{method} {target}");
        assert_eq!(answer.header("allow"), "GET");
        let body = answer.json();
        assert!(body["error"].as_str().unwrap().contains(method), "{body}");
        assert!(body["hint"].is_string());
    }

    let answer = get(&agent.socket, "/v1/secret?format=yaml").await;
    assert_eq!(answer.status, 400);
    assert!(answer.json()["error"].as_str().unwrap().contains("yaml"));

    let answer = get(&agent.socket, "/v1/status").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("cache-control"), "no-store");

    // None of the above consumed the delivery.
    let answer = get(&agent.socket, "/v1/secret").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, DOC);
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.header("cache-control"), "no-store");
    assert_eq!(answer.header("connection"), "close");
    assert_eq!(answer.header("content-length"), DOC.len().to_string());

    let answer = get(&agent.socket, "/v1/secret").await;
    assert_eq!(answer.status, 410);
    let body = answer.json();
    assert!(
        body["error"].is_string() && body["hint"].is_string(),
        "{body}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_documents_are_octet_streams_and_refuse_json_views() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0u8..=255).collect();
    let agent = start_ready(
        AgentConfig {
            format: DocFormat::Raw,
            ..config(path_socket(dir.path()))
        },
        &bytes,
    );
    for format in [FetchFormat::Json, FetchFormat::Dotenv] {
        match client::fetch(&agent.socket, format).await {
            Err(e @ ClientError::Http { status: 422, .. }) => {
                assert_eq!(e.exit_code(), exit::INPUT);
                assert!(e.to_string().contains("raw"), "{e}");
            }
            other => panic!("expected 422, got {other:?}"),
        }
    }
    let status = client::status(&agent.socket).await.unwrap();
    assert_eq!((status.deliveries_left, status.format), (1, DocFormat::Raw));
    let doc = client::fetch(&agent.socket, FetchFormat::Raw)
        .await
        .unwrap();
    assert_eq!(doc.bytes(), &bytes[..]);
    assert_eq!(doc.content_type(), "application/octet-stream");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_uid_is_refused_and_the_owner_still_gets_the_document() {
    // Let uid 65534 reach the socket: traverse the directory, write the socket file.
    let dir = SharedDir::new();
    let agent = start_ready(
        AgentConfig {
            socket_mode: 0o666,
            ..config(path_socket(dir.path()))
        },
        DOC,
    );
    for target in ["/v1/secret", "/v1/status", "/v1/secret?format=dotenv", "/x"] {
        let (code, body) = curl(&agent.socket, true, target).await;
        assert_eq!(code, 403, "{target}: {body}");
        assert!(!body.contains("s3cr3t"), "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("uid 65534"),
            "{body}"
        );
        assert!(body["hint"].as_str().unwrap().contains("--allow-uid 65534"));
    }
    let status = client::status(&agent.socket).await.unwrap();
    assert_eq!(
        (status.state, status.deliveries_left),
        (AgentState::Ready, 1),
        "refusals consume nothing"
    );
    let doc = client::fetch(&agent.socket, FetchFormat::Json)
        .await
        .unwrap();
    assert_eq!(doc.bytes(), DOC);
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_uid_and_gid_are_served() {
    let dir = SharedDir::new();
    for policy in [
        PeerPolicy {
            uids: vec![NOBODY],
            gids: vec![],
        },
        PeerPolicy {
            uids: vec![],
            gids: vec![NOBODY],
        },
    ] {
        let agent = start_ready(
            AgentConfig {
                socket_mode: 0o666,
                policy: policy.clone(),
                ..config(path_socket(dir.path()))
            },
            DOC,
        );
        let (code, body) = curl(&agent.socket, true, "/v1/secret").await;
        assert_eq!((code, body.as_bytes()), (200, DOC), "{policy:?}");
        agent.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_keeps_other_uids_out_before_any_http() {
    let dir = SharedDir::new();
    let agent = start_ready(config(path_socket(dir.path())), DOC);
    let mode = std::fs::metadata(socket_path(&agent.socket))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "default mode is 0600: {mode:o}");
    let (code, _) = curl(&agent.socket, true, "/v1/status").await;
    assert_eq!(code, 0, "uid 65534 cannot even connect to a 0600 socket");
    agent.stop().await;

    let agent = start_ready(
        AgentConfig {
            socket_mode: 0o660,
            ..config(path_socket(dir.path()))
        },
        DOC,
    );
    let meta = std::fs::metadata(socket_path(&agent.socket)).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    agent.stop().await;
    // No private bind directories are left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abstract_socket_serves_with_curl_and_client() {
    let socket = abstract_socket("abs");
    let agent = start_ready(config(socket.clone()), DOC);
    let (code, body) = curl(&socket, false, "/v1/status").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"state\":\"ready\""), "{body}");

    // A second agent cannot take the same name.
    let e = bind_error(config(socket.clone()));
    assert_eq!(e.exit_code(), exit::SOCKET);
    assert!(
        e.one_line().contains(&socket.to_string()),
        "{}",
        e.one_line()
    );

    let doc = client::fetch(&socket, FetchFormat::Json).await.unwrap();
    assert_eq!(doc.bytes(), DOC);
    let (code, _) = curl(&socket, false, "/v1/secret").await;
    assert_eq!(code, 410);
    agent.stop().await;
    assert!(matches!(
        client::status(&socket).await,
        Err(ClientError::Unreachable { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_is_replaced_live_agent_and_other_files_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let socket = path_socket(dir.path());
    let path = socket_path(&socket).to_path_buf();

    // A dead agent's leftover: the file stays, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    assert!(matches!(
        client::status(&socket).await,
        Err(ClientError::Unreachable { .. })
    ));
    let agent = start_ready(config(socket.clone()), DOC);
    assert!(client::status(&socket).await.unwrap().is_healthy());

    // A live agent on the path: a clear error, and the live one keeps working.
    let e = bind_error(config(socket.clone()));
    assert_eq!(e.exit_code(), exit::SOCKET);
    let line = e.one_line();
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert!(line.contains("live agent"), "{line}");
    assert!(!line.contains('\n'), "{line}");
    assert_eq!(
        client::fetch(&socket, FetchFormat::Json)
            .await
            .unwrap()
            .bytes(),
        DOC
    );
    agent.stop().await;
    assert!(!path.exists());

    // Not a socket: left alone.
    std::fs::write(&path, b"precious").unwrap();
    let e = bind_error(config(socket.clone()));
    assert_eq!(e.exit_code(), exit::SOCKET);
    assert!(e.one_line().contains("not a socket"), "{}", e.one_line());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_directory_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let e = bind_error(config(SocketSpec::Path(missing.join("agent.sock"))));
    assert_eq!(e.exit_code(), exit::SOCKET);
    let line = e.one_line();
    assert!(
        line.contains(&format!("directory {} does not exist", missing.display())),
        "{line}"
    );
    assert!(line.contains("hint:"), "{line}");
    assert!(!line.contains('\n'), "{line}");
    assert!(!missing.exists());

    // A file where the directory should be.
    std::fs::write(&missing, b"").unwrap();
    let e = bind_error(config(SocketSpec::Path(missing.join("agent.sock"))));
    assert_eq!(e.exit_code(), exit::SOCKET);
    assert!(e.one_line().contains("not a directory"), "{}", e.one_line());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let e = bind_error(AgentConfig {
        max_deliveries: 0,
        ..config(path_socket(dir.path()))
    });
    assert_eq!(e.exit_code(), exit::INPUT);
    let e = bind_error(AgentConfig {
        socket_mode: 0o4777,
        ..config(path_socket(dir.path()))
    });
    assert_eq!(e.exit_code(), exit::INPUT);
    assert!(!dir.path().join("agent.sock").exists());
    let long = SocketSpec::Path(dir.path().join("x".repeat(120)));
    assert_eq!(bind_error(config(long)).exit_code(), exit::SOCKET);

    assert_eq!(
        "@name".parse::<SocketSpec>().unwrap(),
        SocketSpec::Abstract("name".into())
    );
    assert_eq!(
        "/run/x.sock".parse::<SocketSpec>().unwrap(),
        SocketSpec::Path(PathBuf::from("/run/x.sock"))
    );
    for bad in ["@", ""] {
        let e = bad.parse::<SocketSpec>().unwrap_err();
        assert!(!e.hint().is_empty(), "{bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_dropped_without_serving_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = path_socket(dir.path());
    let agent = Agent::bind(config(socket.clone())).unwrap();
    assert!(socket_path(&socket).exists());
    drop(agent);
    assert!(!socket_path(&socket).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_client_needs_no_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_ready(config(path_socket(dir.path())), DOC);
    let socket = agent.socket.clone();
    let (status, doc, again) = tokio::task::spawn_blocking(move || {
        (
            client::status_blocking(&socket),
            client::fetch_blocking(&socket, FetchFormat::Json),
            client::fetch_blocking(&socket, FetchFormat::Json),
        )
    })
    .await
    .unwrap();
    assert!(status.unwrap().is_healthy());
    assert_eq!(doc.unwrap().bytes(), DOC);
    assert!(matches!(again, Err(ClientError::Gone { .. })));
    let missing = SocketSpec::Path(dir.path().join("nothing.sock"));
    let e = tokio::task::spawn_blocking(move || {
        client::fetch_blocking(&missing, FetchFormat::Json).unwrap_err()
    })
    .await
    .unwrap();
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e}");
    agent.stop().await;
}

/// Values a shell would love to misread.
fn nasty_document() -> (Vec<u8>, Vec<(&'static str, String)>) {
    let controls: String = (1u8..32).map(char::from).collect();
    let expected: Vec<(&str, String)> = vec![
        ("QUOTE", "it's".into()),
        ("QUOTES", "'''".into()),
        ("DOUBLE", "say \"hi\"".into()),
        ("SUBST", "$(touch PWNED) ${HOME} $HOME".into()),
        ("BACKTICK", "`touch PWNED`".into()),
        ("BACKSLASH", "a\\b\\'c\\".into()),
        ("NEWLINES", "line1\nline2\r\n\n".into()),
        ("CONTROLS", controls),
        ("UNICODE", "mot de passe: é ü ß 密码 🔑".into()),
        ("EMPTY", String::new()),
        ("DASH", "-n -e --".into()),
        ("EQUALS", "a=b=c; echo x && false || true".into()),
        ("NUMBER", "42".into()),
        ("FLOAT", "-1.5e10".into()),
        ("BOOL", "true".into()),
        ("NULL", "null".into()),
        ("OBJECT", r#"{"k":"it's","n":[1,2]}"#.into()),
    ];
    // Written by hand so that non-string values keep their exact JSON text.
    let members: Vec<String> = expected
        .iter()
        .map(|(key, value)| match *key {
            "NUMBER" | "FLOAT" | "BOOL" | "NULL" | "OBJECT" => format!("\"{key}\": {value}"),
            _ => format!("\"{key}\": {}", serde_json::to_string(value).unwrap()),
        })
        .collect();
    let doc = format!("{{\n  {}\n}}", members.join(",\n  "));
    serde_json::from_str::<serde_json::Value>(&doc).expect("valid JSON");
    (doc.into_bytes(), expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotenv_sourced_by_bash_gives_back_every_value_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (doc, expected) = nasty_document();
    let agent = start_ready(config(path_socket(dir.path())), &doc);
    let lines = client::fetch(&agent.socket, FetchFormat::Dotenv)
        .await
        .unwrap();
    assert_eq!(lines.content_type(), "text/plain; charset=utf-8");
    let file = work.path().join("secrets.env");
    std::fs::write(&file, lines.bytes()).unwrap();

    // `set -a` exports; `env -0` shows exactly what a child process receives.
    let out = Cmd::new(tools::require("bash", "apt-get install -y bash"))
        .args([
            "--noprofile",
            "--norc",
            "-c",
            "set -a; . \"$1\"; exec env -0",
            "bash",
        ])
        .arg(&file)
        .current_dir(work.path())
        .home("/nonexistent")
        .run_async()
        .await;
    assert!(out.success(), "{}", out.stderr);
    let env: HashMap<&[u8], &[u8]> = out
        .bytes
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let eq = entry.iter().position(|&b| b == b'=')?;
            Some((&entry[..eq], &entry[eq + 1..]))
        })
        .collect();
    for (key, value) in &expected {
        let got = env
            .get(key.as_bytes())
            .unwrap_or_else(|| panic!("{key} not exported"));
        assert_eq!(
            *got,
            value.as_bytes(),
            "{key}: {:?}",
            String::from_utf8_lossy(got)
        );
    }
    assert!(
        !work.path().join("PWNED").exists(),
        "sourcing ran a command"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotenv_with_an_invalid_key_is_refused_without_consuming() {
    let dir = tempfile::tempdir().unwrap();
    let doc = br#"{"GOOD":"1","bad-key":"2"}"#;
    let agent = start_ready(config(path_socket(dir.path())), doc);
    match client::fetch(&agent.socket, FetchFormat::Dotenv).await {
        Err(e @ ClientError::Http { status: 422, .. }) => {
            assert!(e.to_string().contains("bad-key"), "{e}");
            assert_eq!(e.exit_code(), exit::INPUT);
        }
        other => panic!("expected 422, got {other:?}"),
    }
    let status = client::status(&agent.socket).await.unwrap();
    assert_eq!(
        (status.state, status.deliveries_left),
        (AgentState::Ready, 1)
    );
    let got = client::fetch(&agent.socket, FetchFormat::Json)
        .await
        .unwrap();
    assert_eq!(got.bytes(), doc);
    assert!(matches!(
        got.key("missing"),
        Err(secret_zero::client::FormatError::MissingKey(_))
    ));
    agent.stop().await;
}

/// Captures every log line of this test binary (set once, globally: the agent logs from
/// runtime worker threads).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_lines_name_the_peer_and_never_the_plaintext() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let dir = SharedDir::new();
    let sentinel = "audit-plaintext-sentinel-7f3a";
    let doc = format!(r#"{{"TOKEN":"{sentinel}"}}"#);
    let agent = start(AgentConfig {
        socket_mode: 0o666,
        ..config(path_socket(dir.path()))
    });
    agent.handle.set_key_version(Some(7));
    agent.handle.ready(Plaintext::new(doc.into_bytes()), None);
    let (code, _) = curl(&agent.socket, true, "/v1/secret").await;
    assert_eq!(code, 403);
    let lines = client::fetch(&agent.socket, FetchFormat::Dotenv)
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(lines.bytes()).contains(sentinel),
        "the delivery itself carries the value"
    );
    drop(lines);
    let _ = client::fetch(&agent.socket, FetchFormat::Json).await;
    agent.stop().await;

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let mine = |outcome: &str| {
        log.lines()
            .filter(|l| {
                l.contains(&format!("outcome=\"{outcome}\""))
                    || l.contains(&format!("outcome={outcome}"))
            })
            .filter(|l| l.contains("key_version=7"))
            .count()
    };
    assert!(!log.contains(sentinel), "plaintext in the log:\n{log}");
    let pid = std::process::id();
    assert!(
        log.lines().any(|l| l.contains("delivered")
            && l.contains(&format!("peer_pid={pid}"))
            && l.contains("peer_uid=0")
            && l.contains("peer_gid=0")
            && l.contains("key_version=7")),
        "{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("refused")
            && l.contains("peer_uid=65534")
            && l.contains("peer_gid=65534")
            && l.contains("peer_pid=")),
        "{log}"
    );
    assert_eq!(mine("delivered"), 1, "{log}");
    assert_eq!(mine("refused"), 1, "{log}");
    assert_eq!(mine("gone"), 1, "{log}");
}

/// Connect to a path socket and send `bytes` (possibly nothing).
async fn connect_and_send(socket: &SocketSpec, bytes: &[u8]) -> tokio::net::UnixStream {
    let mut stream = tokio::net::UnixStream::connect(socket_path(socket))
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Read until the agent closes (or `within` passes: then `None`).
async fn read_until_closed(
    stream: &mut tokio::net::UnixStream,
    within: Duration,
) -> Option<Vec<u8>> {
    let mut answer = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(answer),
        Err(_) => None,
    }
}

fn status_of(answer: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(answer);
    text.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"))
}

/// `?key=NAME` is answered by the agent: a key the document lacks is a 422 naming it
/// (never a value) and consumes nothing, so the next, correct request still gets its
/// delivery; the value comes back as text (a string) or JSON (anything else).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_query_answers_one_value_and_a_missing_key_consumes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_ready(config(path_socket(dir.path())), DOC);

    let typo = get(&agent.socket, "/v1/secret?key=db_pasword").await;
    assert_eq!(typo.status, 422);
    let body = typo.json();
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("\"db_pasword\""), "{body}");
    assert!(
        !String::from_utf8_lossy(&typo.body).contains("s3cr3t"),
        "{body}"
    );
    assert!(body["hint"].is_string(), "{body}");
    match client::fetch_key(&agent.socket, "DB_PASSWORD").await {
        Err(e @ ClientError::Http { status: 422, .. }) => {
            assert_eq!(e.exit_code(), exit::INPUT);
            assert!(e.to_string().contains("DB_PASSWORD"), "{e}");
        }
        other => panic!("expected 422, got {other:?}"),
    }
    for bad in [
        "/v1/secret?key=port&format=dotenv",
        "/v1/secret?key=a&key=b",
    ] {
        assert_eq!(get(&agent.socket, bad).await.status, 400, "{bad}");
    }
    let status = client::status(&agent.socket).await.unwrap();
    assert_eq!(
        (status.state, status.deliveries_left),
        (AgentState::Ready, 1),
        "a missing key consumes nothing"
    );

    let value = client::fetch_key(&agent.socket, "db_password")
        .await
        .unwrap();
    assert_eq!(value.bytes(), b"s3cr3t-agent-sentinel");
    assert_eq!(value.content_type(), "text/plain; charset=utf-8");
    assert!(matches!(
        client::fetch_key(&agent.socket, "port").await,
        Err(ClientError::Gone { .. })
    ));
    agent.stop().await;

    // A value that is not a string is its JSON text; odd key names travel intact.
    let doc = br#"{"port":5432,"a b+c/d?e&f=g":{"x":[1]}}"#;
    let agent = start_counting_with(dir.path(), 2, doc);
    let value = get(&agent.socket, "/v1/secret?key=port").await;
    assert_eq!((value.status, &value.body[..]), (200, &b"5432"[..]));
    assert_eq!(value.header("content-type"), "application/json");
    assert_eq!(
        value.header("x-secret-zero-answer"),
        "key",
        "picked by the agent"
    );
    let value = client::fetch_key(&agent.socket, "a b+c/d?e&f=g")
        .await
        .unwrap();
    assert_eq!(value.bytes(), br#"{"x":[1]}"#);
    agent.stop().await;
}

/// Start with `max_deliveries`, ready with `doc` and a source that gives `doc` again.
fn start_counting_with(dir: &Path, max_deliveries: u32, doc: &'static [u8]) -> Running {
    struct Again(&'static [u8]);
    impl Source for Again {
        fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Plaintext, Fault>> + Send + '_>> {
            Box::pin(async move { Ok(Plaintext::new(self.0.to_vec())) })
        }
    }
    let agent = start(AgentConfig {
        max_deliveries,
        ..config(path_socket(dir))
    });
    agent
        .handle
        .ready(Plaintext::new(doc.to_vec()), Some(Arc::new(Again(doc))));
    agent
}

/// Each limit on what a request may be answers its own status, and none consumes:
/// a head over 8 KiB or with more than 32 headers is 431 (hyper's answer), a body is
/// 413, and a head that does not arrive within the header-read timeout is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_bodies_and_slow_heads_are_refused_and_consume_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = start_ready(
        AgentConfig {
            limits: Limits {
                header_read_timeout: Duration::from_secs(1),
                ..Limits::default()
            },
            ..config(path_socket(dir.path()))
        },
        DOC,
    );
    let big = format!(
        "GET /v1/secret HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    let many: String = (0..40).map(|n| format!("X-{n}: 1\r\n")).collect();
    let many = format!("GET /v1/secret HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    for (what, request, want) in [
        ("a 9 KiB head", big.as_str(), 431),
        ("40 headers", many.as_str(), 431),
        (
            "a body",
            "GET /v1/secret HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            413,
        ),
        (
            "a chunked body",
            "GET /v1/secret HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            413,
        ),
    ] {
        let mut stream = connect_and_send(&agent.socket, request.as_bytes()).await;
        let answer = read_until_closed(&mut stream, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(status_of(&answer), want, "{what}");
    }

    // Silent, and slow (a byte at a time, the head never complete): both closed once
    // the 1 s timeout passes (10 s is the generous bound checked here).
    let started = std::time::Instant::now();
    let mut silent = connect_and_send(&agent.socket, b"").await;
    let mut slow = connect_and_send(&agent.socket, b"G").await;
    let dripping = tokio::spawn(async move {
        for byte in b"ET /v1/status HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*byte]).await.is_err() {
                return slow;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });
    let closed = read_until_closed(&mut silent, Duration::from_secs(10)).await;
    assert_eq!(
        closed.as_deref(),
        Some(&b""[..]),
        "a silent client is closed, with no answer"
    );
    let mut slow = dripping.await.unwrap();
    assert!(
        read_until_closed(&mut slow, Duration::from_secs(10))
            .await
            .is_some()
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    let status = client::status(&agent.socket).await.unwrap();
    assert_eq!(
        (status.state, status.deliveries_left),
        (AgentState::Ready, 1)
    );
    assert_eq!(
        client::fetch_json(&agent.socket).await.unwrap().bytes(),
        DOC
    );
    agent.stop().await;
}

/// At the connection cap, a newcomer closes the oldest connection that has not sent
/// its request: silent clients cannot keep the application out. When every open
/// connection is answering a request, the newcomer gets a 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_silent_clients_make_room_and_busy_ones_get_a_503() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, held) = tokio::sync::watch::channel(false);
    let agent = start(AgentConfig {
        max_deliveries: 4,
        limits: Limits {
            max_connections: 4,
            ..Limits::default()
        },
        ..config(path_socket(dir.path()))
    });
    agent.handle.deliver_after(held);
    agent.handle.ready(
        Plaintext::new(DOC.to_vec()),
        Some(Arc::new(Counting(Arc::new(AtomicU32::new(0))))),
    );

    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(connect_and_send(&agent.socket, b"").await);
    }
    // Four requests wait at the gate: every place is busy now.
    let mut waiting = Vec::new();
    for _ in 0..4 {
        let socket = agent.socket.clone();
        waiting.push(tokio::spawn(
            async move { client::fetch_json(&socket).await },
        ));
    }
    Poll::within(Duration::from_secs(10))
        .every(Duration::from_millis(20))
        .eventually_async(
            || {
                let left = agent.handle.status().deliveries_left;
                async move { (left == 0).then_some(()) }
            },
            || "four requests did not take their slots".into(),
        )
        .await;
    match client::status(&agent.socket).await {
        Err(ClientError::NotReady { message, .. }) => {
            assert!(message.contains("too many connections"), "{message}")
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    // Every silent connection was closed to make room, with no answer.
    for stream in &mut silent {
        let closed = read_until_closed(stream, Duration::from_secs(10)).await;
        assert_eq!(closed.as_deref(), Some(&b""[..]));
    }
    gate.send(true).unwrap();
    for request in waiting {
        request
            .await
            .unwrap()
            .expect("each waiting request is delivered");
    }
    agent.stop().await;
}

/// A delivery counts once the kernel has taken a byte of its body. A client that
/// leaves before the answer is written consumes nothing (the start-up copy waits for
/// the next request); one that leaves after reading part of it has had its delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_before_the_answer_consumes_nothing_and_after_it_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, held) = tokio::sync::watch::channel(false);
    let agent = start(config(path_socket(dir.path())));
    agent.handle.deliver_after(held);
    agent.handle.ready(Plaintext::new(DOC.to_vec()), None);

    let request = b"GET /v1/secret HTTP/1.1\r\nHost: x\r\n\r\n";
    let leaving = connect_and_send(&agent.socket, request).await;
    Poll::within(Duration::from_secs(10))
        .every(Duration::from_millis(20))
        .eventually_async(
            || {
                let left = agent.handle.status().deliveries_left;
                async move { (left == 0).then_some(()) }
            },
            || "the request did not take its slot".into(),
        )
        .await;
    drop(leaving);
    gate.send(true).unwrap();
    Poll::within(Duration::from_secs(10))
        .every(Duration::from_millis(20))
        .eventually_async(
            || {
                let left = agent.handle.status().deliveries_left;
                async move { (left == 1).then_some(()) }
            },
            || "the slot of a client that left was not given back".into(),
        )
        .await;

    // This one reads the first byte of the answer, then leaves.
    let mut reading = connect_and_send(&agent.socket, request).await;
    let mut first = [0u8; 1];
    reading.read_exact(&mut first).await.unwrap();
    drop(reading);
    let gone = get(&agent.socket, "/v1/secret").await;
    assert_eq!(
        gone.status, 410,
        "a delivery whose bytes reached the client counts"
    );
    assert!(
        gone.json()["error"]
            .as_str()
            .unwrap()
            .contains("1 of 1 made"),
        "{}",
        gone.json()
    );
    agent.stop().await;
}

/// Refused peers cost nothing that lasts: 200 connections of another uid that never
/// send a byte are each answered 403 the moment they are accepted (their requests are
/// never read) and closed by the agent within its 1 s linger (5 s is the bound checked
/// here); the delivery is untouched and the owner is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_peers_are_answered_at_accept_and_closed_without_being_read() {
    require_root("the refused-peer test runs python3 as uid 65534");
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: install it with `apt-get install -y python3`",
        python.display()
    );
    let dir = SharedDir::new();
    let agent = start_ready(
        AgentConfig {
            socket_mode: 0o666,
            ..config(path_socket(dir.path()))
        },
        DOC,
    );
    let script = r#"
import socket, sys, time
conns = []
for _ in range(200):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    conns.append(s)
start = time.monotonic()
answered = 0
for s in conns:
    s.settimeout(max(0.1, 5 - (time.monotonic() - start)))
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        print("a connection still open after 5 s")
        sys.exit(1)
    if data.startswith(b"HTTP/1.1 403 ") and b"uid 65534" in data:
        answered += 1
print(answered)
"#;
    let run = Cmd::new(python)
        .arg("-c")
        .arg(script)
        .arg(socket_path(&agent.socket))
        .as_uid(NOBODY, &dir)
        .run_async()
        .await;
    assert!(
        run.success(),
        "{}{}",
        String::from_utf8_lossy(&run.bytes),
        run.stderr
    );
    assert_eq!(String::from_utf8_lossy(&run.bytes).trim(), "200");
    let status = client::status(&agent.socket).await.unwrap();
    assert_eq!(
        (status.state, status.deliveries_left),
        (AgentState::Ready, 1)
    );
    assert_eq!(
        client::fetch_json(&agent.socket).await.unwrap().bytes(),
        DOC
    );
    agent.stop().await;
}
