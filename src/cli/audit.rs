//! Flags of `audit`.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::env;
use crate::kube::ClusterSource;

use super::{KubeArgs, duration};

/// The exit code only `audit` has, for `audit --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes of audit (besides those of secret-zero --help):
   0  no stray pod in the scope
   7  the Kubernetes API refused (e.g. no `list pods` for this identity)
  16  stray pods found: annotated without the agent, or injected with another agent image";

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// A table of the stray pods and a summary line.
    Text,
    /// One JSON object (also when the run fails: then with `error`).
    Json,
}

/// `secret-zero audit`: list the pods the injection missed — annotated
/// `secret-zero.dev/inject: "true"` but without the agent (created while the webhook
/// was down, or before it was installed), or injected with another agent image than
/// expected. Read only: it lists pods and writes nothing.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct AuditArgs {
    /// Audit the pods of this namespace [default: the kubeconfig context's namespace,
    /// or the pod's own namespace in a cluster].
    #[arg(
        long,
        short = 'n',
        env = env::NAMESPACE,
        conflicts_with = "all_namespaces",
        value_parser = clap::builder::NonEmptyStringValueParser::new()
    )]
    pub namespace: Option<String>,

    /// Audit the pods of every namespace (needs `list pods` cluster-wide).
    #[arg(long, short = 'A', env = env::ALL_NAMESPACES, value_parser = super::EnvBool)]
    pub all_namespaces: bool,

    /// The agent image injected pods should run, unless a pod's own
    /// secret-zero.dev/image annotation names another (the same default as inject's --image).
    #[arg(long, env = env::AUDIT_IMAGE, default_value = env::DEFAULT_IMAGE, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub image: String,

    /// Output: a readable table, or one JSON object for machines.
    #[arg(short = 'o', long, env = env::AUDIT_OUTPUT, value_enum, default_value_t = AuditOutput::Text)]
    pub output: AuditOutput,

    /// Pods per list request (the list is paged with limit and continue).
    #[arg(long, env = env::AUDIT_PAGE_SIZE, default_value_t = env::DEFAULT_AUDIT_PAGE_SIZE, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: u32,

    /// How long transient Kubernetes faults (connection refused, 5xx, 429) are retried,
    /// per list request.
    #[arg(long, env = env::RETRY_TIMEOUT, value_parser = duration, default_value = env::DEFAULT_RETRY_TIMEOUT)]
    pub retry_timeout: Duration,

    #[command(flatten)]
    pub kube: KubeArgs,
}

impl AuditArgs {
    /// The cluster these flags point at.
    pub fn cluster(&self) -> ClusterSource {
        ClusterSource::detect(
            self.kube.kubeconfig.as_deref(),
            Some(&self.kube.serviceaccount_dir),
        )
    }
}
