//! Flags of `seal`.
//!
//! The plaintext has no flag and no variable: it is read only from the file named by
//! `--from-file`, or from stdin with `--from-file -`, so it never sits in argv (visible
//! in `ps`) or in the environment (visible in `/proc/PID/environ`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::env;

use super::{KubeArgs, OperatorAuthArgs, VaultArgs, duration};
use crate::document::{InputFormat, ManifestFormat};
use crate::kube::ClusterSource;

/// `secret-zero seal`.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// Transit key that encrypts the document.
    #[arg(long, env = env::TRANSIT_KEY)]
    pub transit_key: String,

    /// Transit mount.
    #[arg(long, env = env::TRANSIT_MOUNT, default_value = env::DEFAULT_TRANSIT_MOUNT)]
    pub transit_mount: String,

    /// Namespace of the Secret.
    #[arg(long, env = env::NAMESPACE)]
    pub namespace: String,

    /// Name of the Secret.
    #[arg(long, env = env::NAME)]
    pub name: String,

    /// Data key of the Secret that holds the ciphertext ("secrets.json" for the old tool's layout).
    #[arg(long, env = env::DATA_KEY, default_value = crate::secret_format::DATA_KEY)]
    pub data_key: String,

    /// "identity" binds the ciphertext to NAMESPACE/NAME (Transit context; needs a derived
    /// key); "none" binds nothing, as the old tool did [default: identity when the key is
    /// derived, else none].
    #[arg(long, env = env::BINDING, value_enum)]
    pub binding: Option<crate::secret_format::Binding>,

    /// The plaintext document: a file, or "-" for stdin. The only way in: never argv or env.
    #[arg(long, env = env::FROM_FILE, value_name = "PATH|-")]
    pub from_file: PathBuf,

    /// Format of the document; YAML is converted to JSON before sealing.
    #[arg(long, env = env::INPUT_FORMAT, value_enum, default_value_t = InputFormat::Json)]
    pub input_format: InputFormat,

    /// Format of the Secret manifest printed on stdout (without --apply).
    #[arg(short = 'o', long = "output", env = env::OUTPUT, value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,

    /// Create or update the Secret in the cluster instead of printing it.
    #[arg(long, env = env::APPLY, value_parser = super::EnvBool)]
    pub apply: bool,

    /// With --apply: take over an existing Secret that secret-zero does not manage (no
    /// app.kubernetes.io/managed-by=secret-zero label). Its data keys that are not Transit
    /// ciphertexts are removed (named in the output), so no plaintext stays beside the
    /// ciphertext. Without it such a Secret is refused and nothing is written.
    // Checked by the command, not with `requires`: clap counts a variable set to
    // "false" as given.
    #[arg(long, env = env::ADOPT, value_parser = super::EnvBool)]
    pub adopt: bool,

    /// Skip decrypting what was sealed (the sealer then needs no decrypt permission).
    #[arg(long, env = env::NO_VERIFY, value_parser = super::EnvBool)]
    pub no_verify: bool,

    /// How long transient Vault and Kubernetes faults (connection refused, 5xx, 429) are retried.
    #[arg(long, env = env::RETRY_TIMEOUT, value_parser = duration, default_value = env::DEFAULT_SEAL_RETRY_TIMEOUT)]
    pub retry_timeout: Duration,

    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// Where Vault and the cluster are, and how an operator authenticates: shared by `seal`
/// and `rotate`.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub vault: VaultArgs,

    #[command(flatten)]
    pub auth: OperatorAuthArgs,

    #[command(flatten)]
    pub kube: KubeArgs,
}

impl OperatorArgs {
    /// The cluster these flags point at.
    pub fn cluster(&self) -> ClusterSource {
        ClusterSource::detect(
            self.kube.kubeconfig.as_deref(),
            Some(&self.kube.serviceaccount_dir),
        )
    }
}
