//! Running a program from a test: [`Cmd`] builds the command line, [`Run`] is what a
//! finished one printed, [`Process`] is one still running (killed on drop).
//!
//! The environment is cleared, then set explicitly: `PATH` from the test (to find
//! tools), `HOME` a fresh empty directory (so no `~/.vault-token`, `~/.kube/config` or
//! tool cache of the machine leaks in), and whatever the test adds with
//! [`env`](Cmd::env). Nothing else of the test's environment — `VAULT_*`,
//! `SECRET_ZERO_*`, `KUBERNETES_*`, `KUBECONFIG`, `RUST_LOG` — reaches the program.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use serde_json::Value;

use crate::shared::SharedDir;
use crate::wait::Poll;

/// A command line and its environment; cheap to clone, run as often as needed.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: BTreeMap<OsString, OsString>,
    cwd: Option<PathBuf>,
    uid: Option<u32>,
    stdin: Input,
    stdout: Sink,
    stderr: Sink,
}

#[derive(Clone, Debug)]
enum Input {
    Null,
    Piped,
    Bytes(Vec<u8>),
}

/// Where an output stream goes.
#[derive(Clone, Debug)]
pub enum Sink {
    /// Captured: in [`Run`], or readable from [`Process::child`] (the default).
    Piped,
    /// Discarded.
    Null,
    /// The test's own stream.
    Inherit,
    /// Written to this file.
    File(PathBuf),
}

impl Cmd {
    /// `program` (a path, or a name looked up on `PATH`) in a cleared environment.
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        let mut env = BTreeMap::new();
        if let Some(path) = std::env::var_os("PATH") {
            env.insert("PATH".into(), path);
        }
        Cmd {
            program: program.as_ref().into(),
            args: Vec::new(),
            env,
            cwd: None,
            uid: None,
            stdin: Input::Null,
            stdout: Sink::Piped,
            stderr: Sink::Piped,
        }
    }

    /// The `secret-zero` binary under test (see [`crate::bin`]).
    pub fn secret_zero() -> Cmd {
        Cmd::new(crate::bin::secret_zero())
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cmd {
        self.args.push(arg.as_ref().into());
        self
    }

    pub fn args<S: AsRef<OsStr>>(&mut self, args: impl IntoIterator<Item = S>) -> &mut Cmd {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Set one variable (replacing `PATH` or `HOME` too).
    pub fn env(&mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Cmd {
        self.env.insert(name.as_ref().into(), value.as_ref().into());
        self
    }

    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        &mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> &mut Cmd {
        for (name, value) in vars {
            self.env(name, value);
        }
        self
    }

    /// Pass these variables of the test's own environment on, where set: for a
    /// toolchain (`RUSTUP_TOOLCHAIN`, ...), never for what the program under test reads.
    pub fn inherit(&mut self, names: &[&str]) -> &mut Cmd {
        for name in names {
            if let Some(value) = std::env::var_os(name) {
                self.env(name, value);
            }
        }
        self
    }

    /// Set `name` to its value in the test's environment, or else to `rel` under the
    /// test's own `HOME`: where a toolchain keeps itself and its caches
    /// (`RUSTUP_HOME`, `.rustup`), while the program's `HOME` stays private.
    pub fn env_or_home(&mut self, name: &str, rel: &str) -> &mut Cmd {
        let value = std::env::var_os(name).or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(rel).into_os_string())
        });
        if let Some(value) = value {
            self.env(name, value);
        }
        self
    }

    /// `HOME` is `dir` instead of a fresh empty directory (for a tool cache a test
    /// keeps between runs, such as kubectl's discovery cache).
    pub fn home(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.env("HOME", dir.as_ref())
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.cwd = Some(dir.as_ref().into());
        self
    }

    /// Run as `uid` (and gid `uid`, no supplementary groups) inside `dir`, which
    /// must hold everything the program needs (see [`SharedDir`]); `HOME` is a
    /// directory of its own there. Needs root.
    pub fn as_uid(&mut self, uid: u32, dir: &SharedDir) -> &mut Cmd {
        self.uid = Some(uid);
        self.cwd = Some(dir.path().into());
        let home = dir.home_for(uid);
        self.home(home)
    }

    /// Feed `bytes` on stdin (from a thread, so a large input cannot deadlock against
    /// a full stdout pipe). Stdin is otherwise `/dev/null`.
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Cmd {
        self.stdin = Input::Bytes(bytes.into());
        self
    }

    /// Leave stdin open as a pipe, for [`Process::child`] to write to or close.
    pub fn stdin_piped(&mut self) -> &mut Cmd {
        self.stdin = Input::Piped;
        self
    }

    /// Discard stdout and stderr (they are captured otherwise).
    pub fn quiet(&mut self) -> &mut Cmd {
        self.stdout = Sink::Null;
        self.stderr = Sink::Null;
        self
    }

    pub fn stdout(&mut self, sink: Sink) -> &mut Cmd {
        self.stdout = sink;
        self
    }

    pub fn stderr(&mut self, sink: Sink) -> &mut Cmd {
        self.stderr = sink;
        self
    }

    /// Stdout and stderr both go to `file` (created or truncated).
    pub fn log_to(&mut self, file: impl AsRef<Path>) -> &mut Cmd {
        self.stdout = Sink::File(file.as_ref().into());
        self.stderr = Sink::File(file.as_ref().into());
        self
    }

    /// The program and its arguments, for messages.
    pub fn display(&self) -> String {
        let program = Path::new(&self.program)
            .file_name()
            .unwrap_or(&self.program)
            .to_string_lossy()
            .into_owned();
        let mut line = program;
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.to_string_lossy());
        }
        line
    }

    /// The same command under the test bed's `peak-rss`, which writes the process's
    /// own peak resident memory (KiB: `ru_maxrss` for that pid, from `wait4`) to
    /// `report` when it exits.
    pub fn measured(&self, report: &Path) -> Cmd {
        let mut cmd = self.clone();
        cmd.program = crate::bin::peak_rss().into();
        cmd.args = [report.as_os_str().to_owned(), self.program.clone()]
            .into_iter()
            .chain(self.args.iter().cloned())
            .collect();
        cmd
    }

    /// Run to completion.
    pub fn run(&self) -> Run {
        self.spawn().finish()
    }

    /// [`run`](Self::run) without blocking an async test's runtime thread.
    pub async fn run_async(&self) -> Run {
        let cmd = self.clone();
        tokio::task::spawn_blocking(move || cmd.run())
            .await
            .expect("the command's thread")
    }

    /// Start it; the [`Process`] is killed when dropped.
    pub fn spawn(&self) -> Process {
        let mut command = Command::new(&self.program);
        command.args(&self.args).env_clear().envs(&self.env);
        let home = if self.env.contains_key(OsStr::new("HOME")) {
            None
        } else {
            let home = tempfile::tempdir().expect("a private HOME");
            command.env("HOME", home.path());
            Some(home)
        };
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        if let Some(uid) = self.uid {
            // As root, std also drops the supplementary groups.
            command.uid(uid).gid(uid);
        }
        command.stdin(match self.stdin {
            Input::Null => Stdio::null(),
            Input::Piped | Input::Bytes(_) => Stdio::piped(),
        });
        match (&self.stdout, &self.stderr) {
            (Sink::File(out), Sink::File(err)) if out == err => {
                let file = create(out);
                command.stdout(file.try_clone().expect("log file"));
                command.stderr(file);
            }
            (out, err) => {
                command.stdout(out.stdio());
                command.stderr(err.stdio());
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.display()));
        if let Input::Bytes(bytes) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            let bytes = bytes.clone();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        Process {
            child: Some(child),
            what: self.display(),
            _home: home,
        }
    }
}

impl Sink {
    fn stdio(&self) -> Stdio {
        match self {
            Sink::Piped => Stdio::piped(),
            Sink::Null => Stdio::null(),
            Sink::Inherit => Stdio::inherit(),
            Sink::File(path) => create(path).into(),
        }
    }
}

fn create(path: &Path) -> std::fs::File {
    std::fs::File::create(path).unwrap_or_else(|e| panic!("log file {}: {e}", path.display()))
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Run {
    /// The command line, for messages.
    pub what: String,
    /// The exit code, -1 when killed by a signal.
    pub code: i32,
    /// Stdout as text (invalid UTF-8 replaced); [`bytes`](Self::bytes) holds it exactly.
    pub stdout: String,
    pub stderr: String,
    /// Stdout, byte for byte.
    pub bytes: Vec<u8>,
}

impl Run {
    fn new(what: String, status: ExitStatus, stdout: Vec<u8>, stderr: Vec<u8>) -> Run {
        Run {
            what,
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            bytes: stdout,
        }
    }

    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Both streams, for searching.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics with both streams unless the exit code is `code`.
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "`{}` exited {} (wanted {code})\nstdout:\n{}\nstderr:\n{}",
            self.what, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics with both streams unless it exited 0.
    pub fn ok(self) -> Run {
        self.expect(0);
        self
    }

    /// Stdout parsed as JSON.
    pub fn json(&self) -> Value {
        crate::text::json_of(&self.bytes)
    }
}

/// A running program; killed (and reaped) on drop.
pub struct Process {
    child: Option<Child>,
    what: String,
    _home: Option<tempfile::TempDir>,
}

impl Process {
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the child")
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("the child").id()
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child().try_wait().expect("wait for the child")
    }

    /// Wait up to `poll`'s timeout for it to exit; panics with `log()` if it does not.
    pub fn wait_exit(&mut self, poll: Poll, log: impl FnOnce() -> String) -> ExitStatus {
        let what = self.what.clone();
        poll.eventually(
            || self.exited(),
            || format!("`{what}` is still running:\n{}", log()),
        )
    }

    /// SIGTERM.
    pub fn terminate(&self) {
        let sent = Cmd::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .run();
        assert!(sent.success(), "kill -TERM {}: {}", self.id(), sent.stderr);
    }

    /// SIGKILL, then reap it.
    pub fn kill(&mut self) {
        let child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Wait for it to exit and collect what it printed (the streams left piped).
    pub fn finish(mut self) -> Run {
        let child = self.child.take().expect("the child");
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {}: {e}", self.what));
        Run::new(
            std::mem::take(&mut self.what),
            out.status,
            out.stdout,
            out.stderr,
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
