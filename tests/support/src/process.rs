//! The `secret-zero` agent run as a process by a test: its output goes to a log file,
//! readiness is asked of `secret-zero probe`, and the process is killed on drop (its
//! log printed when the test failed).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `secret-zero serve`.
pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
    bin: PathBuf,
}

impl Agent {
    /// Run `bin` with `args`, its output in a log file under `dir`. Vault and
    /// in-cluster variables of the test's own environment are removed so only the
    /// flags count.
    pub fn spawn<S: AsRef<OsStr>>(bin: &Path, args: &[S], dir: &Path) -> Agent {
        let log = dir.join(format!("agent-{}.log", fastrand::u32(..)));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args(args)
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("VAULT_CACERT")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        Agent {
            child,
            log,
            bin: bin.to_path_buf(),
        }
    }

    /// Everything the agent printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until `probe` says ready; panics with the log if the agent exits first.
    pub fn wait_ready(&mut self, socket: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("agent exited with {status} before ready:\n{}", self.log());
            }
            let probe = Command::new(&self.bin)
                .args(["probe", "--socket", socket])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if probe.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("agent not ready after 20 s:\n{}", self.log());
    }

    /// Wait for the agent to exit; returns its exit code and log.
    pub fn wait_exit(&mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code().unwrap_or(-1), self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("agent still running after 30 s:\n{}", self.log());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- agent log ----\n{}", self.log());
        }
    }
}

/// Wait until `bin probe --socket SOCKET` says ready, for a `child` spawned by the test
/// itself (not through [`Agent::spawn`]); panics with `log()` if it exits first.
pub fn wait_ready(child: &mut Child, bin: &Path, socket: &Path, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("agent exited with {status} before ready:\n{}", log());
        }
        let probe = Command::new(bin)
            .arg("probe")
            .arg("--socket")
            .arg(socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if probe.success() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("agent not ready after 20 s:\n{}", log());
}

/// Wait for a `child` spawned by the test itself to exit; returns its exit code and
/// `log()` (as [`Agent::wait_exit`] does).
pub fn wait_exit(child: &mut Child, log: impl Fn() -> String) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code().unwrap_or(-1), log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("agent still running after 30 s:\n{}", log());
}
