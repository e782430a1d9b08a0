//! Binding the listening socket.
//!
//! A path socket must never be reachable with a mode looser than asked for. `umask` is
//! process-wide (other threads create files too) and `chmod` after `bind` leaves a
//! window, so the socket is bound inside a fresh private directory (mode 0700, next to
//! the target so that a rename stays on one filesystem), given its mode there, and only
//! then renamed into place. The rename refuses to replace an existing file
//! (`RENAME_NOREPLACE`), so two agents starting at once cannot both win.
//!
//! A socket file already at the path is probed: if something accepts the connection a
//! live agent holds it and binding fails; if the connection is refused it is a stale
//! file left by a dead agent and is replaced. Anything that is not a socket is left
//! alone. On drop the file is removed, but only if it is still ours (same inode).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::{AgentError, SocketSpec};

/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

pub(crate) struct Bound {
    pub(crate) listener: UnixListener,
    pub(crate) file: Option<SocketFile>,
}

/// The socket file we created; removed on drop if it is still the same inode.
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(socket = %self.path.display(), error = %e, "cannot remove the socket file");
                }
            }
            // Gone already, or replaced by someone else's socket: not ours to remove.
            _ => {}
        }
    }
}

/// Bind `spec`, non-blocking, ready to hand to tokio.
pub(crate) fn bind(spec: &SocketSpec, mode: u32) -> Result<Bound, AgentError> {
    let bound = match spec {
        SocketSpec::Path(path) => bind_path(path, mode)?,
        SocketSpec::Abstract(name) => Bound {
            listener: bind_abstract(name)?,
            file: None,
        },
    };
    bound
        .listener
        .set_nonblocking(true)
        .map_err(|e| bind_error(spec, format!("cannot make it non-blocking: {e}"), "".into()))?;
    Ok(bound)
}

fn bind_abstract(name: &str) -> Result<UnixListener, AgentError> {
    let spec = SocketSpec::Abstract(name.to_string());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| {
        bind_error(
            &spec,
            format!("invalid abstract name: {e}"),
            format!("use a name of at most {} bytes", MAX_SOCKET_PATH - 1),
        )
    })?;
    UnixListener::bind_addr(&addr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => bind_error(
            &spec,
            "another process already listens on this abstract name".into(),
            "stop the other agent, or choose another --socket @NAME".into(),
        ),
        _ => bind_error(&spec, e.to_string(), String::new()),
    })
}

fn bind_path(path: &Path, mode: u32) -> Result<Bound, AgentError> {
    let spec = SocketSpec::Path(path.to_path_buf());
    if path.file_name().is_none() {
        return Err(bind_error(
            &spec,
            "the path does not name a file".into(),
            "give a file path such as /run/secret-zero/agent.sock".into(),
        ));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp_len = dir.as_os_str().len() + "/.sz-xxxxxx/s".len();
    if path.as_os_str().len() > MAX_SOCKET_PATH || temp_len > MAX_SOCKET_PATH {
        return Err(bind_error(
            &spec,
            format!(
                "the path is too long for a Unix socket ({} bytes; the directory may have at \
                 most {} and the whole path {})",
                path.as_os_str().len(),
                MAX_SOCKET_PATH - "/.sz-xxxxxx/s".len(),
                MAX_SOCKET_PATH
            ),
            "use a shorter path, e.g. /run/secret-zero/agent.sock".into(),
        ));
    }

    clear_stale(path, &spec)?;
    let private = make_private_dir(&dir, &spec)?;
    let temp = private.join("s");
    let result = bind_in_private(&temp, path, mode, &spec);
    // Empty now either way: the socket was renamed out, or removed on failure.
    if let Err(e) = std::fs::remove_dir(&private) {
        tracing::warn!(dir = %private.display(), error = %e, "cannot remove the private bind directory");
    }
    let listener = result?;
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        bind_error(
            &spec,
            format!("the socket vanished after binding: {e}"),
            String::new(),
        )
    })?;
    Ok(Bound {
        listener,
        file: Some(SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        }),
    })
}

/// Bind at `temp` (inside the private directory), set the mode, move it to `path`.
fn bind_in_private(
    temp: &Path,
    path: &Path,
    mode: u32,
    spec: &SocketSpec,
) -> Result<UnixListener, AgentError> {
    let listener = UnixListener::bind(temp)
        .map_err(|e| bind_error(spec, format!("bind failed: {e}"), String::new()))?;
    std::fs::set_permissions(temp, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        let _ = std::fs::remove_file(temp);
        bind_error(
            spec,
            format!("cannot set mode {mode:04o}: {e}"),
            String::new(),
        )
    })?;
    let renamed = rustix::fs::renameat_with(
        rustix::fs::CWD,
        temp,
        rustix::fs::CWD,
        path,
        rustix::fs::RenameFlags::NOREPLACE,
    );
    let renamed = match renamed {
        // A filesystem without RENAME_NOREPLACE: the stale check just ran, so a plain
        // rename only loses the (harmless) race against a simultaneous start.
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
            std::fs::rename(temp, path)
        }
        other => other.map_err(io::Error::from),
    };
    match renamed {
        Ok(()) => Ok(listener),
        Err(e) => {
            let _ = std::fs::remove_file(temp);
            Err(if e.kind() == io::ErrorKind::AlreadyExists {
                bind_error(
                    spec,
                    "another agent bound this path while we were starting".into(),
                    "run one agent per socket, or choose another --socket".into(),
                )
            } else {
                bind_error(
                    spec,
                    format!("cannot move the socket into place: {e}"),
                    String::new(),
                )
            })
        }
    }
}

/// Fail if a live agent holds `path`; remove a stale socket file left by a dead one.
fn clear_stale(path: &Path, spec: &SocketSpec) -> Result<(), AgentError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(dir_error(path, spec, e)),
    };
    if !meta.file_type().is_socket() {
        return Err(bind_error(
            spec,
            "the path exists and is not a socket; refusing to replace it".into(),
            "remove the file yourself if it is not needed, or choose another --socket".into(),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(bind_error(
            spec,
            "a live agent is already listening on it".into(),
            "stop the other agent, or choose another --socket".into(),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).or_else(|e| match e.kind() {
                io::ErrorKind::NotFound => Ok(()),
                _ => Err(dir_error(path, spec, e)),
            })?;
            tracing::info!(socket = %path.display(), "replaced a stale socket file left by a dead agent");
            Ok(())
        }
        Err(e) => Err(bind_error(
            spec,
            format!("a socket file is there and probing it failed: {e}"),
            "remove the stale file, or choose another --socket".into(),
        )),
    }
}

/// Create `DIR/.sz-XXXXXX` with mode 0700.
fn make_private_dir(dir: &Path, spec: &SocketSpec) -> Result<PathBuf, AgentError> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut last = None;
    for _ in 0..16 {
        let suffix: String = (0..6)
            .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
            .collect();
        let private = dir.join(format!(".sz-{suffix}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&private) {
            Ok(()) => {
                // umask can only have removed bits; make sure nothing else is set.
                std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| {
                        let _ = std::fs::remove_dir(&private);
                        dir_error(dir, spec, e)
                    })?;
                return Ok(private);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(dir_error(dir, spec, e)),
        }
    }
    Err(dir_error(
        dir,
        spec,
        last.unwrap_or_else(|| io::Error::other("no free temporary name")),
    ))
}

/// The socket's directory is missing, not writable or otherwise unusable.
fn dir_error(dir_or_path: &Path, spec: &SocketSpec, e: io::Error) -> AgentError {
    let dir = match spec {
        SocketSpec::Path(path) if dir_or_path == path => path.parent().unwrap_or(dir_or_path),
        _ => dir_or_path,
    };
    let uid = rustix::process::geteuid().as_raw();
    let (reason, hint) = match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
        Some(rustix::io::Errno::NOENT) => (
            format!("directory {} does not exist", dir.display()),
            "mount a volume there (an emptyDir with medium: Memory) or create it, or choose \
             another --socket"
                .to_string(),
        ),
        Some(rustix::io::Errno::NOTDIR) => (
            format!("{} is not a directory", dir.display()),
            "choose another --socket".to_string(),
        ),
        Some(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => (
            format!("directory {} is not writable by uid {uid}", dir.display()),
            format!(
                "make the directory writable for uid {uid} (e.g. fsGroup on the emptyDir), or \
                 choose another --socket"
            ),
        ),
        Some(rustix::io::Errno::ROFS) => (
            format!("directory {} is on a read-only filesystem", dir.display()),
            "mount a writable emptyDir (medium: Memory) there".to_string(),
        ),
        _ => (format!("directory {}: {e}", dir.display()), String::new()),
    };
    bind_error(spec, reason, hint)
}

fn bind_error(spec: &SocketSpec, reason: String, hint: String) -> AgentError {
    AgentError::Bind {
        socket: spec.to_string(),
        reason,
        hint: if hint.is_empty() {
            "check the --socket path and its directory".into()
        } else {
            hint
        },
    }
}
