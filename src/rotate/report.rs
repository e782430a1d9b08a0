//! The one JSON line `rotate` prints on stdout when it ends, for the CronJob's log and
//! for alerting.

use serde::Serialize;

/// What a run did. Counts are of Secrets under the key, not of all Secrets listed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub transit_mount: String,
    pub transit_key: String,
    pub dry_run: bool,
    /// Secrets found under the key (readable or not).
    pub secrets_scanned: u64,
    /// Of those, the ones behind the target version when scanned.
    pub to_rewrap: u64,
    /// Written back with a rewrapped ciphertext.
    pub rewrapped: u64,
    /// Already at the target version: not written.
    pub unchanged: u64,
    /// Deleted, or moved off this key, while the run worked on them.
    pub skipped: u64,
    /// Could not be read, rewrapped or written (each named in the log and in `failures`).
    pub failed: u64,
    /// Writes that met a 409, were re-read, rewrapped again and retried.
    pub conflicts_retried: u64,
    pub rotated: bool,
    pub key_version_before: Option<u64>,
    pub key_version_after: Option<u64>,
    /// min_decryption_version after a successful `--retire`.
    pub retired_to: Option<u64>,
    /// min_available_version after a successful `--trim`.
    pub trimmed_to: Option<u64>,
    /// Secrets that kept `--retire` from retiring (`namespace/name`; the reason is on
    /// each one's log line).
    pub laggards: Vec<Laggard>,
    /// Secrets that failed (`namespace/name`).
    pub failures: Vec<String>,
    /// Transit rewrap requests (batches and conflict retries).
    pub rewrap_requests: u64,
    /// Every Vault request, login included.
    pub vault_requests: u64,
    /// Every Kubernetes API request.
    pub kube_requests: u64,
    /// List requests answered with a page (restarts included).
    pub list_pages: u64,
    /// Lists started again because a continue token expired (410 Expired).
    pub list_restarts: u64,
    /// The process's peak resident set (VmHWM), at the end of the run.
    pub peak_rss_kib: Option<u64>,
    pub duration_ms: u64,
    /// The error that stopped the run early, if one did.
    pub error: Option<String>,
}

/// A Secret that keeps `--retire` from retiring, and why. The report names it
/// (`namespace/name`, as the failures are named); the log line says why (`Display`:
/// `namespace/name (why)`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Laggard {
    pub name: String,
    /// `v3` (the key version it is at), or `unreadable: ...`.
    pub why: String,
}

impl std::fmt::Display for Laggard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.why)
    }
}

impl Serialize for Laggard {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl Report {
    /// The line of a run whose command line could not be parsed: what is known of the
    /// key, and the usage error.
    pub fn usage_error(transit_mount: String, transit_key: String, error: String) -> Report {
        Report {
            transit_mount,
            transit_key,
            error: Some(error),
            ..Report::default()
        }
    }

    /// The summary as one line of JSON.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laggards_are_named_as_namespace_slash_name() {
        let report = Report {
            laggards: vec![Laggard {
                name: "bank/vault-door".into(),
                why: "v1".into(),
            }],
            ..Report::default()
        };
        let line: serde_json::Value = serde_json::from_str(&report.to_line()).unwrap();
        assert_eq!(line["laggards"], serde_json::json!(["bank/vault-door"]));
        assert_eq!(report.laggards[0].to_string(), "bank/vault-door (v1)");
    }
}
