//! The socket server: HTTP/1.1 over a Unix socket that hands the plaintext out at most
//! `max_deliveries` times, to allowed peers only (ARCHITECTURE.md, I7 and I8).
//!
//! - [`socket`] binds a path (mode set before the file is reachable, stale files
//!   replaced, live agents respected, removal on drop) or an abstract name;
//! - [`peer`] is the `SO_PEERCRED` policy;
//! - [`delivery`] is the state and the one-shot accounting;
//! - [`http`] the routes and their JSON errors.
//!
//! The caller binds first (so a bad socket fails before any Vault call), spawns
//! [`Agent::serve`], and then reports the outcome of login/decrypt through the
//! [`StatusHandle`].

mod delivery;
mod http;
mod peer;
mod socket;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

use crate::Plaintext;
use crate::failure::InputError;
use crate::fault::Fault;

pub use delivery::StatusHandle;
pub use peer::{Peer, PeerPolicy};
pub use secret_zero_client::{AgentState, AgentStatus, DocFormat, SocketSpec};

/// How long one connection may last, request and answer included. It bounds a client
/// that connects and never speaks, while leaving room for a later delivery's fresh
/// login and decrypt (retried for up to `--retry-timeout`).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything the agent needs to know before the plaintext exists.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub socket: SocketSpec,
    /// Mode of the socket file (ignored for abstract sockets). Connecting needs write
    /// permission, so `0600` admits the agent's own uid (and root) only.
    pub socket_mode: u32,
    pub policy: PeerPolicy,
    /// At most this many deliveries (at least 1).
    pub max_deliveries: u32,
    /// Return from `serve` once the last delivery has been written.
    pub exit_after_delivery: bool,
    pub format: DocFormat,
    /// Shown in `/v1/status` and the audit lines; usually unknown at bind time and set
    /// later with [`StatusHandle::set_key_version`].
    pub key_version: Option<u64>,
}

impl Default for AgentConfig {
    /// The documented defaults: the default socket, mode 0600, own uid only, one
    /// delivery, stay up afterwards, JSON.
    fn default() -> AgentConfig {
        AgentConfig {
            socket: SocketSpec::default(),
            socket_mode: 0o600,
            policy: PeerPolicy::default(),
            max_deliveries: 1,
            exit_after_delivery: false,
            format: DocFormat::Json,
            key_version: None,
        }
    }
}

/// Produces a fresh copy for deliveries after the first (a new login + decrypt + revoke
/// each time). Nothing is kept between deliveries: each call starts from scratch.
pub trait Source: Send + Sync + 'static {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Plaintext, Fault>> + Send + '_>>;
}

/// A failure of the agent's settings or of the socket itself.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A setting the agent cannot work with (`--max-deliveries 0`, a bad mode).
    #[error(transparent)]
    Config(InputError),

    /// The socket could not be bound: directory missing or not writable, a live agent
    /// already on it, a path that is not a socket, a name too long.
    #[error("cannot bind socket {socket}: {reason}")]
    Bind {
        socket: String,
        reason: String,
        hint: String,
    },

    /// The bound listener could not be used.
    #[error("socket {socket}: {reason}")]
    Listen { socket: String, reason: String },
}

impl AgentError {
    pub fn hint(&self) -> Option<String> {
        match self {
            AgentError::Config(e) => Some(e.hint.clone()),
            AgentError::Bind { hint, .. } => Some(hint.clone()),
            AgentError::Listen { .. } => None,
        }
    }
}

/// A bound socket and the delivery state behind it.
pub struct Agent {
    listener: std::os::unix::net::UnixListener,
    /// Removes the socket file when the agent goes away (path sockets only).
    file: Option<socket::SocketFile>,
    socket: SocketSpec,
    policy: PeerPolicy,
    delivery: Arc<delivery::Delivery>,
}

impl Agent {
    /// Bind the socket now, in state "starting". Needs no runtime, so it can run before
    /// anything else. Errors are one line naming the socket, with exit code `SOCKET`.
    pub fn bind(config: AgentConfig) -> Result<Agent, AgentError> {
        if config.max_deliveries == 0 {
            return Err(AgentError::Config(InputError::new(
                "--max-deliveries must be at least 1",
                "use 1 (the default) for a single delivery",
            )));
        }
        if config.socket_mode & !0o777 != 0 {
            return Err(AgentError::Config(InputError::new(
                format!(
                    "--socket-mode {:o} is not a permission mode",
                    config.socket_mode
                ),
                "give an octal mode such as 0600 or 0660",
            )));
        }
        let bound = socket::bind(&config.socket, config.socket_mode)?;
        let own_uid = rustix::process::geteuid().as_raw();
        match &config.socket {
            SocketSpec::Path(_) => tracing::info!(
                socket = %config.socket,
                mode = format_args!("{:04o}", config.socket_mode),
                peers = %config.policy.describe(own_uid),
                max_deliveries = config.max_deliveries,
                "socket bound"
            ),
            SocketSpec::Abstract(_) => tracing::info!(
                socket = %config.socket,
                peers = %config.policy.describe(own_uid),
                max_deliveries = config.max_deliveries,
                "abstract socket bound: it has no file mode, any process in this network \
                 namespace can connect, and only the peer policy decides"
            ),
        }
        Ok(Agent {
            listener: bound.listener,
            file: bound.file,
            socket: config.socket,
            policy: config.policy,
            delivery: Arc::new(delivery::Delivery::new(
                config.max_deliveries,
                config.exit_after_delivery,
                config.format,
                config.key_version,
            )),
        })
    }

    /// The handle through which the caller marks the agent ready or failed.
    pub fn status_handle(&self) -> StatusHandle {
        StatusHandle::new(self.delivery.clone())
    }

    /// The socket this agent listens on.
    pub fn socket(&self) -> &SocketSpec {
        &self.socket
    }

    /// Serve until `shutdown` resolves, or (with `exit_after_delivery`) until the last
    /// delivery has been written. On return the plaintext is wiped, open connections
    /// are dropped and the socket file is removed.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AgentError> {
        let Agent {
            listener,
            file,
            socket,
            policy,
            delivery,
        } = self;
        let listener =
            tokio::net::UnixListener::from_std(listener).map_err(|e| AgentError::Listen {
                socket: socket.to_string(),
                reason: e.to_string(),
            })?;
        let policy = Arc::new(policy);
        let own_uid = rustix::process::geteuid().as_raw();
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::info!(socket = %socket, "shutting down");
                    break;
                }
                () = delivery.finished() => {
                    tracing::info!(socket = %socket, "all deliveries made; exiting as asked");
                    break;
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(connection(
                            stream,
                            policy.clone(),
                            own_uid,
                            delivery.clone(),
                        ));
                    }
                    Err(e) => {
                        // Out of descriptors or memory: back off rather than spin.
                        tracing::warn!(socket = %socket, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(joined) = connections.join_next() => {
                    if let Err(e) = joined
                        && e.is_panic()
                    {
                        tracing::error!(error = %e, "a connection handler panicked");
                    }
                }
            }
        }
        connections.shutdown().await;
        delivery.wipe();
        drop(listener);
        drop(file);
        Ok(())
    }
}

/// One connection: check the peer once, then answer HTTP/1.1 requests until the
/// client or the server closes (every answer closes: no idle connection keeps buffers).
async fn connection(
    stream: tokio::net::UnixStream,
    policy: Arc<PeerPolicy>,
    own_uid: u32,
    delivery: Arc<delivery::Delivery>,
) {
    let peer = match Peer::of(&stream) {
        Ok(peer) => peer,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the peer's credentials; closing");
            return;
        }
    };
    let allowed = policy.allows(&peer, own_uid);
    let ctx = Arc::new(http::Connection::new(peer, allowed, delivery.clone()));
    let service = {
        let ctx = ctx.clone();
        hyper::service::service_fn(move |request| http::handle(ctx.clone(), request))
    };
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, served).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "connection ended with an error"),
        Err(_) => tracing::debug!(peer = %peer, "connection timed out"),
    }
    delivery.connection_closed(ctx.deliveries());
}

/// Serve one connection over `io` as [`connection`] does, to a peer that `allowed` or
/// not, from an agent ready with `first` (and `source` for later copies): for the fuzz
/// targets. Returns what `/v1/status` says afterwards.
#[doc(hidden)]
pub async fn serve_io<I>(
    io: I,
    allowed: bool,
    config: &AgentConfig,
    first: Plaintext,
    source: Option<Arc<dyn Source>>,
) -> AgentStatus
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let delivery = Arc::new(delivery::Delivery::new(
        config.max_deliveries,
        false,
        config.format,
        None,
    ));
    StatusHandle::new(delivery.clone()).ready(first, source);
    let peer = Peer {
        pid: None,
        uid: 4242,
        gid: 4242,
    };
    let ctx = Arc::new(http::Connection::new(peer, allowed, delivery.clone()));
    let service = hyper::service::service_fn(move |request| http::handle(ctx.clone(), request));
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(io, service);
    let _ = served.await;
    delivery.status()
}
