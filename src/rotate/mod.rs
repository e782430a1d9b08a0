//! Key rotation for the ciphertexts secret-zero keeps in Secrets (ARCHITECTURE.md, I10).
//!
//! One run: read the key, find the Secrets under it, rotate the key once, rewrap every
//! ciphertext that is behind in `batch_input` requests (Vault does the work: the
//! rotator never sees plaintext), write each Secret back with the `resourceVersion` it
//! was read at, and, with `--retire`, raise `min_decryption_version` once a fresh
//! cluster-wide list proves that no Secret under the key still needs an older version.
//!
//! The order is the crash-safety argument. Old versions stay decryptable until the
//! retire step; every Secret holds either its old ciphertext or its new one; the
//! retire step trusts nothing this run remembers and re-reads every namespace. So a
//! SIGKILL at any moment leaves everything decryptable, and running again converges.

mod report;
mod retire;
mod target;
mod write;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::task::JoinSet;

use crate::exit;
use crate::failure::Hinted;
use crate::fault::Fault;
use crate::kube::Secrets;
use crate::retry::{Backoff, retry};
use crate::secret_format::{self, SecretRef};
use crate::vault::{self, BatchItem, KeyInfo, VaultToken};

pub use report::Report;
use target::{Origin, Target, target_of};

use write::{Shared, WriteOutcome, Written};

/// Secrets written back at the same time. Enough to hide the API server's latency,
/// few enough not to look like a flood to it.
pub const WRITE_CONCURRENCY: usize = 16;

/// The label every secret-zero Secret carries.
pub fn managed_selector() -> String {
    format!(
        "{}={}",
        secret_format::MANAGED_BY_LABEL,
        secret_format::MANAGED_BY_VALUE
    )
}

/// Where labelled Secrets are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Nowhere: only the Secrets named with `--secret`.
    NamedOnly,
    Namespace(String),
    AllNamespaces,
}

/// What to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mount: String,
    pub key: String,
    pub scope: Scope,
    /// Extra label selector, ANDed with the `managed-by` label.
    pub selector: Option<String>,
    /// Secrets named with `--secret` (the old layout).
    pub named: Vec<SecretRef>,
    pub rotate: bool,
    pub retire: bool,
    pub trim: bool,
    pub dry_run: bool,
    pub batch_size: usize,
    pub backoff: Backoff,
}

/// How a run ended: the report to print, and either the exit code of a run that went
/// to its end (`OK`, `SECRETS_FAILED`, `RETIRE_REFUSED`) or the failure that stopped it.
pub struct Outcome {
    pub report: Report,
    pub result: Result<i32, Fault>,
}

/// A rotation over one key.
pub struct Rotator {
    shared: Arc<Shared>,
    plan: Plan,
    /// Ciphertexts per rewrap request: `--batch-size`, lowered if Vault refuses it.
    batch_limit: AtomicUsize,
}

impl Rotator {
    pub fn new(vault: vault::Client, token: VaultToken, secrets: Secrets, plan: Plan) -> Rotator {
        Rotator {
            shared: Arc::new(Shared {
                vault,
                token,
                secrets,
                mount: plan.mount.trim_matches('/').to_string(),
                key: plan.key.clone(),
                backoff: plan.backoff,
                rewraps: AtomicU64::new(0),
            }),
            batch_limit: AtomicUsize::new(plan.batch_size),
            plan,
        }
    }

    /// An empty report for this plan.
    pub fn report(plan: &Plan) -> Report {
        Report {
            transit_mount: plan.mount.clone(),
            transit_key: plan.key.clone(),
            dry_run: plan.dry_run,
            ..Report::default()
        }
    }

    /// Run the rotation. Never panics on a failure: it ends in the outcome.
    pub async fn run(&self) -> Outcome {
        let start = Instant::now();
        let mut report = Rotator::report(&self.plan);
        let result = self.steps(&mut report).await;
        report.rewrap_requests = self.shared.rewraps.load(Ordering::Relaxed);
        report.vault_requests = self.shared.vault.requests();
        report.kube_requests = self.shared.secrets.requests();
        report.duration_ms = start.elapsed().as_millis() as u64;
        if let Err(e) = &result {
            report.error = Some(e.one_line());
        }
        Outcome { report, result }
    }

    async fn read_key(&self) -> Result<KeyInfo, Fault> {
        let s = &self.shared;
        Ok(retry("read transit key", s.backoff, || {
            s.vault.read_key(&s.token, &s.mount, &s.key)
        })
        .await?)
    }

    async fn steps(&self, report: &mut Report) -> Result<i32, Fault> {
        let s = &self.shared;
        let mut key = self.read_key().await?;
        report.key_version_before = Some(key.latest_version);
        let (targets, unreadable) = self.discover().await?;
        report.secrets_scanned = (targets.len() + unreadable.len()) as u64;
        for (name, line) in unreadable {
            fail(report, &name, &line);
        }

        if self.plan.dry_run {
            return self.dry_run(&key, targets, report).await;
        }

        if self.plan.rotate {
            // A retry after a lost answer may rotate twice: one spare version, no harm.
            retry("rotate transit key", s.backoff, || {
                s.vault.rotate_key(&s.token, &s.mount, &s.key)
            })
            .await?;
            report.rotated = true;
            let before = key.latest_version;
            key = self.read_key().await?;
            tracing::info!(
                key = %format!("{}/{}", s.mount, s.key),
                from = before,
                to = key.latest_version,
                "key rotated"
            );
        }
        let version = key.latest_version;
        report.key_version_after = Some(version);

        let (pending, current): (Vec<Target>, Vec<Target>) =
            targets.into_iter().partition(|t| t.version < version);
        report.to_rewrap = pending.len() as u64;
        report.unchanged = current.len() as u64;
        tracing::info!(
            to_rewrap = pending.len(),
            already_current = current.len(),
            version,
            "rewrapping ciphertexts that are behind the latest key version"
        );
        self.rewrap_all(pending, version, report).await?;

        if report.failed > 0 {
            if self.plan.retire {
                tracing::error!(
                    failed = report.failed,
                    "not retiring old key versions: some Secrets failed and may still need them"
                );
            }
            return Ok(exit::SECRETS_FAILED);
        }
        if self.plan.retire {
            return self.retire(version, report).await;
        }
        Ok(exit::OK)
    }

    /// Every Secret under the key in scope, by `namespace/name`, and the ones that are
    /// under it but unusable (with the reason).
    async fn discover(&self) -> Result<(Vec<Target>, Vec<(String, String)>), Fault> {
        let s = &self.shared;
        let mut found: BTreeMap<String, Target> = BTreeMap::new();
        let mut unreadable: BTreeMap<String, String> = BTreeMap::new();
        let mut other_keys = 0usize;
        let namespace = match &self.plan.scope {
            Scope::NamedOnly => None,
            Scope::Namespace(ns) => Some(Some(ns.as_str())),
            Scope::AllNamespaces => Some(None),
        };
        if let Some(namespace) = namespace {
            let mut selector = managed_selector();
            if let Some(extra) = self.plan.selector.as_deref().filter(|x| !x.is_empty()) {
                selector = format!("{selector},{extra}");
            }
            let listed = retry("list secrets", s.backoff, || {
                s.secrets.list(namespace, &selector)
            })
            .await?;
            for secret in listed {
                let name = target::name_of(&secret);
                match target_of(secret, &Origin::Labelled, &s.mount, &s.key) {
                    Ok(Some(target)) => {
                        found.insert(name, target);
                    }
                    Ok(None) => other_keys += 1,
                    Err(e) => {
                        unreadable.insert(name, e.one_line());
                    }
                }
            }
        }
        for reference in &self.plan.named {
            let name = format!("{}/{}", reference.namespace, reference.name);
            let secret = match s.get_secret(&reference.namespace, &reference.name).await {
                Ok(secret) => secret,
                Err(e) => {
                    unreadable.insert(name, Fault::from(e).one_line());
                    continue;
                }
            };
            match target_of(secret, &target::named(reference), &s.mount, &s.key) {
                Ok(Some(target)) => {
                    unreadable.remove(&name);
                    found.insert(name, target);
                }
                Ok(None) => {}
                Err(e) => {
                    found.remove(&name);
                    unreadable.insert(name, e.one_line());
                }
            }
        }
        tracing::info!(
            key = %format!("{}/{}", s.mount, s.key),
            scope = %match &self.plan.scope {
                Scope::NamedOnly => "the named Secrets".to_string(),
                Scope::Namespace(ns) => format!("namespace {ns}"),
                Scope::AllNamespaces => "all namespaces".to_string(),
            },
            found = found.len() + unreadable.len(),
            other_keys,
            "Secrets found under the key"
        );
        Ok((
            found.into_values().collect(),
            unreadable.into_iter().collect(),
        ))
    }

    /// Rewrap `pending` in batches (bound and unbound ciphertexts apart: Vault wants a
    /// context in every item of a batch or in none) and write each back.
    async fn rewrap_all(
        &self,
        pending: Vec<Target>,
        version: u64,
        report: &mut Report,
    ) -> Result<(), Fault> {
        let total = pending.len();
        let (bound, unbound): (Vec<Target>, Vec<Target>) =
            pending.into_iter().partition(|t| t.context.is_some());
        let mut batches: Vec<Vec<Target>> = Vec::new();
        for group in [unbound, bound] {
            let mut group = group.into_iter().peekable();
            while group.peek().is_some() {
                batches.push(group.by_ref().take(self.plan.batch_size).collect());
            }
        }
        let count = batches.len();
        let mut done = 0usize;
        for (index, batch) in batches.into_iter().enumerate() {
            let items: Vec<BatchItem> = batch
                .iter()
                .map(|t| BatchItem {
                    ciphertext: t.ciphertext.clone(),
                    context: t.context.clone(),
                })
                .collect();
            let results = self.rewrap_adaptive(&items).await?;
            drop(items);
            let size = batch.len();
            let mut writes = JoinSet::new();
            for (target, result) in batch.into_iter().zip(results) {
                let ciphertext = match result {
                    Ok(ciphertext) => ciphertext,
                    Err(message) => {
                        let line = format!(
                            "Transit refused to rewrap it: {message} (hint: check its binding annotation, and that its ciphertext was made with this key and is not older than min_decryption_version)"
                        );
                        fail(report, &target.name, &line);
                        continue;
                    }
                };
                if writes.len() >= WRITE_CONCURRENCY
                    && let Some(joined) = writes.join_next().await
                {
                    tally(report, joined);
                }
                writes.spawn(write::write_back(
                    self.shared.clone(),
                    target,
                    ciphertext,
                    version,
                ));
            }
            while let Some(joined) = writes.join_next().await {
                tally(report, joined);
            }
            done += size;
            tracing::info!(
                batch = index + 1,
                batches = count,
                done,
                total,
                "batch {}/{count}: {done}/{total} Secrets done",
                index + 1
            );
        }
        Ok(())
    }

    /// Rewrap `items`, in smaller requests if Vault finds the batch too big: OpenBao's
    /// listener refuses a body of more than `max_request_json_strings` (1,000 by default,
    /// so 249 bound or 499 unbound ciphertexts). A size that was refused once is not
    /// tried again in this run.
    async fn rewrap_adaptive(
        &self,
        items: &[BatchItem],
    ) -> Result<Vec<Result<String, String>>, Fault> {
        let mut results = Vec::with_capacity(items.len());
        let mut start = 0;
        while start < items.len() {
            let size = self.batch_limit.load(Ordering::Relaxed).max(1);
            let end = (start + size).min(items.len());
            match self.shared.rewrap_batch(&items[start..end]).await {
                Ok(answers) => {
                    results.extend(answers);
                    start = end;
                }
                Err(e) if end - start > 1 && too_big(&e) => {
                    let smaller = (end - start) / 2;
                    tracing::warn!(
                        refused = end - start,
                        retry_with = smaller,
                        "Vault refused a rewrap batch as too big; splitting it (lower --batch-size to avoid this)"
                    );
                    self.batch_limit.store(smaller, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(results)
    }

    /// What a real run would do, touching nothing.
    async fn dry_run(
        &self,
        key: &KeyInfo,
        targets: Vec<Target>,
        report: &mut Report,
    ) -> Result<i32, Fault> {
        let s = &self.shared;
        let version = key.latest_version + u64::from(self.plan.rotate);
        report.key_version_after = Some(version);
        let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
        for target in &targets {
            if target.version < version {
                report.to_rewrap += 1;
                tracing::info!(secret = %target.name, from = target.version, to = version, "dry run: would rewrap");
            } else {
                report.unchanged += 1;
            }
        }
        tracing::info!(
            rotate = self.plan.rotate,
            key = %format!("{}/{}", s.mount, s.key),
            from = key.latest_version,
            to = version,
            to_rewrap = report.to_rewrap,
            "dry run: nothing rotated, written or retired"
        );
        if report.failed > 0 {
            return Ok(exit::SECRETS_FAILED);
        }
        if self.plan.retire {
            // Secrets this run would rewrap are no obstacle; any other one behind is.
            let blockers = self.laggards(version, &names).await?;
            if !blockers.is_empty() {
                for blocker in &blockers {
                    tracing::error!(secret = %blocker, version, "dry run: --retire would refuse: this Secret is outside the run and behind");
                }
                report.laggards = blockers;
                return Ok(exit::RETIRE_REFUSED);
            }
            tracing::info!(
                version,
                "dry run: --retire would retire the versions below this one"
            );
        }
        Ok(exit::OK)
    }
}

/// Whether Vault refused a request for its size rather than its content.
fn too_big(error: &Fault) -> bool {
    match error {
        Fault::Vault(vault::VaultError::InvalidRequest {
            status, message, ..
        }) => {
            (*status == 400 || *status == 413)
                && (message.contains("high complexity")
                    || message.contains("exceeded maximum")
                    || message.contains("too large"))
        }
        _ => false,
    }
}

/// Count a failed Secret and name it in the log.
fn fail(report: &mut Report, name: &str, line: &str) {
    tracing::error!(secret = %name, "{name}: {line}");
    report.failed += 1;
    report.failures.push(name.to_string());
}

/// Count a finished write.
fn tally(report: &mut Report, joined: Result<WriteOutcome, tokio::task::JoinError>) {
    let outcome = match joined {
        Ok(outcome) => outcome,
        Err(e) => {
            fail(report, "(a write task)", &format!("internal error: {e}"));
            return;
        }
    };
    report.conflicts_retried += outcome.conflicts;
    match outcome.written {
        Written::Rewrapped => report.rewrapped += 1,
        Written::Unchanged => {
            report.unchanged += 1;
            tracing::info!(secret = %outcome.name, "already at the latest version when read again: left as is");
        }
        Written::Skipped(why) => {
            report.skipped += 1;
            tracing::warn!(secret = %outcome.name, "skipped: {why}");
        }
        Written::Failed(line) => fail(report, &outcome.name, &line),
    }
}
