//! Running something as another uid: everything it touches is first copied into a
//! directory the test creates with the permissions that uid needs.
//!
//! The checkout may sit under a 0700 parent (`/root`, a `mktemp -d` folder), where
//! another uid cannot even enter; so nothing run as another uid may be read from the
//! checkout or the target directory, and no such process may start in either.
//! `scripts/clone-test.sh` proves it from such a clone.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The uid (and gid) the tests use for "another process": nobody.
pub const NOBODY: u32 = 65534;

/// Panics unless the test runs as root, which switching to another uid needs.
pub fn require_root(why: &str) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("the effective uid in /proc/self/status");
    assert_eq!(euid, "0", "{why}: run the tests as root (as CI does)");
}

/// A temporary directory any uid may enter and read (0755, under the system's temp
/// directory, removed on drop). Files copied in are 0644, or 0755 when executable.
pub struct SharedDir {
    dir: tempfile::TempDir,
}

impl SharedDir {
    pub fn new() -> SharedDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        set_mode(dir.path(), 0o755);
        for ancestor in dir.path().ancestors().skip(1) {
            let mode = std::fs::metadata(ancestor)
                .unwrap_or_else(|e| panic!("{}: {e}", ancestor.display()))
                .permissions()
                .mode();
            assert!(
                mode & 0o001 != 0,
                "{} (mode {:o}) cannot be entered by other uids, so neither can {}: point TMPDIR at a directory they can reach, such as /tmp",
                ancestor.display(),
                mode & 0o7777,
                dir.path().display()
            );
        }
        SharedDir { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// Write `name` (0644).
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        set_mode(&path, 0o644);
        path
    }

    /// Copy the file `from` in as `name`, keeping it executable if it is.
    pub fn copy(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.join(name);
        copy_file(from, &to);
        to
    }

    /// Copy the directory `from` in as `name`, recursively.
    pub fn copy_dir(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.join(name);
        copy_tree(from, &to);
        to
    }

    /// A subdirectory `name` (0755), for a program's output.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let dir = self.join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        set_mode(&dir, 0o755);
        dir
    }

    /// A home directory owned by `uid` (0700), made on first use.
    pub fn home_for(&self, uid: u32) -> PathBuf {
        let home = self.join(&format!("home-{uid}"));
        match std::fs::create_dir(&home) {
            Ok(()) => {}
            // Another thread made it first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return home,
            Err(e) => panic!("{}: {e}", home.display()),
        }
        std::os::unix::fs::chown(&home, Some(uid), Some(uid))
            .unwrap_or_else(|e| panic!("chown {} to {uid}: {e}", home.display()));
        set_mode(&home, 0o700);
        home
    }
}

impl Default for SharedDir {
    fn default() -> SharedDir {
        SharedDir::new()
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

fn copy_file(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    let executable = std::fs::metadata(from).unwrap().permissions().mode() & 0o111 != 0;
    set_mode(to, if executable { 0o755 } else { 0o644 });
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    set_mode(to, 0o755);
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            copy_file(&entry.path(), &target);
        }
    }
}
