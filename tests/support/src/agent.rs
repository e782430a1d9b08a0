//! The `secret-zero` agent run as a process: its output goes to a log file, readiness
//! is asked of `secret-zero probe`, and the process is killed on drop (its log printed
//! when the test failed).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cmd::{Cmd, Process, Run};
use crate::wait::Poll;

/// How long an agent may take to become ready, and to exit.
const READY: Poll = Poll::within(Duration::from_secs(20));
const EXIT: Poll = Poll::within(Duration::from_secs(30));

/// `secret-zero serve --socket SOCKET`, for [`Agent::start`] (add the source's flags).
pub fn serve(socket: &str) -> Cmd {
    let mut cmd = Cmd::secret_zero();
    cmd.args(["serve", "--socket", socket]);
    cmd
}

/// `secret-zero get --socket SOCKET EXTRA...`, once.
pub fn get(socket: &str, extra: &[&str]) -> Run {
    Cmd::secret_zero()
        .args(["get", "--socket", socket])
        .args(extra)
        .run()
}

/// A running agent.
pub struct Agent {
    process: Process,
    socket: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Start `cmd`, an agent that listens on `socket` (a path or `@name`), its stdout
    /// and stderr in a log file of its own.
    pub fn start(cmd: &Cmd, socket: impl Into<String>) -> Agent {
        let dir = tempfile::tempdir().expect("a directory for the agent's log");
        let log = dir.path().join("agent.log");
        let process = cmd.clone().log_to(&log).spawn();
        Agent {
            process,
            socket: socket.into(),
            log,
            _dir: dir,
        }
    }

    pub fn socket(&self) -> &str {
        &self.socket
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Everything the agent printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until `secret-zero probe --socket SOCKET` says ready; panics with the log
    /// if the agent exits first or takes longer than 20 s.
    pub fn wait_ready(&mut self) {
        let socket = self.socket.clone();
        self.wait_probe(["probe", "--socket", &socket]);
    }

    /// Wait until `secret-zero ARGS` (a probe as a pod spec writes it) exits 0.
    pub fn wait_probe<S: AsRef<OsStr>>(&mut self, args: impl IntoIterator<Item = S>) {
        let mut probe = Cmd::secret_zero();
        probe.args(args).quiet();
        let log = self.log.clone();
        let read = || std::fs::read_to_string(&log).unwrap_or_default();
        let process = &mut self.process;
        READY.eventually(
            || {
                if let Some(status) = process.exited() {
                    panic!("the agent exited with {status} before ready:\n{}", read());
                }
                probe.run().success().then_some(())
            },
            || format!("the agent is not ready:\n{}", read()),
        );
    }

    /// Wait (up to 30 s) for the agent to exit; its exit code (-1 for a signal) and log.
    pub fn wait_exit(&mut self) -> (i32, String) {
        let log = self.log.clone();
        let status = self
            .process
            .wait_exit(EXIT, || std::fs::read_to_string(&log).unwrap_or_default());
        (status.code().unwrap_or(-1), self.log())
    }

    /// `secret-zero get` against this agent, once.
    pub fn get(&self, extra: &[&str]) -> Run {
        get(&self.socket, extra)
    }

    /// [`get`](Self::get) that must succeed; panics with its stderr and the agent's log.
    pub fn get_ok(&self, extra: &[&str]) -> Run {
        let run = self.get(extra);
        assert!(
            run.success(),
            "get failed: {}\nagent log:\n{}",
            run.stderr,
            self.log()
        );
        run
    }

    /// SIGTERM.
    pub fn terminate(&self) {
        self.process.terminate();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- agent log ----\n{}", self.log());
        }
    }
}
