//! The webhook's metrics, in the Prometheus text format (version 0.0.4) of
//! `prometheus-client`, the Prometheus project's Rust client.
//!
//! Every counter exists at 0 from the start (each outcome is registered before the
//! first review), so `rate()` and `increase()` see the first review of each kind.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `secret_zero_webhook_reviews_total` | counter | `outcome` |
//! | `secret_zero_webhook_namespace_reviews_total` | counter | `namespace`, `outcome` |
//! | `secret_zero_webhook_review_duration_seconds` | histogram | |
//! | `secret_zero_webhook_certificate_reloads_total` | counter | |
//! | `secret_zero_webhook_certificate_reload_failures_total` | counter | |
//! | `secret_zero_webhook_certificate_expiration_timestamp_seconds` | gauge | |
//!
//! The namespace comes from the review. Anyone who can reach the webhook's port can
//! send a review, so the label is bounded: at most [`MAX_NAMESPACES`] namespaces get a
//! series of their own, later ones and names that are not namespace names count as
//! `(other)`, and reviews without a namespace (bodies that are not reviews, objects
//! without one) as `(none)`.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::review::Decision;

/// The `Content-Type` of what [`Metrics::encode`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Namespaces with a series of their own; later ones count as `(other)`.
pub const MAX_NAMESPACES: usize = 200;
/// The `namespace` of reviews that name none.
pub const NO_NAMESPACE: &str = "(none)";
/// The `namespace` of reviews beyond [`MAX_NAMESPACES`] or with a name that is not one.
pub const OTHER_NAMESPACE: &str = "(other)";

/// Upper bounds of the latency buckets, in seconds. The API server waits 10 s by
/// default (`timeoutSeconds`) and 30 s at most.
const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How one request to `/mutate` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Allowed with a patch: the agent was added.
    Patched,
    /// Opted in, and already as `inject` would leave it: allowed, no patch.
    Unchanged,
    /// Not a pod's creation, or the pod did not opt in: allowed, no patch.
    Skipped,
    /// Refused: the pod's annotations cannot be used.
    Denied,
    /// Not answered with a review: a body that is not one, too large, too slow (4xx).
    Error,
}

impl Outcome {
    /// Every outcome, in the order they are registered.
    pub const ALL: [Outcome; 5] = [
        Outcome::Patched,
        Outcome::Unchanged,
        Outcome::Skipped,
        Outcome::Denied,
        Outcome::Error,
    ];

    /// The value of the `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Patched => "patched",
            Outcome::Unchanged => "unchanged",
            Outcome::Skipped => "skipped",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

impl From<&Decision> for Outcome {
    fn from(decision: &Decision) -> Outcome {
        match decision {
            Decision::Patched(_) => Outcome::Patched,
            Decision::Unchanged => Outcome::Unchanged,
            Decision::Skipped => Outcome::Skipped,
            Decision::Denied => Outcome::Denied,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct NamespaceLabels {
    namespace: String,
    outcome: &'static str,
}

/// The webhook's metrics; shared by the server, the certificate reloader and `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reviews: Family<OutcomeLabel, Counter>,
    namespace_reviews: Family<NamespaceLabels, Counter>,
    /// The namespaces that have series of their own.
    namespaces: Mutex<HashSet<String>>,
    duration: Histogram,
    reloads: Counter,
    reload_failures: Counter,
    expiration: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// All metrics registered, every counter at 0.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("secret_zero_webhook");
        let reviews = Family::<OutcomeLabel, Counter>::default();
        let namespace_reviews = Family::<NamespaceLabels, Counter>::default();
        let duration = Histogram::new(DURATION_BUCKETS);
        let reloads = Counter::default();
        let reload_failures = Counter::default();
        let expiration = Gauge::default();
        registry.register(
            "reviews",
            "Requests to /mutate, by how they ended",
            reviews.clone(),
        );
        registry.register(
            "namespace_reviews",
            "Requests to /mutate by namespace of the review and outcome (at most 200 namespaces; (other) beyond, (none) without one)",
            namespace_reviews.clone(),
        );
        registry.register_with_unit(
            "review_duration",
            "Time from a request to /mutate to its answer, whatever the outcome",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "certificate_reloads",
            "Changed certificate files loaded and served",
            reloads.clone(),
        );
        registry.register(
            "certificate_reload_failures",
            "Changed certificate files that could not be loaded (the previous pair kept serving)",
            reload_failures.clone(),
        );
        registry.register_with_unit(
            "certificate_expiration_timestamp",
            "notAfter of the served leaf certificate, in Unix seconds (0 if it cannot be read)",
            Unit::Seconds,
            expiration.clone(),
        );
        for outcome in Outcome::ALL {
            drop(reviews.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            }));
        }
        Metrics {
            registry,
            reviews,
            namespace_reviews,
            namespaces: Mutex::new(HashSet::new()),
            duration,
            reloads,
            reload_failures,
            expiration,
        }
    }

    /// One request to `/mutate` answered.
    pub fn review(&self, outcome: Outcome, namespace: &str, took: Duration) {
        self.reviews
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
        let namespace = self.namespace_label(namespace);
        self.namespace_reviews
            .get_or_create(&NamespaceLabels {
                namespace,
                outcome: outcome.as_str(),
            })
            .inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// The label for `namespace`; a namespace seen for the first time gets all its
    /// outcomes at 0, like the totals.
    fn namespace_label(&self, namespace: &str) -> String {
        if namespace.is_empty() {
            return NO_NAMESPACE.into();
        }
        if !is_namespace_name(namespace) {
            return OTHER_NAMESPACE.into();
        }
        let mut known = self
            .namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if known.contains(namespace) {
            return namespace.into();
        }
        if known.len() >= MAX_NAMESPACES {
            return OTHER_NAMESPACE.into();
        }
        known.insert(namespace.into());
        for outcome in Outcome::ALL {
            drop(self.namespace_reviews.get_or_create(&NamespaceLabels {
                namespace: namespace.into(),
                outcome: outcome.as_str(),
            }));
        }
        namespace.into()
    }

    /// The certificate first loaded: its leaf's notAfter (`None`: unreadable).
    pub fn certificate_loaded(&self, not_after: Option<i64>) {
        self.expiration.set(not_after.unwrap_or(0));
    }

    /// A changed certificate loaded and now served.
    pub fn certificate_reloaded(&self, not_after: Option<i64>) {
        self.reloads.inc();
        self.certificate_loaded(not_after);
    }

    /// Changed certificate files that could not be used.
    pub fn certificate_reload_failed(&self) {
        self.reload_failures.inc();
    }

    /// The text of `/metrics`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// A Kubernetes namespace name: a DNS-1123 label.
fn is_namespace_name(name: &str) -> bool {
    name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn every_counter_starts_at_zero() {
        let text = Metrics::new().encode();
        for outcome in Outcome::ALL {
            let series = format!(
                "secret_zero_webhook_reviews_total{{outcome=\"{}\"}}",
                outcome.as_str()
            );
            assert_eq!(value(&text, &series), Some(0.0), "{text}");
        }
        for series in [
            "secret_zero_webhook_certificate_reloads_total",
            "secret_zero_webhook_certificate_reload_failures_total",
            "secret_zero_webhook_review_duration_seconds_count",
        ] {
            assert_eq!(value(&text, series), Some(0.0), "{text}");
        }
    }

    #[test]
    fn the_namespace_label_is_bounded() {
        let metrics = Metrics::new();
        for i in 0..MAX_NAMESPACES + 50 {
            metrics.review(Outcome::Patched, &format!("ns-{i}"), Duration::ZERO);
        }
        metrics.review(Outcome::Error, "", Duration::ZERO);
        metrics.review(Outcome::Denied, "Not_A_Namespace", Duration::ZERO);
        metrics.review(Outcome::Denied, &"x".repeat(64), Duration::ZERO);
        let text = metrics.encode();
        // Each admitted namespace has all five outcomes; plus (other) and (none).
        let namespace_series = text
            .lines()
            .filter(|l| l.starts_with("secret_zero_webhook_namespace_reviews_total{"))
            .count();
        assert_eq!(namespace_series, MAX_NAMESPACES * Outcome::ALL.len() + 3);
        let series = |ns: &str, outcome: &str| {
            value(
                &text,
                &format!(
                    "secret_zero_webhook_namespace_reviews_total{{namespace=\"{ns}\",outcome=\"{outcome}\"}}"
                ),
            )
        };
        assert_eq!(series("ns-0", "patched"), Some(1.0));
        assert_eq!(series("ns-0", "error"), Some(0.0));
        assert_eq!(series("(other)", "patched"), Some(50.0));
        assert_eq!(series("(other)", "denied"), Some(2.0));
        assert_eq!(series("(none)", "error"), Some(1.0));
        assert_eq!(
            value(
                &text,
                "secret_zero_webhook_reviews_total{outcome=\"patched\"}"
            ),
            Some((MAX_NAMESPACES + 50) as f64)
        );
    }
}
