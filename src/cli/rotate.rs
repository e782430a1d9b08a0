//! Flags of `rotate`.

use std::time::Duration;

use clap::Args;

use crate::env;

use super::duration;
use super::seal::OperatorArgs;

/// The exit codes only `rotate` has, for `rotate --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes of rotate (besides those of secret-zero --help):
  14  some Secrets failed (each named in the log); the others were rewrapped, nothing retired
  15  --retire refused: a Secret under the key still lags behind (each named in the log)";

/// `secret-zero rotate`: rotate a Transit key, rewrap every ciphertext under it inside
/// Vault, write the Secrets back, and optionally retire the old key versions.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct RotateArgs {
    /// The Transit key whose ciphertexts are rewrapped.
    #[arg(long, env = env::TRANSIT_KEY, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub transit_key: String,

    /// The Transit mount of the key.
    #[arg(
        long,
        env = env::TRANSIT_MOUNT,
        default_value = env::DEFAULT_TRANSIT_MOUNT
    )]
    pub transit_mount: String,

    /// Look for Secrets in this namespace [default: the kubeconfig context's namespace,
    /// or the pod's own namespace in a cluster].
    #[arg(
        long,
        short = 'n',
        env = env::NAMESPACE,
        conflicts_with = "all_namespaces"
    )]
    pub namespace: Option<String>,

    /// Look for Secrets in every namespace (needs `list secrets` cluster-wide).
    #[arg(long, short = 'A', env = env::ALL_NAMESPACES, value_parser = super::EnvBool)]
    pub all_namespaces: bool,

    /// Only Secrets that also match this label selector (e.g. "tier=web,team!=ops"),
    /// on top of app.kubernetes.io/managed-by=secret-zero.
    #[arg(long, short = 'l', env = env::SELECTOR)]
    pub selector: Option<String>,

    /// An unlabelled Secret in the old tool's layout, NAMESPACE/NAME#DATAKEY (repeatable;
    /// comma-separated in the variable). Alone, only the named Secrets are handled; with
    /// --namespace, --all-namespaces or --selector, the labelled ones too.
    #[arg(long = "secret", env = env::SECRET, value_delimiter = ',')]
    pub secrets: Vec<String>,

    /// Do not rotate the key: only rewrap ciphertexts that are behind its latest version.
    #[arg(long, env = env::NO_ROTATE, value_parser = super::EnvBool)]
    pub no_rotate: bool,

    /// After rewrapping, retire the old key versions (min_decryption_version = latest)
    /// if every Secret under the key, in every namespace, is at the latest version;
    /// otherwise refuse and list the Secrets that lag.
    #[arg(long, env = env::RETIRE, value_parser = super::EnvBool)]
    pub retire: bool,

    /// After a successful --retire, delete the retired key versions for good.
    // Checked by the command, not with `requires`: clap counts a variable set to
    // "false" as given.
    #[arg(long, env = env::TRIM, value_parser = super::EnvBool)]
    pub trim: bool,

    /// Report what would be done; rotate nothing, write nothing, retire nothing.
    #[arg(long, env = env::DRY_RUN, value_parser = super::EnvBool)]
    pub dry_run: bool,

    /// Ciphertexts per Transit rewrap request (batch_input).
    #[arg(long, env = env::BATCH_SIZE, default_value_t = env::DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_size: u32,

    /// Secrets a list request asks for at once (`limit`, following `continue`): the
    /// run holds one page and the batch in flight, however many Secrets there are.
    #[arg(long, env = env::PAGE_SIZE, default_value_t = env::DEFAULT_PAGE_SIZE, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub page_size: u32,

    /// How long transient Vault and Kubernetes faults (connection refused, 5xx, 429,
    /// sealed) are retried, per operation.
    #[arg(long, env = env::RETRY_TIMEOUT, value_parser = duration, default_value = env::DEFAULT_RETRY_TIMEOUT)]
    pub retry_timeout: Duration,

    #[command(flatten)]
    pub operator: OperatorArgs,
}
