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

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::task::JoinSet;

use crate::exit;
use crate::failure::Hinted;
use crate::fault::Fault;
use crate::kube::{Secret, Secrets};
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
    /// Secrets a list request asks for at once (`limit`).
    pub page_size: u32,
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
        // Writes finish in any order: the report names the failures in a stable one.
        report.failures.sort();
        report.rewrap_requests = self.shared.rewraps.load(Ordering::Relaxed);
        report.vault_requests = self.shared.vault.requests();
        report.kube_requests = self.shared.secrets.requests();
        report.duration_ms = start.elapsed().as_millis() as u64;
        report.peak_rss_kib = peak_rss_kib();
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
        // Names of the Secrets already seen (handled or found under another key), so
        // that a `--secret` one is not done twice and a restarted list skips them.
        let mut seen: HashSet<String> = HashSet::new();
        let named = self.read_named(&mut seen, report).await;
        // The first page before anything changes: a forbidden or unreachable list
        // fails here, with the key as it was.
        let mut listing = self.listing();
        let first = match listing.as_mut() {
            Some(listing) => Some(listing.next_page(self, report).await?),
            None => None,
        };

        if self.plan.dry_run {
            return self
                .dry_run(&key, named, listing, first, seen, report)
                .await;
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

        let mut other_keys = 0u64;
        self.process(named, version, report).await?;
        if let (Some(listing), Some(first)) = (listing.as_mut(), first) {
            let mut page = Some(first);
            while let Some(secrets) = page.take() {
                let targets = self.targets_of(secrets, &mut seen, &mut other_keys, report);
                self.process(targets, version, report).await?;
                if !listing.done() {
                    page = Some(listing.next_page(self, report).await?);
                }
            }
        }
        tracing::info!(
            key = %format!("{}/{}", s.mount, s.key),
            scope = %self.scope_text(),
            found = report.secrets_scanned,
            rewrapped = report.rewrapped,
            other_keys,
            pages = report.list_pages,
            "Secrets found under the key"
        );

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

    fn scope_text(&self) -> String {
        match &self.plan.scope {
            Scope::NamedOnly => "the named Secrets".to_string(),
            Scope::Namespace(ns) => format!("namespace {ns}"),
            Scope::AllNamespaces => "all namespaces".to_string(),
        }
    }

    /// The paged list of labelled Secrets in scope, if the scope has one.
    fn listing(&self) -> Option<Listing> {
        let namespace = match &self.plan.scope {
            Scope::NamedOnly => return None,
            Scope::Namespace(ns) => Some(ns.clone()),
            Scope::AllNamespaces => None,
        };
        let mut selector = managed_selector();
        if let Some(extra) = self.plan.selector.as_deref().filter(|x| !x.is_empty()) {
            selector = format!("{selector},{extra}");
        }
        Some(Listing::new(namespace, selector, self.plan.page_size))
    }

    /// The `--secret` Secrets under the key; the unusable ones are counted as failed.
    /// Each is marked seen, so the labelled list does not do it again.
    async fn read_named(&self, seen: &mut HashSet<String>, report: &mut Report) -> Vec<Target> {
        let s = &self.shared;
        let mut found: BTreeMap<String, Target> = BTreeMap::new();
        for reference in &self.plan.named {
            let name = format!("{}/{}", reference.namespace, reference.name);
            if !seen.insert(name.clone()) {
                continue;
            }
            let secret = match s.get_secret(&reference.namespace, &reference.name).await {
                Ok(secret) => secret,
                Err(e) => {
                    report.secrets_scanned += 1;
                    fail(report, &name, &Fault::from(e).one_line());
                    continue;
                }
            };
            match target_of(secret, &target::named(reference), &s.mount, &s.key) {
                Ok(Some(target)) => {
                    report.secrets_scanned += 1;
                    found.insert(name, target);
                }
                Ok(None) => {}
                Err(e) => {
                    report.secrets_scanned += 1;
                    fail(report, &name, &e.one_line());
                }
            }
        }
        found.into_values().collect()
    }

    /// The Secrets of one page under the key that were not seen before; the unusable
    /// ones are counted as failed.
    fn targets_of(
        &self,
        secrets: Vec<Secret>,
        seen: &mut HashSet<String>,
        other_keys: &mut u64,
        report: &mut Report,
    ) -> Vec<Target> {
        let s = &self.shared;
        let mut targets = Vec::new();
        for secret in secrets {
            let name = target::name_of(&secret);
            if !seen.insert(name.clone()) {
                continue;
            }
            match target_of(secret, &Origin::Labelled, &s.mount, &s.key) {
                Ok(Some(target)) => {
                    report.secrets_scanned += 1;
                    targets.push(target);
                }
                Ok(None) => *other_keys += 1,
                Err(e) => {
                    report.secrets_scanned += 1;
                    fail(report, &name, &e.one_line());
                }
            }
        }
        targets
    }

    /// Rewrap and write back the targets behind `version`; count the others unchanged.
    async fn process(
        &self,
        targets: Vec<Target>,
        version: u64,
        report: &mut Report,
    ) -> Result<(), Fault> {
        let (pending, current): (Vec<Target>, Vec<Target>) =
            targets.into_iter().partition(|t| t.version < version);
        report.to_rewrap += pending.len() as u64;
        report.unchanged += current.len() as u64;
        drop(current);
        if pending.is_empty() {
            return Ok(());
        }
        tracing::info!(
            to_rewrap = pending.len(),
            version,
            page = report.list_pages,
            "rewrapping ciphertexts that are behind the latest key version"
        );
        self.rewrap_all(pending, version, report).await
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
        named: Vec<Target>,
        mut listing: Option<Listing>,
        first: Option<Vec<Secret>>,
        mut seen: HashSet<String>,
        report: &mut Report,
    ) -> Result<i32, Fault> {
        let s = &self.shared;
        let version = key.latest_version + u64::from(self.plan.rotate);
        report.key_version_after = Some(version);
        let mut other_keys = 0u64;
        let count = |targets: Vec<Target>, report: &mut Report| {
            for target in targets {
                if target.version < version {
                    report.to_rewrap += 1;
                    tracing::info!(secret = %target.name, from = target.version, to = version, "dry run: would rewrap");
                } else {
                    report.unchanged += 1;
                }
            }
        };
        count(named, report);
        if let (Some(listing), Some(first)) = (listing.as_mut(), first) {
            let mut page = Some(first);
            while let Some(secrets) = page.take() {
                let targets = self.targets_of(secrets, &mut seen, &mut other_keys, report);
                count(targets, report);
                if !listing.done() {
                    page = Some(listing.next_page(self, report).await?);
                }
            }
        }
        tracing::info!(
            rotate = self.plan.rotate,
            key = %format!("{}/{}", s.mount, s.key),
            from = key.latest_version,
            to = version,
            to_rewrap = report.to_rewrap,
            pages = report.list_pages,
            "dry run: nothing rotated, written or retired"
        );
        if report.failed > 0 {
            return Ok(exit::SECRETS_FAILED);
        }
        if self.plan.retire {
            // Secrets this run would rewrap are no obstacle; any other one behind is.
            let blockers = self.laggards(version, &seen, report).await?;
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

/// Continue tokens that may expire in one run before it gives up.
pub const MAX_LIST_RESTARTS: u32 = 10;

/// A paged list of labelled Secrets, one page in memory at a time. An expired continue
/// token (410 Expired, after an etcd compaction) starts the list again from the
/// beginning; the caller skips what it has already seen.
struct Listing {
    namespace: Option<String>,
    selector: String,
    page_size: u32,
    next: Option<String>,
    done: bool,
    restarts: u32,
}

impl Listing {
    fn new(namespace: Option<String>, selector: String, page_size: u32) -> Listing {
        Listing {
            namespace,
            selector,
            page_size,
            next: None,
            done: false,
            restarts: 0,
        }
    }

    /// Whether the last page has been read.
    fn done(&self) -> bool {
        self.done
    }

    /// The next page (transient faults and 429 retried, honouring `Retry-After`).
    async fn next_page(
        &mut self,
        rotator: &Rotator,
        report: &mut Report,
    ) -> Result<Vec<Secret>, Fault> {
        let s = &rotator.shared;
        loop {
            let token = self.next.clone();
            let answer = retry("list secrets", s.backoff, || {
                s.secrets.page(
                    self.namespace.as_deref(),
                    &self.selector,
                    self.page_size,
                    token.as_deref(),
                )
            })
            .await;
            match answer {
                Ok(page) => {
                    report.list_pages += 1;
                    self.done = page.next.is_none();
                    self.next = page.next;
                    return Ok(page.items);
                }
                Err(e)
                    if e.is_expired() && token.is_some() && self.restarts < MAX_LIST_RESTARTS =>
                {
                    self.restarts += 1;
                    report.list_restarts += 1;
                    tracing::warn!(
                        restart = self.restarts,
                        pages = report.list_pages,
                        "the list's continue token expired (410 Expired): restarting the list from the beginning; Secrets already handled are skipped"
                    );
                    self.next = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The process's peak resident set (`VmHWM` of /proc/self/status), where there is one.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
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
