//! Where the programs under test are.
//!
//! Cargo tells an integration test where its package's binaries are only through
//! `env!("CARGO_BIN_EXE_<name>")`, which expands in the test crate; this test bed is a
//! separate library and cannot see it. Cargo puts every binary and example of the
//! workspace in the profile directory (`target/debug`) and each test executable in its
//! `deps/` subdirectory, so the paths are found from [`std::env::current_exe`]: the
//! same file `CARGO_BIN_EXE_secret-zero` names (tests/serve/main.rs checks that the
//! two agree), with nothing to pass in from each test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The profile directory of the running test (`target/debug` or `target/release`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().expect("the test executable's directory");
    match dir.file_name() {
        Some(name) if name == "deps" => dir.parent().expect("the profile directory").into(),
        _ => dir.into(),
    }
}

/// The `secret-zero` binary that `cargo test` built for this test.
pub fn secret_zero() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let path = profile_dir().join("secret-zero");
        assert!(
            path.is_file(),
            "{} is missing: `cargo test` builds it for the integration tests (or run `cargo build --bins`)",
            path.display()
        );
        path
    })
}

/// The example program `name` (`cargo test` builds the examples too).
pub fn example(name: &str) -> PathBuf {
    let path = profile_dir().join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is missing: `cargo test` builds the examples; run `cargo build --examples`",
        path.display()
    );
    path
}

/// The test bed's own `kube-double` binary, built if needed.
///
/// `cargo test -p secret-zero` does not build the test bed's binaries, so this makes
/// sure it is there and current (a no-op when it is), in the same profile as the test.
pub fn kube_double() -> PathBuf {
    testbed_binary("kube-double")
}

/// The test bed's `peak-rss` (a process's own peak memory), built if needed (once per
/// test process: it is run many times).
pub fn peak_rss() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| testbed_binary("peak-rss")).clone()
}

fn testbed_binary(name: &str) -> PathBuf {
    let profile = profile_dir();
    let binary = profile.join(name);
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "secret-zero-testbed",
            "--bin",
            name,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    let built = build.status();
    assert!(
        binary.is_file(),
        "{} is missing ({built:?}): build it with `cargo build -p secret-zero-testbed --bin {name}`",
        binary.display()
    );
    binary
}
