//! Writing one rewrapped ciphertext back into its Secret, guarded by the
//! `resourceVersion` it was read at. A 409 means someone changed the Secret since: it
//! is read again, rewrapped again from what it holds now, and written again, a bounded
//! number of times. Their change is kept; ours is never a blind overwrite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::failure::Hinted;
use crate::fault::Fault;
use crate::kube::{KubeError, Secret, Secrets};
use crate::retry::{Backoff, retry};
use crate::secret_format;
use crate::vault::{self, BatchItem, VaultToken};

use super::target::{Target, target_of};

/// Writes after the first that a Secret may need before the run gives up on it.
pub const CONFLICT_ATTEMPTS: u32 = 5;

/// What every write task shares.
pub(super) struct Shared {
    pub vault: vault::Client,
    pub token: VaultToken,
    pub secrets: Secrets,
    pub mount: String,
    pub key: String,
    pub backoff: Backoff,
    /// Transit rewrap requests made (batches and single retries).
    pub rewraps: AtomicU64,
}

impl Shared {
    /// One `rewrap` request with `batch_input`, transient faults retried.
    pub async fn rewrap_batch(
        &self,
        items: &[BatchItem],
    ) -> Result<Vec<Result<String, String>>, Fault> {
        let answer = retry("transit rewrap", self.backoff, || {
            self.rewraps.fetch_add(1, Ordering::Relaxed);
            self.vault
                .rewrap_batch(&self.token, &self.mount, &self.key, items)
        })
        .await?;
        Ok(answer)
    }

    /// Read one Secret, transient faults retried.
    pub async fn get_secret(&self, namespace: &str, name: &str) -> Result<Secret, KubeError> {
        retry("get secret", self.backoff, || {
            self.secrets.get(namespace, name)
        })
        .await
    }

    /// One ciphertext, after a conflict.
    async fn rewrap_one(&self, target: &Target) -> Result<String, Fault> {
        let ciphertext = retry("transit rewrap", self.backoff, || {
            self.rewraps.fetch_add(1, Ordering::Relaxed);
            self.vault.rewrap(
                &self.token,
                &self.mount,
                &self.key,
                &target.ciphertext,
                target.context.as_deref(),
            )
        })
        .await?;
        Ok(ciphertext)
    }
}

/// How one Secret ended.
#[derive(Debug)]
pub(super) enum Written {
    /// Stored with a ciphertext at the target version.
    Rewrapped,
    /// Found at the target version on a re-read: someone else got there first.
    Unchanged,
    /// Deleted or moved off this key meanwhile.
    Skipped(String),
    /// The one-line reason.
    Failed(String),
}

/// A write task's result.
#[derive(Debug)]
pub(super) struct WriteOutcome {
    pub name: String,
    pub written: Written,
    pub conflicts: u64,
}

/// Store `ciphertext` (already rewrapped to `version`) in `target`'s Secret.
pub(super) async fn write_back(
    shared: Arc<Shared>,
    target: Target,
    ciphertext: String,
    version: u64,
) -> WriteOutcome {
    let name = target.name.clone();
    let mut conflicts = 0;
    let written = write_loop(&shared, target, ciphertext, version, &mut conflicts).await;
    WriteOutcome {
        name,
        written,
        conflicts,
    }
}

async fn write_loop(
    shared: &Shared,
    mut target: Target,
    mut ciphertext: String,
    version: u64,
    conflicts: &mut u64,
) -> Written {
    for attempt in 1..=CONFLICT_ATTEMPTS {
        secret_format::set_ciphertext(&mut target.object, &target.data_key, &ciphertext);
        let object = &target.object;
        let error = match retry("update secret", shared.backoff, || {
            shared.secrets.replace(object)
        })
        .await
        {
            Ok(_) => {
                tracing::debug!(secret = %target.name, from = target.version, to = version, "rewrapped");
                return Written::Rewrapped;
            }
            Err(e @ KubeError::Conflict { .. }) => e,
            Err(e) => return Written::Failed(Fault::from(e).one_line()),
        };
        *conflicts += 1;
        if attempt == CONFLICT_ATTEMPTS {
            return Written::Failed(format!(
                "{} (gave up after {CONFLICT_ATTEMPTS} attempts)",
                Fault::from(error).one_line()
            ));
        }
        tracing::info!(secret = %target.name, attempt, "the Secret changed while we worked on it: reading it again");
        let (namespace, secret_name) = target.name.split_once('/').unwrap_or(("", ""));
        let fresh = match shared.get_secret(namespace, secret_name).await {
            Ok(fresh) => fresh,
            Err(KubeError::NotFound { .. }) => {
                return Written::Skipped("deleted while the run worked on it".into());
            }
            Err(e) => return Written::Failed(Fault::from(e).one_line()),
        };
        target = match target_of(fresh, &target.origin, &shared.mount, &shared.key) {
            Ok(Some(fresh)) => fresh,
            Ok(None) => {
                return Written::Skipped("moved off this key while the run worked on it".into());
            }
            Err(e) => return Written::Failed(e.one_line()),
        };
        if target.version >= version {
            return Written::Unchanged;
        }
        ciphertext = match shared.rewrap_one(&target).await {
            Ok(ciphertext) => ciphertext,
            Err(e) => return Written::Failed(e.one_line()),
        };
    }
    unreachable!("the loop returns on its last attempt")
}
