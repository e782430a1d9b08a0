//! Every example in `examples/` runs against a live agent (`serve --plaintext-file`)
//! with its language's own toolchain: the first run gets the document and prints its
//! key names (never a value), the second gets 410 and says so, a missing agent is
//! "unreachable", and a peer of another uid is refused (403). Each outcome has its own
//! exit code, the same as `secret-zero get`: 10, 11, 12.
//!
//! A missing toolchain fails the test with the command that installs it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use secret_zero_testbed::agent::{self, Agent};
use secret_zero_testbed::cmd::{Cmd, Run};
use secret_zero_testbed::shared::{NOBODY, SharedDir, require_root};
use secret_zero_testbed::{bin, tools};

/// A value that must never appear in an example's output unless asked for.
const SENTINEL: &str = "s3ntinel-Value-9f2c";
const DOCUMENT: &str =
    r#"{"API_KEY": "s3ntinel-Value-9f2c", "DB_PASSWORD": "p\"w'x $HOME", "port": 5432}"#;
const KEYS: &str = "API_KEY, DB_PASSWORD, port";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// A running `serve --plaintext-file`, its document and socket in a directory the
/// other-uid peer of the 403 checks can reach.
struct Served {
    agent: Agent,
    dir: SharedDir,
}

impl Served {
    fn start(extra: &[&str]) -> Served {
        let dir = SharedDir::new();
        let doc = dir.write("doc.json", DOCUMENT);
        let socket = dir.join("agent.sock").display().to_string();
        let mut cmd = agent::serve(&socket);
        cmd.arg("--plaintext-file").arg(doc).args(extra);
        let mut agent = Agent::start(&cmd, socket);
        agent.wait_ready();
        Served { agent, dir }
    }

    fn socket(&self) -> &Path {
        Path::new(self.agent.socket())
    }
}

/// How to run one example: its program and arguments, run inside `dir`, a copy of its
/// folder that any uid may read (so the 403 check can run it as another uid wherever
/// the checkout is).
struct Example {
    name: &'static str,
    cmd: Cmd,
    dir: PathBuf,
    stage: &'static SharedDir,
}

impl Example {
    /// `program ARGS...` inside `stage`'s copy of `examples/FOLDER`.
    fn new(name: &'static str, stage: &'static Staged, program: &Path, args: &[&str]) -> Example {
        let mut cmd = Cmd::new(program);
        cmd.args(args).current_dir(&stage.dir);
        Example {
            name,
            cmd,
            dir: stage.dir.clone(),
            stage: &stage.shared,
        }
    }

    fn run(&self, socket: &Path, extra: &[&str], as_other: bool) -> Run {
        let mut cmd = self.cmd.clone();
        cmd.args(extra).env("SECRET_ZERO_SOCKET", socket);
        if as_other {
            cmd.as_uid(NOBODY, self.stage).current_dir(&self.dir);
        }
        let started = Instant::now();
        let run = cmd.run();
        eprintln!(
            "{}: exit {} in {:?}",
            self.name,
            run.code,
            started.elapsed()
        );
        run
    }
}

/// An example's folder copied once into a [`SharedDir`], and what was built there.
struct Staged {
    shared: SharedDir,
    /// The copy of `examples/FOLDER`.
    dir: PathBuf,
}

/// `examples/FOLDER` copied into `cell`'s directory on first use, then `build` run
/// with the shared directory and the copy.
fn staged(
    cell: &'static OnceLock<Staged>,
    folder: &str,
    build: impl FnOnce(&SharedDir, &Path),
) -> &'static Staged {
    cell.get_or_init(|| {
        let shared = SharedDir::new();
        let dir = shared.copy_dir(&examples_dir().join(folder), folder);
        build(&shared, &dir);
        Staged { shared, dir }
    })
}

/// First run: the key names and exit 0; second run: 410 reported, exit 11; no agent:
/// exit 12. The secret value is printed only when asked for by name.
fn check(example: &Example) {
    let served = Served::start(&[]);
    let first = example.run(served.socket(), &[], false);
    let (stdout, stderr) = (&first.stdout, &first.stderr);
    assert_eq!(
        first.code,
        0,
        "{}: first run failed\nstdout: {stdout}\nstderr: {stderr}\nagent: {}",
        example.name,
        served.agent.log()
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

    let second = example.run(served.socket(), &[], false);
    let (stdout, stderr) = (&second.stdout, &second.stderr);
    assert_eq!(
        second.code, 11,
        "{}: the second run is not the 410 path\nstdout: {stdout}\nstderr: {stderr}",
        example.name
    );
    assert!(
        stderr.contains("410") || stderr.contains("no delivery left"),
        "{}: the 410 is not reported: {stderr}",
        example.name
    );
    assert!(!stdout.contains(SENTINEL), "{}: {stdout}", example.name);

    let absent = served.dir.join("nobody-here.sock");
    let third = example.run(&absent, &[], false);
    let stderr = &third.stderr;
    assert_eq!(
        third.code, 12,
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
    let served = Served::start(&[]);
    let out = example.run(served.socket(), &["API_KEY"], false);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(out.code, 0, "{}: {stderr}", example.name);
    assert!(
        stdout.contains(&format!("API_KEY={SENTINEL}")),
        "{}: the value asked for is not printed: {stdout}",
        example.name
    );
}

/// A peer of another uid is refused with exit 10 and a clear message, and its attempt
/// consumes nothing: the agent's own uid still gets the document afterwards.
fn check_refused(example: &Example) {
    require_root(&format!("the 403 check runs the example as uid {NOBODY}"));
    let served = Served::start(&["--socket-mode", "0666"]);
    let out = example.run(served.socket(), &[], true);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(
        out.code, 10,
        "{}: another uid is not refused\nstdout: {stdout}\nstderr: {stderr}",
        example.name
    );
    assert!(
        stderr.contains("403") || stderr.contains("refused"),
        "{}: the refusal is not reported: {stderr}",
        example.name
    );
    let mine = example.run(served.socket(), &[], false);
    assert_eq!(mine.code, 0, "{}: {}", example.name, mine.stderr);
}

fn python() -> Example {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    let python = tools::require("python3", "apt-get install -y python3");
    let stage = staged(&STAGED, "python", |_, _| {});
    Example::new("python", stage, &python, &["read_secret.py"])
}

fn node() -> Example {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    let node = tools::require("node", "apt-get install -y nodejs");
    let stage = staged(&STAGED, "node", |_, _| {});
    Example::new("node", stage, &node, &["read_secret.js"])
}

/// The Go example, built once (standard library only: no module download, so the
/// proxy is switched off to prove it).
fn go() -> Example {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    let stage = staged(&STAGED, "go", |_, dir| {
        let go = tools::require("go", "apt-get install -y golang-go");
        let started = Instant::now();
        let out = Cmd::new(go)
            .args(["build", "-o", "read-secret", "."])
            .current_dir(dir)
            // The toolchain's own caches, so the standard library is not rebuilt.
            .env_or_home("GOCACHE", ".cache/go-build")
            .env_or_home("GOPATH", "go")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .run();
        assert!(out.success(), "go build failed: {}", out.stderr);
        eprintln!("go build: {:?}", started.elapsed());
    });
    Example::new("go", stage, &stage.dir.join("read-secret"), &[])
}

/// The Java example, compiled once with `javac` (`UnixDomainSocketAddress` needs JDK
/// 16+) and run with `java -cp`: the source launcher (`java ReadSecret.java`, what the
/// README shows) works too but compiles at every run, seconds each.
fn java() -> Example {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    let install = "apt-get install -y default-jdk-headless";
    let java = tools::require("java", install);
    let stage = staged(&STAGED, "java", |shared, dir| {
        let version = Cmd::new(&java).arg("-version").run().stderr;
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
        let javac = tools::require("javac", install);
        let started = Instant::now();
        let out = Cmd::new(javac)
            .arg("-d")
            .arg(shared.subdir("classes"))
            .arg("ReadSecret.java")
            .current_dir(dir)
            .run();
        assert!(out.success(), "javac failed: {}", out.stderr);
        eprintln!("javac: {:?}", started.elapsed());
    });
    let classes = stage.shared.join("classes").display().to_string();
    Example::new("java", stage, &java, &["-cp", &classes, "ReadSecret"])
}

fn shell(way: &str) -> Example {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    let path = format!(
        "{}:{}",
        bin::secret_zero().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut args = vec!["read_secret.sh"];
    if way == "curl" {
        tools::require("curl", "apt-get install -y curl");
        args.push("curl");
    }
    let name = if way == "curl" {
        "shell (curl)"
    } else {
        "shell (secret-zero get)"
    };
    let sh = tools::require("sh", "apt-get install -y dash");
    let stage = staged(&STAGED, "shell", |_, _| {});
    let mut example = Example::new(name, stage, &sh, &args);
    example.cmd.env("PATH", path);
    example
}

/// The cargo example, built by `cargo test` next to this test's executable, copied
/// out of the target directory.
fn rust() -> Example {
    static STAGED: OnceLock<Staged> = OnceLock::new();
    let stage = STAGED.get_or_init(|| {
        let shared = SharedDir::new();
        let dir = shared.subdir("rust");
        shared.copy(&bin::example("read_secret"), "rust/read_secret");
        Staged { shared, dir }
    });
    Example::new("rust", stage, &stage.dir.join("read_secret"), &[])
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

/// The shell example exports nothing: a command it starts finds none of the values in
/// its environment (`env`, `/proc/self/environ`) and gets the one it names on stdin.
#[test]
fn the_shell_example_exports_nothing_and_hands_a_value_on_stdin() {
    let child = "v=$(cat); env; tr '\\0' '\\n' < /proc/self/environ; printf 'stdin=%s\\n' \"$v\"";
    for way in ["get", "curl"] {
        let example = shell(way);
        let served = Served::start(&[]);
        let out = example.run(
            served.socket(),
            &["API_KEY", "--", "sh", "-c", child],
            false,
        );
        let (stdout, stderr) = (&out.stdout, &out.stderr);
        assert_eq!(out.code, 0, "{way}: {stdout}{stderr}");
        let holding: Vec<&str> = stdout.lines().filter(|l| l.contains(SENTINEL)).collect();
        assert_eq!(
            holding,
            [format!("stdin={SENTINEL}")],
            "{way}: the value is somewhere else than on stdin:\n{stdout}"
        );
        for key in ["API_KEY=", "DB_PASSWORD=", "port="] {
            assert!(
                !stdout.lines().any(|l| l.starts_with(key)),
                "{way}: {key} exported:\n{stdout}"
            );
        }
        assert!(stdout.contains("SECRET_ZERO_SOCKET="), "{way}: {stdout}");
    }
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
    let served = Served::start(&[]);
    let socket = SocketSpec::Path(served.socket().to_path_buf());
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

    let absent = SocketSpec::Path(served.dir.join("absent.sock"));
    let unreachable = client::fetch_json_blocking(&absent).unwrap_err();
    assert!(
        matches!(unreachable, ClientError::Unreachable { .. }),
        "{unreachable:?}"
    );
    assert_eq!(unreachable.exit_code(), 12);
}
