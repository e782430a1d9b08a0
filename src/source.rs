//! Where the agent's plaintext comes from: Vault Transit (the product), or a plaintext
//! file, environment, or plain Kubernetes Secret/ConfigMap (development and migration
//! only, in [`dev`], and each says so loudly).
//!
//! Each [`VaultSource::fetch`] is a whole, fresh cycle: read the ciphertext, read the
//! ServiceAccount token file, log in, decrypt, revoke. Nothing survives between two
//! fetches but configuration (DESIGN §2.3, §2.4).

mod dev;

pub use dev::{KubeObjectKind, PlaintextEnvSource, PlaintextKubeSource, parse_env, read_env_file};

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::de::IgnoredAny;

use crate::error::Error;
use crate::kube::{ClusterSource, Secrets};
use crate::plaintext::Plaintext;
use crate::retry::{Backoff, retry};
use crate::sealed::{self, Binding, SecretRef, Transit, TransitFlags};
use crate::vault::{self, AuthMethod};

/// What the plaintext must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A JSON object.
    JsonObject,
    /// Anything.
    Raw,
}

/// Where the ciphertext lives.
#[derive(Debug, Clone)]
pub enum CiphertextAt {
    /// A Secret read through the Kubernetes API.
    Secret {
        secret: SecretRef,
        cluster: ClusterSource,
    },
    /// A file with the raw `vault:vN:...` text (a mounted Secret volume). The binding
    /// context, which a volume cannot carry, comes from a flag.
    File {
        path: PathBuf,
        binding_context: Option<String>,
    },
}

/// How to log in.
#[derive(Debug, Clone)]
pub struct LoginSpec {
    pub method: AuthMethod,
    pub mount: String,
    pub role: String,
    pub token_file: PathBuf,
}

/// A plaintext and the key version its ciphertext was made with.
pub struct Fetched {
    pub plaintext: Plaintext,
    pub key_version: Option<u64>,
}

/// Decrypts with Vault Transit using the pod's ServiceAccount identity.
pub struct VaultSource {
    pub vault: vault::Client,
    pub login: LoginSpec,
    pub ciphertext: CiphertextAt,
    pub transit: TransitFlags,
    pub shape: Shape,
    pub backoff: Backoff,
}

impl VaultSource {
    /// One full cycle: ciphertext, login, decrypt, revoke, shape check.
    ///
    /// The ciphertext is read before logging in so that a slow or failing Kubernetes
    /// API never eats into the Vault token's short TTL, and no token is made for
    /// nothing.
    pub async fn fetch(&self) -> Result<Fetched, Error> {
        let (ciphertext, transit) = self.read_ciphertext().await?;
        let key_version = vault::ciphertext_version(&ciphertext);

        let jwt = read_jwt(&self.login.token_file)?;
        let login = retry("vault login", self.backoff, || {
            self.vault
                .login(self.login.method, &self.login.mount, &self.login.role, &jwt)
        })
        .await?;
        drop(jwt);
        tracing::info!(
            accessor = %login.accessor,
            policies = ?login.policies,
            ttl_s = login.lease_duration,
            "logged in to Vault"
        );

        let decrypted = retry("transit decrypt", self.backoff, || {
            self.vault.decrypt(
                &login.token,
                &transit.mount,
                &transit.key,
                &ciphertext,
                transit.context.as_deref(),
            )
        })
        .await;

        // Revoke whatever happened: the token must not outlive its one job.
        match self.vault.revoke_self(&login.token).await {
            Ok(()) => tracing::info!(accessor = %login.accessor, "Vault token revoked"),
            Err(e) => tracing::warn!(
                accessor = %login.accessor,
                error = %e,
                "could not revoke the Vault token; it expires with its TTL"
            ),
        }
        drop(login);

        let plaintext = decrypted?;
        check_shape(&plaintext, self.shape)?;
        Ok(Fetched {
            plaintext,
            key_version,
        })
    }

    async fn read_ciphertext(&self) -> Result<(String, Transit), Error> {
        match &self.ciphertext {
            CiphertextAt::Secret { secret, cluster } => {
                let (client, _) = crate::kube::connect(cluster).await?;
                let secrets = Secrets::new(client);
                let object = retry("read Secret", self.backoff, || {
                    secrets.get(&secret.namespace, &secret.name)
                })
                .await?;
                let sealed = sealed::read(&object, secret.data_key.as_deref())?;
                let transit = sealed::resolve(&sealed, &self.transit)?;
                Ok((sealed.ciphertext, transit))
            }
            CiphertextAt::File {
                path,
                binding_context,
            } => {
                let bytes = std::fs::read(path).map_err(|e| {
                    Error::input(
                        format!("cannot read the ciphertext file {}: {e}", path.display()),
                        "mount the Secret as a volume at that path, or use --secret",
                    )
                })?;
                let ciphertext = sealed::parse_ciphertext(&bytes).map_err(|why| {
                    Error::input(
                        format!("ciphertext file {} {why}", path.display()),
                        "the file must hold the raw vault:vN:... text",
                    )
                })?;
                let transit = file_transit(&self.transit, binding_context.as_deref())?;
                Ok((ciphertext, transit))
            }
        }
    }
}

/// Transit settings for a ciphertext file: flags only, since a volume has no annotations.
fn file_transit(flags: &TransitFlags, binding_context: Option<&str>) -> Result<Transit, Error> {
    let key = flags.key.clone().ok_or_else(|| {
        Error::input(
            "--ciphertext-file needs --transit-key",
            "a mounted Secret volume carries no annotations: name the key with --transit-key",
        )
    })?;
    let context = match (flags.binding, binding_context) {
        (Some(Binding::None), Some(_)) => {
            return Err(Error::input(
                "--binding none contradicts --binding-context",
                "drop one of them",
            ));
        }
        (Some(Binding::Identity), None) => {
            return Err(Error::input(
                "--binding identity with --ciphertext-file needs --binding-context NAMESPACE/NAME",
                "give the namespace/name of the Secret the ciphertext was sealed for",
            ));
        }
        (_, Some(context)) => {
            let parsed = SecretRef::parse(context).map_err(|_| {
                Error::input(
                    format!("invalid --binding-context {context:?}"),
                    "write it as NAMESPACE/NAME",
                )
            })?;
            Some(parsed.context())
        }
        (_, None) => None,
    };
    Ok(Transit {
        mount: flags
            .mount
            .clone()
            .unwrap_or_else(|| sealed::DEFAULT_TRANSIT_MOUNT.to_string()),
        key,
        context,
    })
}

/// Read the ServiceAccount token, fresh from the file each time (kubelet rotates it),
/// and refuse an empty or expired one with a message that says so.
pub fn read_jwt(path: &Path) -> Result<SecretString, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::input(
            format!(
                "cannot read the ServiceAccount token {}: {e}",
                path.display()
            ),
            "mount a projected ServiceAccount token (audience vault) there, or pass --token-file",
        )
    })?;
    let jwt = SecretString::from(text.trim().to_string());
    drop(zeroize::Zeroizing::new(text));
    let token = secrecy::ExposeSecret::expose_secret(&jwt);
    if token.is_empty() {
        return Err(Error::input(
            format!("the ServiceAccount token {} is empty", path.display()),
            "kubelet writes it when the pod starts; check the projected volume",
        ));
    }
    if let Some(exp) = jwt_expiry(token)
        && exp < now_secs()
    {
        return Err(Error::input(
            format!(
                "the ServiceAccount token {} expired {} s ago",
                path.display(),
                now_secs() - exp
            ),
            "kubelet refreshes projected tokens; a stale file means the volume is not a projected token",
        ));
    }
    Ok(jwt)
}

/// The `exp` claim of a JWT, read without verifying it: only to explain a failure early.
fn jwt_expiry(jwt: &str) -> Option<i64> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: Option<i64>,
    }
    serde_json::from_slice::<Claims>(&bytes).ok()?.exp
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Check the plaintext is what the application was promised, without copying it into
/// a parsed tree.
pub fn check_shape(plaintext: &Plaintext, shape: Shape) -> Result<(), Error> {
    if shape == Shape::Raw {
        return Ok(());
    }
    let bytes = plaintext.expose();
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let is_object = first == Some(&b'{') && serde_json::from_slice::<IgnoredAny>(bytes).is_ok();
    if !is_object {
        return Err(Error::input(
            "the decrypted document is not a JSON object",
            "seal a JSON object, or serve opaque bytes with --format raw",
        ));
    }
    Ok(())
}

/// DEVELOPMENT ONLY: a plaintext JSON or YAML file, read afresh at each fetch.
pub struct PlaintextFileSource {
    pub path: PathBuf,
    pub shape: Shape,
}

impl PlaintextFileSource {
    pub fn fetch(&self) -> Result<Fetched, Error> {
        let mut bytes = zeroize::Zeroizing::new(std::fs::read(&self.path).map_err(|e| {
            Error::input(
                format!(
                    "cannot read the plaintext file {}: {e}",
                    self.path.display()
                ),
                "check the path given to --plaintext-file",
            )
        })?);
        // No `check_shape` afterwards: `document_to_json` only returns a JSON object,
        // and any bytes pass as raw.
        let plaintext = match self.shape {
            Shape::Raw => Plaintext::new(std::mem::take(&mut *bytes)),
            Shape::JsonObject => document_to_json(&bytes, &self.path)?,
        };
        Ok(Fetched {
            plaintext,
            key_version: None,
        })
    }
}

/// A JSON document as is, or YAML converted to JSON. Errors give the position, never
/// the content.
pub fn document_to_json(bytes: &[u8], path: &Path) -> Result<Plaintext, Error> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return serde_json::from_slice::<IgnoredAny>(bytes)
            .map(|_| Plaintext::new(bytes.to_vec()))
            .map_err(|e| {
                Error::input(
                    format!(
                        "{} is not valid JSON (line {}, column {})",
                        path.display(),
                        e.line(),
                        e.column()
                    ),
                    "fix the document; its content is not shown here on purpose",
                )
            });
    }
    // The same YAML reading as `seal`: positions in errors, never content.
    crate::seal::yaml_mapping(bytes, &path.display().to_string())
}
