//! `serve`: harden, bind the socket, fetch the plaintext, serve it once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::{Agent, AgentConfig, AgentError, Limits, PeerPolicy, Source};
use crate::cli::ServeArgs;
use crate::error::Error;
use crate::failure::Hinted;
use crate::fault::Fault;
use crate::kube::ClusterSource;
use crate::plaintext::Plaintext;
use crate::retry::Backoff;
use crate::secret_format::{FormatFlag, SecretRef, TransitFlags};
use crate::signals::Shutdown;
use crate::source::{
    CiphertextAt, Fetched, KubeObjectKind, PlaintextEnvSource, PlaintextFileSource,
    PlaintextKubeSource, VaultSource,
};
use crate::vault::{self, Session};

/// How long a stop request waits for the start-up token's revoke still in flight
/// (a request to a healthy Vault takes milliseconds): the agent exits within a second
/// of SIGTERM whatever Vault does. A token left behind dies with its short TTL.
const REVOKE_GRACE: Duration = Duration::from_millis(800);

pub async fn run(args: ServeArgs) -> Result<(), Error> {
    // From here on SIGTERM and SIGINT end `serve` cleanly at any moment, start-up
    // retries included, with exit code 0, as after start-up.
    let shutdown = Shutdown::install("wiping and exiting");
    let hardening = crate::harden::harden();
    for warning in &hardening.warnings {
        tracing::warn!("{warning}");
    }
    for note in &hardening.notes {
        tracing::info!("{note}");
    }
    tracing::info!(
        not_dumpable = hardening.not_dumpable,
        no_core = hardening.no_core,
        memory_locked = hardening.memory_locked,
        "process hardened"
    );

    let source = build_source(&args)?;
    // Bind before any Vault call: a bad socket path fails fast and costs no token.
    let agent = Agent::bind(AgentConfig {
        socket: args.socket.clone(),
        socket_mode: args.socket_mode,
        policy: PeerPolicy {
            uids: args.allow_uid.clone(),
            gids: args.allow_gid.clone(),
        },
        max_deliveries: args.max_deliveries,
        exit_after_delivery: args.exit_after_delivery,
        format: args.format(),
        key_version: None,
        limits: Limits {
            max_connections: args.max_connections,
            header_read_timeout: args.header_read_timeout,
        },
    })?;
    let status = agent.status_handle();
    let server = tokio::spawn(agent.serve({
        let shutdown = shutdown.clone();
        async move {
            shutdown.wait().await;
        }
    }));

    // The start-up fetch retries transient faults for up to --retry-timeout; a stop
    // request ends it at once (the server stops on the same signal).
    let first = tokio::select! {
        biased;
        signal = shutdown.wait() => Err(signal),
        first = source.fetch_first() => Ok(first),
    };
    let first = match first {
        Ok(first) => first,
        Err(signal) => {
            tracing::info!("{signal} during start-up: stopped before the document was fetched");
            return finish(server.await);
        }
    };

    let mut revoking = None;
    match first {
        Ok((fetched, session)) => {
            if let Some(session) = session {
                // Ready now; the token's revoke runs beside the first request, which
                // waits for it.
                let (done, gate) = tokio::sync::watch::channel(false);
                status.deliver_after(gate);
                revoking = Some(tokio::spawn(async move {
                    session.close_after(1).await;
                    let _ = done.send(true);
                }));
            }
            tracing::info!(
                key_version = fetched.key_version,
                bytes = fetched.plaintext.len(),
                "ready: the document is held in memory for one delivery"
            );
            let later: Option<Arc<dyn Source>> = if args.max_deliveries > 1 {
                Some(Arc::new(source.clone()))
            } else {
                None
            };
            status.set_key_version(fetched.key_version);
            status.ready(fetched.plaintext, later);
        }
        Err(e) => {
            status.failed(e.one_line());
            server.abort();
            return Err(e.into());
        }
    }

    let served = server.await;
    // However serving ended, the start-up token's revoke is finished first (a delivery
    // already waited for it; a stop before any delivery waits a moment at most).
    if let Some(revoking) = revoking
        && tokio::time::timeout(REVOKE_GRACE, revoking).await.is_err()
    {
        tracing::warn!(
            "the Vault token's revoke did not finish before exit; the token expires with its TTL"
        );
    }
    finish(served)
}

/// What the socket server's task ended with.
fn finish(served: Result<Result<(), AgentError>, tokio::task::JoinError>) -> Result<(), Error> {
    match served {
        Ok(result) => Ok(result?),
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(Error::internal(format!("the socket server stopped: {e}"))),
    }
}

/// The agent's source of plaintext: Vault, or (development and migration) a file, the
/// environment, or a plain Secret or ConfigMap.
#[derive(Clone)]
enum AnySource {
    Vault(Arc<VaultSource>),
    File(Arc<PlaintextFileSource>),
    Env(Arc<PlaintextEnvSource>),
    Kube(Arc<PlaintextKubeSource>),
}

impl AnySource {
    /// The start-up copy, and for Vault the session whose token is still to be revoked.
    async fn fetch_first(&self) -> Result<(Fetched, Option<Session>), Fault> {
        match self {
            AnySource::Vault(source) => {
                let (fetched, session) = source.fetch_first().await?;
                Ok((fetched, Some(session)))
            }
            other => Ok((other.fetch().await?, None)),
        }
    }

    async fn fetch(&self) -> Result<Fetched, Fault> {
        match self {
            AnySource::Vault(source) => source.fetch().await,
            AnySource::File(source) => source.fetch(),
            AnySource::Env(source) => source.fetch(),
            AnySource::Kube(source) => source.fetch().await,
        }
    }
}

impl Source for AnySource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Plaintext, Fault>> + Send + '_>> {
        Box::pin(async move { AnySource::fetch(self).await.map(|f| f.plaintext) })
    }
}

fn build_source(args: &ServeArgs) -> Result<AnySource, Error> {
    if args.env_file.is_some() && args.plaintext_env.is_none() {
        return Err(Error::usage(
            "--env-file goes with --plaintext-env",
            "name the definition file with --plaintext-env, or drop --env-file",
        ));
    }
    let cluster = || {
        ClusterSource::detect(
            args.kube.kubeconfig.as_deref(),
            Some(&args.kube.serviceaccount_dir),
        )
    };
    let backoff = Backoff::with_timeout(args.retry_timeout);
    if let Some(path) = &args.plaintext_file {
        tracing::warn!(
            file = %path.display(),
            "DEVELOPMENT SOURCE: serving a plaintext file; this is NOT Secret Zero (the secret sits on disk). Use --secret or --ciphertext-file in production"
        );
        return Ok(AnySource::File(Arc::new(PlaintextFileSource {
            path: path.clone(),
            format: args.format(),
        })));
    }

    if let Some(definition) = &args.plaintext_env {
        tracing::warn!(
            definition = %definition.display(),
            env_file = args.env_file.as_ref().map(|p| p.display().to_string()),
            "MIGRATION SOURCE: serving plaintext from environment variables; this is NOT Secret Zero (the secret sits in the environment or a .env file). Move to --secret with a sealed ciphertext"
        );
        return Ok(AnySource::Env(Arc::new(PlaintextEnvSource {
            definition: definition.clone(),
            env_file: args.env_file.clone(),
        })));
    }
    let plain_kube = match (&args.plaintext_secret, &args.plaintext_configmap) {
        (Some(object), _) => Some((KubeObjectKind::Secret, object)),
        (None, Some(object)) => Some((KubeObjectKind::ConfigMap, object)),
        (None, None) => None,
    };
    if let Some((kind, object)) = plain_kube {
        let kind_name = match kind {
            KubeObjectKind::Secret => "a plain Kubernetes Secret",
            KubeObjectKind::ConfigMap => "a ConfigMap",
        };
        tracing::warn!(
            object = %object,
            "MIGRATION SOURCE: serving the plaintext of {kind_name}; this is NOT Secret Zero (the secret sits in etcd, readable by anyone who can read the object). Seal it with `secret-zero seal` and use --secret"
        );
        return Ok(AnySource::Kube(Arc::new(PlaintextKubeSource {
            kind,
            object: SecretRef::parse(object).map_err(Error::Usage)?,
            cluster: cluster(),
            backoff,
        })));
    }

    let ciphertext = match (&args.secret, &args.ciphertext_file) {
        (Some(secret), None) => {
            if args.transit.binding_context.is_some() {
                return Err(Error::usage(
                    "--binding-context goes with --ciphertext-file",
                    "with --secret the binding comes from the Secret's own namespace/name",
                ));
            }
            CiphertextAt::Secret {
                secret: SecretRef::parse(secret).map_err(Error::Usage)?,
                cluster: cluster(),
            }
        }
        (None, Some(path)) => CiphertextAt::File {
            path: path.clone(),
            binding_context: args.transit.binding_context.clone(),
        },
        _ => {
            return Err(Error::usage(
                "serve needs one source: --secret, --ciphertext-file, or (development and migration) --plaintext-file, --plaintext-env, --plaintext-secret or --plaintext-configmap",
                "in a pod, --secret NAMESPACE/NAME reads the ciphertext Secret",
            ));
        }
    };

    let login = args.login.spec().ok_or_else(|| {
        Error::usage(
            "serve needs --role (the Vault role to log in as)",
            "set --role or SECRET_ZERO_ROLE",
        )
    })?;
    let vault = vault::Client::new(&args.vault.config(false))?;
    Ok(AnySource::Vault(Arc::new(VaultSource {
        vault,
        login,
        ciphertext,
        transit: TransitFlags {
            mount: args.transit.transit_mount.clone(),
            key: args.transit.transit_key.clone(),
            binding: args.transit.binding,
            format: Some(FormatFlag {
                format: args.format(),
                explicit: args.format.is_some(),
            }),
        },
        format: args.format(),
        backoff,
    })))
}
