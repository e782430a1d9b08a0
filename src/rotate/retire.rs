//! `--retire` and `--trim`: raise the key's minimum versions once nothing needs the old
//! ones, proved by a fresh look at every namespace rather than by what this run did.

use std::collections::HashSet;

use crate::failure::Hinted;
use crate::fault::Fault;
use crate::kube::KubeError;
use crate::retry::retry;
use crate::vault::KeyConfig;

use super::report::Laggard;
use super::target::{Origin, name_of, named, target_of};
use super::{Listing, Report, Rotator, managed_selector};
use crate::exit;

impl Rotator {
    /// Secrets under the key, in any namespace (plus the `--secret` ones), that are
    /// behind `version` or unreadable, leaving out those named in `except`. Reads
    /// everything afresh.
    pub(super) async fn laggards(
        &self,
        version: u64,
        except: &HashSet<String>,
        report: &mut Report,
    ) -> Result<Vec<Laggard>, Fault> {
        let s = &self.shared;
        let mut laggards = Vec::new();
        let mut check = |name: String, origin: &Origin, secret| {
            if except.contains(&name) {
                return;
            }
            match target_of(secret, origin, &s.mount, &s.key) {
                Ok(None) => {}
                Ok(Some(target)) if target.version >= version => {}
                Ok(Some(target)) => laggards.push(Laggard {
                    name,
                    why: format!("v{}", target.version),
                }),
                Err(e) => laggards.push(Laggard {
                    name,
                    why: format!("unreadable: {}", e.one_line()),
                }),
            }
        };
        // Page by page; after an expired continue token the list starts again (a
        // Secret seen twice is named once: the list is deduplicated below).
        let mut listing = Listing::new(None, managed_selector(), self.plan.page_size);
        loop {
            let page = listing.next_page(self, report).await.inspect_err(|e| {
                if matches!(e, Fault::Kube(KubeError::Forbidden { .. })) {
                    tracing::error!("--retire must see every namespace to prove no Secret still needs an old key version: grant list on secrets cluster-wide (a ClusterRole)");
                }
            })?;
            for secret in page {
                check(name_of(&secret), &Origin::Labelled, secret);
            }
            if listing.done() {
                break;
            }
        }
        for reference in &self.plan.named {
            match s.get_secret(&reference.namespace, &reference.name).await {
                Ok(secret) => check(name_of(&secret), &named(reference), secret),
                // Gone: it needs no key version any more.
                Err(KubeError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        laggards.sort();
        laggards.dedup();
        Ok(laggards)
    }

    /// Retire the versions below `version` if no Secret anywhere is behind it; then
    /// trim them if asked.
    pub(super) async fn retire(&self, version: u64, report: &mut Report) -> Result<i32, Fault> {
        let s = &self.shared;
        let laggards = self.laggards(version, &HashSet::new(), report).await?;
        if !laggards.is_empty() {
            for laggard in &laggards {
                tracing::error!(secret = %laggard, version, "behind the latest key version");
            }
            tracing::error!(
                count = laggards.len(),
                version,
                "--retire refused: these Secrets still need older key versions; rewrap them (rotate --no-rotate over their namespaces) and retire again"
            );
            report.laggards = laggards;
            return Ok(exit::RETIRE_REFUSED);
        }

        let key = self.read_key().await?;
        let min_decryption = key.min_decryption_version.max(version);
        // Trim needs a minimum encryption version too; the latest is what encrypt uses anyway.
        let min_encryption = key.min_encryption_version.max(version);
        if key.min_decryption_version < min_decryption
            || key.min_encryption_version < min_encryption
        {
            let config = KeyConfig {
                min_decryption_version: Some(min_decryption),
                min_encryption_version: Some(min_encryption),
            };
            retry("configure transit key", s.backoff, || {
                s.vault.configure_key(&s.token, &s.mount, &s.key, config)
            })
            .await?;
            tracing::info!(
                min_decryption_version = min_decryption,
                "retired the key versions below {min_decryption}: ciphertexts made with them no longer decrypt"
            );
        } else {
            tracing::info!(
                min_decryption_version = key.min_decryption_version,
                "old key versions already retired"
            );
        }
        report.retired_to = Some(min_decryption);

        if self.plan.trim {
            let floor = min_decryption.min(min_encryption);
            if key.min_available_version < floor {
                retry("trim transit key", s.backoff, || {
                    s.vault.trim_key(&s.token, &s.mount, &s.key, floor)
                })
                .await?;
                tracing::info!(
                    min_available_version = floor,
                    "trimmed the retired key versions: they are deleted for good"
                );
            }
            report.trimmed_to = Some(floor.max(key.min_available_version));
        }
        Ok(exit::OK)
    }
}
