//! Every example in `examples/` runs against a live agent (`serve --plaintext-file`)
//! with its language's own toolchain: the first run gets the document and prints its
//! key names (never a value), the second gets 410 and says so, a missing agent is
//! "unreachable", and a peer of another uid is refused (403). Each outcome has its own
//! exit code, the same as `secret-zero get`: 10, 11, 12.
//!
//! A missing toolchain fails the test with the command that installs it.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_secret-zero");
/// A value that must never appear in an example's output unless asked for.
const SENTINEL: &str = "s3ntinel-Value-9f2c";
const DOCUMENT: &str =
    r#"{"API_KEY": "s3ntinel-Value-9f2c", "DB_PASSWORD": "p\"w'x $HOME", "port": 5432}"#;
const KEYS: &str = "API_KEY, DB_PASSWORD, port";
/// The uid/gid the "other peer" runs as (nobody).
const OTHER: u32 = 65534;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// A running `serve --plaintext-file`; killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Agent {
    fn start(extra: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        // Readable by the other-uid peer in the 403 test.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let doc = dir.path().join("doc.json");
        std::fs::write(&doc, DOCUMENT).unwrap();
        let socket = dir.path().join("agent.sock");
        let log = dir.path().join("agent.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--plaintext-file")
            .arg(&doc)
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("run secret-zero serve");
        let mut agent = Agent {
            child,
            socket,
            log,
            dir,
        };
        agent.wait_ready();
        agent
    }

    fn wait_ready(&mut self) {
        secret_zero_testbed::process::wait_ready(
            &mut self.child,
            Path::new(BIN),
            &self.socket,
            || std::fs::read_to_string(&self.log).unwrap_or_default(),
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to run one example: a program and its arguments, run in `dir`.
struct Example {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Example {
    fn run(&self, socket: &Path, extra: &[&str], as_other: bool) -> Output {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .args(extra)
            .current_dir(&self.dir)
            .env("SECRET_ZERO_SOCKET", socket)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        if as_other {
            // As root, std also drops the supplementary groups.
            command.uid(OTHER).gid(OTHER);
        }
        let started = Instant::now();
        let out = command.output().unwrap_or_else(|e| {
            panic!("{}: cannot run {}: {e}", self.name, self.program.display())
        });
        eprintln!(
            "{}: exit {:?} in {:?}",
            self.name,
            out.status.code(),
            started.elapsed()
        );
        out
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// First run: the key names and exit 0; second run: 410 reported, exit 11; no agent:
/// exit 12. The secret value is printed only when asked for by name.
fn check(example: &Example) {
    let agent = Agent::start(&[]);
    let first = example.run(&agent.socket, &[], false);
    let (stdout, stderr) = text(&first);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}: first run failed\nstdout: {stdout}\nstderr: {stderr}\nagent: {}",
        example.name,
        agent.log()
    );
    assert!(
        stdout.contains(KEYS) || stdout.contains(&KEYS.replace(", ", " ")),
        "{}: the key names are not listed: {stdout}",
        example.name
    );
    assert!(
        !stdout.contains(SENTINEL) && !stderr.contains(SENTINEL),
        "{}: a secret value was printed: {stdout}{stderr}",
        example.name
    );

    let second = example.run(&agent.socket, &[], false);
    let (stdout, stderr) = text(&second);
    assert_eq!(
        second.status.code(),
        Some(11),
        "{}: the second run is not the 410 path\nstdout: {stdout}\nstderr: {stderr}",
        example.name
    );
    assert!(
        stderr.contains("410") || stderr.contains("no delivery left"),
        "{}: the 410 is not reported: {stderr}",
        example.name
    );
    assert!(!stdout.contains(SENTINEL), "{}: {stdout}", example.name);

    let absent = agent.dir.path().join("nobody-here.sock");
    let third = example.run(&absent, &[], false);
    let (_, stderr) = text(&third);
    assert_eq!(
        third.status.code(),
        Some(12),
        "{}: a missing agent is not 'unreachable': {stderr}",
        example.name
    );
    assert!(
        stderr.contains("reach"),
        "{}: unclear message for a missing agent: {stderr}",
        example.name
    );
}

/// Asked for one key by name, the example prints that value.
fn check_value_on_request(example: &Example) {
    let agent = Agent::start(&[]);
    let out = example.run(&agent.socket, &["API_KEY"], false);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{}: {stderr}", example.name);
    assert!(
        stdout.contains(&format!("API_KEY={SENTINEL}")),
        "{}: the value asked for is not printed: {stdout}",
        example.name
    );
}

/// A peer of another uid is refused with exit 10 and a clear message, and its attempt
/// consumes nothing: the agent's own uid still gets the document afterwards.
fn check_refused(example: &Example) {
    assert!(
        rustix::process::geteuid().is_root(),
        "the 403 check runs the example as uid {OTHER}: run the tests as root (as CI does)"
    );
    let agent = Agent::start(&["--socket-mode", "0666"]);
    let out = example.run(&agent.socket, &[], true);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(10),
        "{}: another uid is not refused\nstdout: {stdout}\nstderr: {stderr}",
        example.name
    );
    assert!(
        stderr.contains("403") || stderr.contains("refused"),
        "{}: the refusal is not reported: {stderr}",
        example.name
    );
    let mine = example.run(&agent.socket, &[], false);
    assert_eq!(
        mine.status.code(),
        Some(0),
        "{}: {}",
        example.name,
        text(&mine).1
    );
}

fn tool(name: &str, install: &str) -> PathBuf {
    secret_zero_testbed::tools::which(name).unwrap_or_else(|| {
        panic!("{name} not found on PATH: install it with `{install}` (scripts/test.sh does)")
    })
}

fn python() -> Example {
    Example {
        name: "python",
        program: tool("python3", "apt-get install -y python3"),
        args: vec!["read_secret.py".into()],
        dir: examples_dir().join("python"),
        env: vec![],
    }
}

fn node() -> Example {
    Example {
        name: "node",
        program: tool("node", "apt-get install -y nodejs"),
        args: vec!["read_secret.js".into()],
        dir: examples_dir().join("node"),
        env: vec![],
    }
}

/// The Go example, built once (standard library only: no module download, so the
/// proxy is switched off to prove it).
fn go() -> Example {
    static BUILT: OnceLock<(PathBuf, tempfile::TempDir)> = OnceLock::new();
    let (binary, _) = BUILT.get_or_init(|| {
        let go = tool("go", "apt-get install -y golang-go");
        let out_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(out_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let binary = out_dir.path().join("read-secret");
        let started = Instant::now();
        let out = Command::new(go)
            .args(["build", "-o"])
            .arg(&binary)
            .arg(".")
            .current_dir(examples_dir().join("go"))
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "go build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("go build: {:?}", started.elapsed());
        (binary, out_dir)
    });
    Example {
        name: "go",
        program: binary.clone(),
        args: vec![],
        dir: examples_dir().join("go"),
        env: vec![],
    }
}

/// The Java example, compiled once with `javac` (`UnixDomainSocketAddress` needs JDK
/// 16+) and run with `java -cp`: the source launcher (`java ReadSecret.java`, what the
/// README shows) works too but compiles at every run, seconds each.
fn java() -> Example {
    static BUILT: OnceLock<(PathBuf, tempfile::TempDir)> = OnceLock::new();
    let install = "apt-get install -y default-jdk-headless";
    let java = tool("java", install);
    let (java, classes) = BUILT.get_or_init(|| {
        let version = Command::new(&java).arg("-version").output().unwrap();
        let version = String::from_utf8_lossy(&version.stderr).into_owned();
        let major: u32 = version
            .split('"')
            .nth(1)
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            major >= 16,
            "java {major} is too old for UnixDomainSocketAddress: install JDK 16+ with `{install}`\n{version}"
        );
        let javac = tool("javac", install);
        let classes = tempfile::tempdir().unwrap();
        std::fs::set_permissions(classes.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let started = Instant::now();
        let out = Command::new(javac)
            .arg("-d")
            .arg(classes.path())
            .arg("ReadSecret.java")
            .current_dir(examples_dir().join("java"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "javac failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("javac: {:?}", started.elapsed());
        (java, classes)
    });
    Example {
        name: "java",
        program: java.clone(),
        args: vec![
            "-cp".into(),
            classes.path().display().to_string(),
            "ReadSecret".into(),
        ],
        dir: examples_dir().join("java"),
        env: vec![],
    }
}

fn shell(way: &str) -> Example {
    let path = format!(
        "{}:{}",
        Path::new(BIN).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut args = vec!["read_secret.sh".to_string()];
    if way == "curl" {
        tool("curl", "apt-get install -y curl");
        args.push("curl".into());
    }
    Example {
        name: if way == "curl" {
            "shell (curl)"
        } else {
            "shell (secret-zero get)"
        },
        program: tool("sh", "apt-get install -y dash"),
        args,
        dir: examples_dir().join("shell"),
        env: vec![("PATH".into(), path)],
    }
}

/// The cargo example, built by `cargo test` next to this test's executable.
fn rust() -> Example {
    let exe = std::env::current_exe().unwrap();
    let examples = exe.parent().unwrap().parent().unwrap().join("examples");
    let program = examples.join("read_secret");
    assert!(
        program.is_file(),
        "{} is missing: `cargo test` builds the examples; run `cargo build --examples`",
        program.display()
    );
    Example {
        name: "rust",
        program,
        args: vec![],
        dir: examples_dir(),
        env: vec![],
    }
}

#[test]
fn python_reads_once_then_reports_410() {
    check(&python());
    check_value_on_request(&python());
}

#[test]
fn node_reads_once_then_reports_410() {
    check(&node());
    check_value_on_request(&node());
    check_refused(&node());
}

#[test]
fn go_reads_once_then_reports_410() {
    check(&go());
    check_value_on_request(&go());
    check_refused(&go());
}

#[test]
fn java_reads_once_then_reports_410() {
    check(&java());
    check_value_on_request(&java());
    check_refused(&java());
}

#[test]
fn shell_with_secret_zero_get_reads_once_then_reports_410() {
    check(&shell("get"));
}

#[test]
fn shell_with_curl_reads_once_then_reports_410() {
    check(&shell("curl"));
}

#[test]
fn the_rust_client_example_reads_once_then_reports_410() {
    check(&rust());
    check_value_on_request(&rust());
    check_refused(&rust());
}

#[test]
fn the_rust_client_types_each_refusal() {
    use secret_zero::client::{self, ClientError, SocketSpec};
    let agent = Agent::start(&[]);
    let socket = SocketSpec::Path(agent.socket.clone());
    let document = client::fetch_json_blocking(&socket).unwrap();
    assert_eq!(document.keys().unwrap(), ["API_KEY", "DB_PASSWORD", "port"]);
    assert_eq!(
        document.key("API_KEY").unwrap().expose(),
        SENTINEL.as_bytes()
    );
    #[derive(serde::Deserialize)]
    struct Config {
        port: u16,
    }
    assert_eq!(document.json::<Config>().unwrap().port, 5432);
    assert!(!format!("{document:?}").contains(SENTINEL));
    #[derive(Debug, serde::Deserialize)]
    struct Wrong {
        #[serde(rename = "API_KEY")]
        _api_key: u32,
    }
    let wrong = document.json::<Wrong>().unwrap_err();
    assert!(matches!(wrong, ClientError::BadAnswer { .. }), "{wrong:?}");
    assert!(!wrong.to_string().contains(SENTINEL), "{wrong}");
    drop(document);

    let gone = client::fetch_json_blocking(&socket).unwrap_err();
    assert!(matches!(gone, ClientError::Gone { .. }), "{gone:?}");
    assert_eq!(gone.exit_code(), 11);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let gone = runtime.block_on(client::fetch_json(&socket)).unwrap_err();
    assert!(matches!(gone, ClientError::Gone { .. }), "{gone:?}");

    let absent = SocketSpec::Path(agent.dir.path().join("absent.sock"));
    let unreachable = client::fetch_json_blocking(&absent).unwrap_err();
    assert!(
        matches!(unreachable, ClientError::Unreachable { .. }),
        "{unreachable:?}"
    );
    assert_eq!(unreachable.exit_code(), 12);
}
