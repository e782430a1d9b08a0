//! `seal --apply`: read the Secret before any Vault work (a cluster we cannot reach
//! costs no encryption), write it with `resourceVersion` (a concurrent change is a
//! 409: re-read, merge, retry, bounded), and verify twice: the fresh ciphertext
//! before anything is written (so a sealer that cannot decrypt changes nothing), and
//! the Secret read back from the cluster after. When the read-back check fails the
//! Secret is put back as it was, or deleted if seal created it; both writes are
//! conditional on our own `resourceVersion`, so a change someone made since is never
//! undone.

use super::{Request, Sealed, Sealer, WRITE_ATTEMPTS, check_size, log_done, verify_note};
use crate::failure::Hinted;
use crate::fault::Fault;
use crate::kube::{KubeError, Secret, Secrets};
use crate::plaintext::Plaintext;
use crate::retry::retry;
use crate::secret_format;

/// `existing` with our label, annotations and ciphertext from `fresh`; every other
/// label, annotation, data key and field is kept as it is.
pub fn merge(existing: &Secret, fresh: &Secret) -> Secret {
    let mut merged = existing.clone();
    for (ours, theirs) in [
        (&fresh.metadata.labels, &mut merged.metadata.labels),
        (
            &fresh.metadata.annotations,
            &mut merged.metadata.annotations,
        ),
    ] {
        let theirs = theirs.get_or_insert_with(Default::default);
        for (k, v) in ours.iter().flatten() {
            theirs.insert(k.clone(), v.clone());
        }
    }
    let data = merged.data.get_or_insert_with(Default::default);
    for (k, v) in fresh.data.iter().flatten() {
        data.insert(k.clone(), v.clone());
    }
    merged
}

/// Whether secret-zero manages `secret` (its `app.kubernetes.io/managed-by` label).
fn managed(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(secret_format::MANAGED_BY_LABEL))
        .is_some_and(|v| v == secret_format::MANAGED_BY_VALUE)
}

/// An existing Secret that secret-zero does not manage is written only with `--adopt`:
/// it may belong to someone else, and its other data keys may hold plaintext. Checked
/// on the Secret as first read (before any Vault work) and on every re-read.
pub fn check_ownership(r: &Request, current: Option<&Secret>) -> Result<(), Fault> {
    match current {
        Some(existing) if !managed(existing) && !r.adopt => Err(Fault::input(
            format!(
                "Secret {} exists and is not managed by secret-zero (no label {}={}); nothing was written",
                r.object(),
                secret_format::MANAGED_BY_LABEL,
                secret_format::MANAGED_BY_VALUE
            ),
            "seal into another --name, or pass --adopt to take it over (its data keys that are not Transit ciphertexts are removed)",
        )),
        _ => Ok(()),
    }
}

/// The data keys of an adopted Secret that must go: everything but the ciphertext we
/// write and other Transit ciphertexts (the old tool's `secrets.json`), which hold no
/// plaintext. A Secret secret-zero manages keeps its other keys as they are.
fn plaintext_keys(existing: &Secret, data_key: &str) -> Vec<String> {
    if managed(existing) {
        return Vec::new();
    }
    existing
        .data
        .iter()
        .flatten()
        .filter(|(k, v)| *k != data_key && secret_format::parse_ciphertext(&v.0).is_err())
        .map(|(k, _)| k.clone())
        .chain(
            existing
                .string_data
                .iter()
                .flatten()
                .map(|(k, _)| k.clone()),
        )
        .collect()
}

/// Whether `secret` holds `ciphertext` under `data_key`.
fn carries(secret: &Secret, data_key: &str, ciphertext: &str) -> bool {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(data_key))
        .is_some_and(|v| secret_format::parse_ciphertext(&v.0).is_ok_and(|c| c == ciphertext))
}

/// The Secrets API that seal reads and writes through.
pub struct Cluster {
    pub secrets: Secrets,
}

impl Cluster {
    pub fn new(client: kube::Client) -> Cluster {
        Cluster {
            secrets: Secrets::new(client),
        }
    }

    /// Read the Secret as it is now (`None`: it does not exist). Called before anything
    /// is sealed, so an unreachable or forbidden cluster fails before any Vault work.
    pub async fn read(&self, r: &Request) -> Result<Option<Secret>, Fault> {
        let (ns, name) = (&r.secret.namespace, &r.secret.name);
        match retry("kubernetes get", r.backoff, || self.secrets.get(ns, name)).await {
            Ok(secret) => Ok(Some(secret)),
            Err(KubeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// What `--apply` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    /// Taken over with `--adopt`; `removed` names the data keys that held no
    /// ciphertext and were taken out (their values are never shown).
    Adopted {
        removed: Vec<String>,
    },
}

impl Applied {
    pub fn as_str(&self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
            Applied::Adopted { .. } => "adopted",
        }
    }

    /// The line `seal --apply` prints: `secret/NAME created`, and for an adoption the
    /// data keys removed.
    pub fn line(&self, name: &str) -> String {
        match self {
            Applied::Adopted { removed } if !removed.is_empty() => format!(
                "secret/{name} adopted (removed data keys that were not sealed: {})\n",
                removed.join(", ")
            ),
            other => format!("secret/{name} {}\n", other.as_str()),
        }
    }
}

/// Seal `document` into the cluster's Secret. `current` is the Secret as read by
/// [`Cluster::read`] (`None`: it does not exist).
pub async fn apply(
    sealer: &Sealer<'_>,
    cluster: &Cluster,
    current: Option<Secret>,
    document: &Plaintext,
) -> Result<Applied, Fault> {
    let r = sealer.request;
    let sealed = sealer.seal(document).await?;
    if r.verify {
        // Before any write: a sealer that cannot decrypt leaves the cluster untouched.
        sealer
            .verify(&sealed.secret, document)
            .await
            .map_err(|e| e.context(verify_note("nothing was written")))?;
    }
    let (prior, written) = write(cluster, r, current, &sealed).await?;
    let applied = match &prior {
        None => Applied::Created,
        Some(prior) if !managed(prior) => Applied::Adopted {
            removed: plaintext_keys(prior, r.data_key()),
        },
        Some(_) => Applied::Updated,
    };
    if let Applied::Adopted { removed } = &applied
        && !removed.is_empty()
    {
        tracing::warn!(
            secret = %r.object(),
            removed = %removed.join(","),
            "adopted: data keys that held no ciphertext were removed, so no plaintext stays beside the ciphertext"
        );
    }
    tracing::info!(
        secret = %r.object(),
        resource_version = written.metadata.resource_version.as_deref().unwrap_or(""),
        "Secret {}",
        applied.as_str()
    );
    if r.verify {
        let checked = match cluster.read(r).await {
            Ok(Some(back)) if carries(&back, r.data_key(), &sealed.ciphertext) => {
                sealer.verify(&back, document).await
            }
            Ok(Some(_)) => Err(Fault::Kube(KubeError::Conflict {
                object: r.object(),
                message: "someone changed the Secret right after seal wrote it".into(),
            })),
            Ok(None) => Err(Fault::Kube(KubeError::Conflict {
                object: r.object(),
                message: "someone deleted the Secret right after seal wrote it".into(),
            })),
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            let outcome = match restore(cluster, r, prior.as_ref(), &written).await {
                Ok(done) => done.to_string(),
                Err(why) => format!("it could NOT be put back: {}", why.one_line()),
            };
            tracing::error!(secret = %r.object(), "verification of the written Secret failed; {outcome}");
            return Err(e.context(format!(
                "verifying Secret {} as written failed, and {outcome}",
                r.object()
            )));
        }
    }
    log_done(r, &sealed, applied.as_str());
    Ok(applied)
}

/// Create or update the Secret, retrying lost races. Returns the object the write was
/// based on (`None`: created) and the object as written.
async fn write(
    cluster: &Cluster,
    r: &Request,
    mut current: Option<Secret>,
    sealed: &Sealed,
) -> Result<(Option<Secret>, Secret), Fault> {
    let mut attempt = 1;
    loop {
        let result = match &current {
            None => {
                let fresh = &sealed.secret;
                retry("kubernetes create", r.backoff, || {
                    cluster.secrets.create(fresh)
                })
                .await
            }
            Some(existing) => {
                check_ownership(r, Some(existing))?;
                let mut desired = merge(existing, &sealed.secret);
                for key in plaintext_keys(existing, r.data_key()) {
                    desired.data.iter_mut().for_each(|d| {
                        d.remove(&key);
                    });
                    desired.string_data.iter_mut().for_each(|d| {
                        d.remove(&key);
                    });
                }
                check_size(&desired, &r.object())?;
                retry("kubernetes replace", r.backoff, || {
                    cluster.secrets.replace(&desired)
                })
                .await
            }
        };
        let error = match result {
            Ok(written) => return Ok((current, written)),
            Err(
                e @ (KubeError::Conflict { .. }
                | KubeError::AlreadyExists { .. }
                | KubeError::NotFound { .. }),
            ) => e,
            Err(e) => return Err(e.into()),
        };
        if attempt >= WRITE_ATTEMPTS {
            // A race the retries did not settle is a conflict, whichever way it was
            // lost (changed, deleted or created under us).
            let lost = match error {
                KubeError::Conflict { .. } => error,
                other => KubeError::Conflict {
                    object: r.object(),
                    message: other.to_string(),
                },
            };
            return Err(
                Fault::from(lost).context(format!("gave up after {WRITE_ATTEMPTS} attempts"))
            );
        }
        tracing::warn!(
            secret = %r.object(),
            attempt,
            error = %error,
            "the Secret changed while sealing; re-reading it and trying again"
        );
        attempt += 1;
        let now = cluster.read(r).await?;
        // A write that timed out may have landed: our ciphertext (unique to this run)
        // is there, so the write is done and `current` is still what it was based on.
        if let Some(now) = now
            .as_ref()
            .filter(|s| carries(s, r.data_key(), &sealed.ciphertext))
        {
            return Ok((current, now.clone()));
        }
        current = now;
    }
}

/// Undo our write: put `prior` back, or delete what we created. Both are conditional on
/// the `resourceVersion` we wrote, so a change made since by someone else is kept.
async fn restore(
    cluster: &Cluster,
    r: &Request,
    prior: Option<&Secret>,
    written: &Secret,
) -> Result<&'static str, Fault> {
    let rv = written.metadata.resource_version.clone();
    match prior {
        Some(prior) => {
            let mut back = prior.clone();
            back.metadata.resource_version = rv;
            back.metadata.managed_fields = None;
            retry("kubernetes replace", r.backoff, || {
                cluster.secrets.replace(&back)
            })
            .await?;
            tracing::warn!(secret = %r.object(), "Secret put back as it was before seal");
            Ok("it was put back as it was")
        }
        None => {
            retry("kubernetes delete", r.backoff, || {
                cluster.secrets.delete_exact(written)
            })
            .await?;
            tracing::warn!(secret = %r.object(), "Secret deleted: it did not exist before seal");
            Ok("it was deleted again, as it did not exist before")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_format::Transit;
    use k8s_openapi::ByteString;

    #[test]
    fn merging_keeps_what_is_not_ours() {
        let mut existing = Secret::default();
        existing.metadata.namespace = Some("shop".into());
        existing.metadata.name = Some("app".into());
        existing.metadata.resource_version = Some("7".into());
        existing.metadata.labels = Some([("team".to_string(), "blue".to_string())].into());
        existing.metadata.annotations = Some(
            [
                ("note".to_string(), "keep".to_string()),
                (secret_format::ANN_BINDING.to_string(), "none".to_string()),
            ]
            .into(),
        );
        existing.data = Some([("other".to_string(), ByteString(b"x".to_vec()))].into());
        let transit = Transit {
            mount: "transit".into(),
            key: "k".into(),
            context: Some("shop/app".into()),
        };
        let fresh = secret_format::build_secret(
            &super::super::target("shop", "app", "ciphertext").unwrap(),
            &transit,
            "vault:v1:abc",
            "json",
        );
        let merged = merge(&existing, &fresh);
        assert_eq!(merged.metadata.resource_version.as_deref(), Some("7"));
        let labels = merged.metadata.labels.unwrap();
        assert_eq!(labels["team"], "blue");
        assert_eq!(
            labels[secret_format::MANAGED_BY_LABEL],
            secret_format::MANAGED_BY_VALUE
        );
        let annotations = merged.metadata.annotations.unwrap();
        assert_eq!(annotations["note"], "keep");
        assert_eq!(annotations[secret_format::ANN_BINDING], "identity");
        let data = merged.data.unwrap();
        assert_eq!(data["other"].0, b"x");
        assert_eq!(data["ciphertext"].0, b"vault:v1:abc");
    }
}
