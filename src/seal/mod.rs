//! Sealing: a plaintext JSON document becomes a Transit ciphertext in the
//! self-describing Secret (see ARCHITECTURE.md, "The Secret that holds a ciphertext"),
//! printed as a manifest or applied to the cluster, then verified by decrypting what
//! was written.
//!
//! The document comes from [`crate::document`], held in [`Plaintext`], and is never
//! logged or echoed. [`Sealer`] chooses the binding, encrypts and verifies;
//! [`manifest`](manifest()) prints; [`apply()`] writes with `resourceVersion` and puts
//! the cluster back when the read-back check fails.

mod apply;
mod manifest;

pub use apply::{Cluster, apply, check_ownership};
pub use manifest::manifest;

use crate::document::{ManifestFormat, same_document};
use crate::failure::InputError;
use crate::fault::Fault;
use crate::kube::Secret;
use crate::plaintext::Plaintext;
use crate::retry::{Backoff, retry};
use crate::secret_format::{self, Binding, SecretRef, Transit, TransitFlags};
use crate::vault::{self, KeyInfo, VaultError, VaultToken};

/// Kubernetes refuses a Secret whose data (keys plus values) exceeds 1 MiB.
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// How many times a write that lost a race (409) is re-read and tried again.
pub const WRITE_ATTEMPTS: u32 = 5;

/// What `secret-zero.dev/format` says: seal only takes JSON objects.
const FORMAT_JSON: &str = "json";

/// The Secret a document is sealed for: namespace, name and data key, checked as the
/// API server would check them.
pub fn target(namespace: &str, name: &str, data_key: &str) -> Result<SecretRef, InputError> {
    SecretRef::parse(&format!("{namespace}/{name}#{data_key}")).map_err(|_| {
        InputError::new(
            format!("invalid Secret --namespace {namespace:?} --name {name:?} --data-key {data_key:?}"),
            "the namespace is a DNS label, the name a DNS subdomain (lower case, digits, '-', '.'), the data key letters, digits, '-', '_' or '.'",
        )
    })
}

/// The binding to seal with: the one asked for, else identity for a derived key and
/// none for a plain one. `key` is `None` when the key could not be read.
pub fn choose_binding(
    requested: Option<Binding>,
    key: Option<&KeyInfo>,
    mount: &str,
    key_name: &str,
) -> Result<Binding, InputError> {
    let Some(key) = key else {
        return requested.ok_or_else(|| {
            InputError::new(
                format!("cannot tell whether Transit key {mount}/keys/{key_name} is derived"),
                format!(
                    "grant the sealer `read` on {mount}/keys/{key_name}, or choose with --binding identity|none"
                ),
            )
        });
    };
    match (requested, key.derived) {
        (None | Some(Binding::Identity), true) => Ok(Binding::Identity),
        (None | Some(Binding::None), false) => Ok(Binding::None),
        (Some(Binding::Identity), false) => Err(InputError::new(
            format!(
                "--binding identity needs a derived Transit key, and {mount}/keys/{key_name} is not derived"
            ),
            format!(
                "create a derived key with `vault write -f {mount}/keys/NEW_KEY derived=true` and seal with --transit-key NEW_KEY (an existing key cannot become derived), or seal with --binding none"
            ),
        )),
        (Some(Binding::None), true) => Err(InputError::new(
            format!(
                "--binding none cannot be used with {mount}/keys/{key_name}: it is a derived key, which needs a context"
            ),
            "drop --binding (a derived key seals with identity), or seal with a key created without derived=true",
        )),
    }
}

/// The number of bytes Kubernetes counts against a Secret's 1 MiB: data keys plus values.
pub fn data_size(secret: &Secret) -> usize {
    let data = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.0.len());
    let string_data = secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len());
    data.chain(string_data).sum()
}

fn check_size(secret: &Secret, object: &str) -> Result<(), InputError> {
    let size = data_size(secret);
    if size <= MAX_SECRET_BYTES {
        return Ok(());
    }
    Err(InputError::new(
        format!(
            "Secret {object} would hold {size} bytes of data, more than the {MAX_SECRET_BYTES} (1 MiB) Kubernetes allows"
        ),
        "Transit ciphertext is about 4/3 of the document: seal a document under about 768 KiB (less what other data keys of the Secret take)",
    ))
}

/// Refuse before any Vault work a document whose ciphertext cannot fit: base64 alone
/// makes it 4/3 of the document.
pub fn check_document_size(document: &Plaintext, secret: &SecretRef) -> Result<(), InputError> {
    let key = secret
        .data_key
        .as_deref()
        .unwrap_or(secret_format::DATA_KEY);
    let least = document.len().div_ceil(3) * 4 + key.len();
    if least <= MAX_SECRET_BYTES {
        return Ok(());
    }
    Err(InputError::new(
        format!(
            "the document ({} bytes) is too large: its ciphertext would take at least {least} bytes of Secret {}/{}, more than the {MAX_SECRET_BYTES} (1 MiB) Kubernetes allows",
            document.len(),
            secret.namespace,
            secret.name
        ),
        "Transit ciphertext is about 4/3 of the document: seal a document under about 768 KiB",
    ))
}

/// What to seal with and how.
#[derive(Debug, Clone)]
pub struct Request {
    /// The Secret, with its data key set.
    pub secret: SecretRef,
    pub mount: String,
    pub key: String,
    /// `None`: identity for a derived key, none otherwise.
    pub binding: Option<Binding>,
    pub verify: bool,
    /// `--adopt`: take over an existing Secret that secret-zero does not manage.
    pub adopt: bool,
    pub backoff: Backoff,
}

impl Request {
    pub(crate) fn object(&self) -> String {
        format!("{}/{}", self.secret.namespace, self.secret.name)
    }

    pub(crate) fn data_key(&self) -> &str {
        self.secret
            .data_key
            .as_deref()
            .unwrap_or(secret_format::DATA_KEY)
    }
}

/// Encrypts and verifies with one Vault token.
pub struct Sealer<'a> {
    pub vault: &'a vault::Client,
    pub token: &'a VaultToken,
    pub request: &'a Request,
}

/// A sealed document: the fresh Secret and what it was sealed with.
pub struct Sealed {
    pub secret: Secret,
    pub ciphertext: String,
    pub binding: Binding,
    pub key_version: Option<u64>,
}

impl Sealer<'_> {
    /// Choose the binding (reading the key), encrypt, and build the Secret.
    pub async fn seal(&self, document: &Plaintext) -> Result<Sealed, Fault> {
        let r = self.request;
        let binding = self.binding().await?;
        let transit = Transit {
            mount: r.mount.clone(),
            key: r.key.clone(),
            context: match binding {
                Binding::Identity => Some(r.secret.context()),
                Binding::None => None,
            },
        };
        let encrypted = retry("vault encrypt", r.backoff, || {
            self.vault.encrypt(
                self.token,
                &r.mount,
                &r.key,
                document,
                transit.context.as_deref(),
            )
        })
        .await;
        let ciphertext = match encrypted {
            Ok(ciphertext) => ciphertext,
            Err(e @ VaultError::PermissionDenied { .. }) => {
                return Err(self.invalid_token(&e).await.unwrap_or_else(|| e.into()));
            }
            Err(e) => return Err(e.into()),
        };
        let key_version = vault::ciphertext_version(&ciphertext);
        tracing::info!(
            secret = %r.object(),
            mount = %r.mount,
            key = %r.key,
            key_version,
            binding = %binding.as_str(),
            bytes = document.len(),
            "document encrypted"
        );
        let secret = secret_format::build_secret(&r.secret, &transit, &ciphertext, FORMAT_JSON);
        check_size(&secret, &r.object())?;
        Ok(Sealed {
            secret,
            ciphertext,
            binding,
            key_version,
        })
    }

    /// After a permission denied: is it the token itself? Every valid token may look
    /// itself up (the default policy), so a refusal there too means the token is not
    /// valid (expired, revoked, mistyped), not that a policy lacks a grant.
    async fn invalid_token(&self, denied: &VaultError) -> Option<Fault> {
        match self.vault.lookup_self(self.token).await {
            Err(VaultError::PermissionDenied { path, message }) => Some(
                Fault::from(VaultError::LoginRefused {
                    path,
                    status: 403,
                    message,
                })
                .context(format!(
                    "the token was refused on {} too: it is not a valid token",
                    denied.path().unwrap_or("the request before")
                )),
            ),
            _ => None,
        }
    }

    async fn binding(&self) -> Result<Binding, Fault> {
        let r = self.request;
        let key = match retry("vault read key", r.backoff, || {
            self.vault.read_key(self.token, &r.mount, &r.key)
        })
        .await
        {
            Ok(key) => {
                tracing::info!(
                    mount = %r.mount,
                    key = %r.key,
                    derived = key.derived,
                    latest_version = key.latest_version,
                    "Transit key read"
                );
                Some(key)
            }
            Err(e @ VaultError::NotFound { .. }) => {
                return Err(Fault::from(e).context(format!(
                    "Transit key {:?} does not exist on mount {:?}; create it with `vault write -f {}/keys/{} derived=true`, or fix --transit-key/--transit-mount",
                    r.key, r.mount, r.mount, r.key
                )));
            }
            // The check only picks the default and explains a mismatch early; with an
            // explicit --binding, encrypting tells the same.
            Err(VaultError::PermissionDenied { path, .. }) if r.binding.is_some() => {
                tracing::warn!(%path, "cannot read the Transit key (permission denied); using --binding as given");
                None
            }
            Err(e @ VaultError::PermissionDenied { .. }) => {
                if let Some(invalid) = self.invalid_token(&e).await {
                    return Err(invalid);
                }
                return Err(Fault::from(e).context(
                    "seal reads the key to choose the binding: grant `read` on it, or pass --binding identity|none",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(choose_binding(r.binding, key.as_ref(), &r.mount, &r.key)?)
    }

    /// Decrypt the ciphertext in `secret` as `serve` would (data key and annotations,
    /// reconciled with our flags) and compare it with `document`.
    pub async fn verify(&self, secret: &Secret, document: &Plaintext) -> Result<(), Fault> {
        let r = self.request;
        let found = secret_format::read(secret, Some(r.data_key()))?;
        let flags = TransitFlags {
            mount: Some(r.mount.clone()),
            key: Some(r.key.clone()),
            binding: None,
            format: None,
        };
        let transit = secret_format::resolve(&found, &flags)?;
        let decrypted = retry("vault decrypt", r.backoff, || {
            self.vault.decrypt(
                self.token,
                &transit.mount,
                &transit.key,
                &found.ciphertext,
                transit.context.as_deref(),
            )
        })
        .await?;
        if !same_document(&decrypted, document) {
            return Err(Fault::Internal(format!(
                "the ciphertext in Secret {} decrypts to a different document",
                r.object()
            )));
        }
        Ok(())
    }
}

/// Seal `document` and render the Secret manifest; verified first unless asked not to.
pub async fn to_manifest(
    sealer: &Sealer<'_>,
    document: &Plaintext,
    format: ManifestFormat,
) -> Result<String, Fault> {
    let sealed = sealer.seal(document).await?;
    if sealer.request.verify {
        sealer
            .verify(&sealed.secret, document)
            .await
            .map_err(|e| e.context(verify_note("nothing was printed")))?;
    }
    log_done(sealer.request, &sealed, "printed");
    manifest(&sealed.secret, format)
}

fn log_done(r: &Request, sealed: &Sealed, action: &str) {
    tracing::info!(
        secret = %r.object(),
        data_key = %r.data_key(),
        mount = %r.mount,
        key = %r.key,
        key_version = sealed.key_version,
        binding = %sealed.binding.as_str(),
        verified = r.verify,
        action = %action,
        "sealed"
    );
}

fn verify_note(outcome: &str) -> String {
    format!(
        "verification (decrypting what was sealed) failed, so {outcome}; a sealer without decrypt permission can skip it with --no-verify"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Hinted;

    fn key(derived: bool) -> KeyInfo {
        serde_json::from_value(serde_json::json!({
            "name": "k", "type": "aes256-gcm96", "derived": derived,
            "latest_version": 1, "min_decryption_version": 1,
        }))
        .unwrap()
    }

    #[test]
    fn the_binding_follows_the_key() {
        let choose = |b, k: Option<&KeyInfo>| choose_binding(b, k, "transit", "k");
        assert_eq!(choose(None, Some(&key(true))).unwrap(), Binding::Identity);
        assert_eq!(choose(None, Some(&key(false))).unwrap(), Binding::None);
        let err = choose(Some(Binding::Identity), Some(&key(false)))
            .unwrap_err()
            .one_line();
        assert!(
            err.contains("vault write -f transit/keys/") && err.contains("derived=true"),
            "{err}"
        );
        assert!(choose(Some(Binding::None), Some(&key(true))).is_err());
        assert!(choose(None, None).is_err());
        assert_eq!(choose(Some(Binding::None), None).unwrap(), Binding::None);
    }

    #[test]
    fn oversized_documents_are_refused_before_vault() {
        let secret = target("shop", "app", "ciphertext").unwrap();
        assert!(check_document_size(&Plaintext::new(vec![b' '; 700 * 1024]), &secret).is_ok());
        let err = check_document_size(&Plaintext::new(vec![b' '; 1024 * 1024]), &secret)
            .unwrap_err()
            .one_line();
        assert!(err.contains("1 MiB"), "{err}");
    }
}
