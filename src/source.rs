//! Where the agent's plaintext comes from: Vault Transit (the product), or a plaintext
//! file, environment, or plain Kubernetes Secret/ConfigMap (development and migration
//! only, in [`dev`], and each says so loudly).
//!
//! Each [`VaultSource::fetch`] is a whole, fresh cycle: read the ciphertext, read the
//! ServiceAccount token file, log in, decrypt, revoke. Nothing survives between two
//! fetches but configuration (ARCHITECTURE.md, I5–I7).

mod dev;

pub use dev::{KubeObjectKind, PlaintextEnvSource, PlaintextKubeSource, parse_env};

use std::path::PathBuf;

use crate::agent::DocFormat;
use crate::document;
use crate::fault::Fault;
use crate::kube::{ClusterSource, Secrets};
use crate::plaintext::Plaintext;
use crate::retry::{Backoff, retry};
use crate::secret_format::{self, Binding, SecretRef, Transit, TransitFlags};
use crate::vault::{self, LoginSpec, Session};

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
    pub format: DocFormat,
    pub backoff: Backoff,
}

impl VaultSource {
    /// One full cycle: ciphertext and login at the same time, then decrypt, revoke,
    /// format check.
    ///
    /// Reading the Secret and logging in overlap: on the Kubernetes path that takes
    /// the slower of the two off the start-up, not their sum. A token minted for a
    /// Secret that then cannot be read is revoked at once, and the error is the
    /// Secret's.
    pub async fn fetch(&self) -> Result<Fetched, Fault> {
        let (plaintext, key_version, session) = self.decrypt().await?;
        // Revoke whatever the check says: the token must not outlive its one job. A
        // token whose one use was this decrypt is already gone (`close_after`).
        session.close_after(1).await;
        check_format(&plaintext, self.format)?;
        Ok(Fetched {
            plaintext,
            key_version,
        })
    }

    /// [`fetch`](Self::fetch) for the start-up copy: the checked plaintext, and the
    /// session whose token still has to be revoked (when the login left it uses to
    /// spare), so that the agent can report ready first and revoke beside the first
    /// request. A document that fails the check has its token revoked here.
    pub async fn fetch_first(&self) -> Result<(Fetched, Session), Fault> {
        let (plaintext, key_version, session) = self.decrypt().await?;
        if let Err(e) = check_format(&plaintext, self.format) {
            session.close_after(1).await;
            return Err(e);
        }
        let fetched = Fetched {
            plaintext,
            key_version,
        };
        Ok((fetched, session))
    }

    /// Read the ciphertext and log in at the same time, then decrypt. On any failure
    /// the token is revoked before the error is returned.
    async fn decrypt(&self) -> Result<(Plaintext, Option<u64>, Session), Fault> {
        let (read, login) = tokio::join!(
            self.read_ciphertext(),
            Session::login(&self.vault, &self.login, self.backoff)
        );
        let (ciphertext, transit) = match read {
            Ok(found) => found,
            Err(e) => {
                if let Ok(session) = login {
                    session.close().await;
                }
                return Err(e);
            }
        };
        let key_version = vault::ciphertext_version(&ciphertext);
        let session = login?;
        let decrypted = retry("transit decrypt", self.backoff, || {
            session.vault().decrypt(
                session.token(),
                &transit.mount,
                &transit.key,
                &ciphertext,
                transit.context.as_deref(),
            )
        })
        .await;
        match decrypted {
            Ok(plaintext) => Ok((plaintext, key_version, session)),
            Err(e) => {
                session.close().await;
                Err(e.into())
            }
        }
    }

    async fn read_ciphertext(&self) -> Result<(String, Transit), Fault> {
        match &self.ciphertext {
            CiphertextAt::Secret { secret, cluster } => {
                let (client, _) = crate::kube::connect(cluster).await?;
                let secrets = Secrets::new(client);
                let object = retry("read Secret", self.backoff, || {
                    secrets.get(&secret.namespace, &secret.name)
                })
                .await?;
                let sealed = secret_format::read(&object, secret.data_key.as_deref())?;
                let transit = secret_format::resolve(&sealed, &self.transit)?;
                Ok((sealed.ciphertext, transit))
            }
            CiphertextAt::File {
                path,
                binding_context,
            } => {
                let bytes = std::fs::read(path).map_err(|e| {
                    Fault::input(
                        format!("cannot read the ciphertext file {}: {e}", path.display()),
                        "mount the Secret as a volume at that path, or use --secret",
                    )
                })?;
                let ciphertext = secret_format::parse_ciphertext(&bytes).map_err(|why| {
                    Fault::input(
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
fn file_transit(flags: &TransitFlags, binding_context: Option<&str>) -> Result<Transit, Fault> {
    let key = flags.key.clone().ok_or_else(|| {
        Fault::input(
            "--ciphertext-file needs --transit-key",
            "a mounted Secret volume carries no annotations: name the key with --transit-key",
        )
    })?;
    let context = match (flags.binding, binding_context) {
        (Some(Binding::None), Some(_)) => {
            return Err(Fault::input(
                "--binding none contradicts --binding-context",
                "drop one of them",
            ));
        }
        (Some(Binding::Identity), None) => {
            return Err(Fault::input(
                "--binding identity with --ciphertext-file needs --binding-context NAMESPACE/NAME",
                "give the namespace/name of the Secret the ciphertext was sealed for",
            ));
        }
        (_, Some(context)) => {
            let parsed = SecretRef::parse(context).map_err(|_| {
                Fault::input(
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
            .unwrap_or_else(|| crate::env::DEFAULT_TRANSIT_MOUNT.to_string()),
        key,
        context,
    })
}

/// Check the plaintext is what the application was promised, without copying it into
/// a parsed tree. The JSON rules are the same as everywhere (duplicate keys refused);
/// the message never says more than "not a JSON object".
pub fn check_format(plaintext: &Plaintext, format: DocFormat) -> Result<(), Fault> {
    if format == DocFormat::Raw {
        return Ok(());
    }
    if secret_zero_client::check_object(plaintext.expose()).is_err() {
        return Err(Fault::input(
            "the decrypted document is not a JSON object",
            "seal a JSON object, or serve opaque bytes with --format raw",
        ));
    }
    Ok(())
}

/// DEVELOPMENT ONLY: a plaintext JSON or YAML file, read afresh at each fetch.
pub struct PlaintextFileSource {
    pub path: PathBuf,
    pub format: DocFormat,
}

impl PlaintextFileSource {
    pub fn fetch(&self) -> Result<Fetched, Fault> {
        let mut bytes = zeroize::Zeroizing::new(std::fs::read(&self.path).map_err(|e| {
            Fault::input(
                format!(
                    "cannot read the plaintext file {}: {e}",
                    self.path.display()
                ),
                "check the path given to --plaintext-file",
            )
        })?);
        // No `check_format` afterwards: `parse_any` only returns a JSON object, and any
        // bytes pass as raw.
        let plaintext = match self.format {
            DocFormat::Raw => Plaintext::new(std::mem::take(&mut *bytes)),
            DocFormat::Json => document::parse_any(
                &bytes,
                &self.path.display().to_string(),
                &crate::env::DOCUMENT_LIMITS,
            )?,
        };
        Ok(Fetched {
            plaintext,
            key_version: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::Hinted;

    #[test]
    fn the_decrypted_document_check_refuses_duplicate_keys() {
        let check =
            |doc: &str| check_format(&Plaintext::new(doc.as_bytes().to_vec()), DocFormat::Json);
        assert!(check(r#"{"a":1,"b":{"c":2}}"#).is_ok());
        for doc in [
            r#"{"a":"sentinel-1","a":"sentinel-2"}"#,
            r#"{"a":{"b":"sentinel-1","b":"sentinel-2"}}"#,
            r#"["sentinel"]"#,
        ] {
            let line = check(doc).unwrap_err().one_line();
            assert!(
                line.starts_with("the decrypted document is not a JSON object"),
                "{line}"
            );
            assert!(!line.contains("sentinel"), "{line}");
        }
        // Raw documents are served as they are.
        let raw = Plaintext::new(br#"{"a":1,"a":2}"#.to_vec());
        assert!(check_format(&raw, DocFormat::Raw).is_ok());
    }

    #[test]
    fn a_plaintext_file_with_duplicate_keys_is_refused() {
        let dir = std::env::temp_dir().join(format!("sz-dup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [
            (
                "dup.json",
                "{\"k\": \"sentinel-1\",\n \"k\": \"sentinel-2\"}",
            ),
            ("dup.yaml", "k: sentinel-1\nk: sentinel-2\n"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let source = PlaintextFileSource {
                path: path.clone(),
                format: DocFormat::Json,
            };
            let Err(e) = source.fetch() else {
                panic!("{name}: a duplicate key was accepted")
            };
            let line = e.one_line();
            assert!(line.contains("duplicate key"), "{line}");
            assert!(!line.contains("sentinel"), "{line}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
