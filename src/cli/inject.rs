//! Flags of `inject`.

use std::path::PathBuf;

use clap::Args;

use crate::env;

use crate::document::ManifestFormat;
use crate::inject::Options;

/// `secret-zero inject`: add the agent to the pod templates annotated
/// `secret-zero.dev/inject: "true"` in Kubernetes YAML, like `linkerd inject`.
///
/// Reads the files given (`-` or none: stdin), writes the stream to stdout. Documents
/// it does not change are copied byte for byte.
#[derive(Debug, Args)]
#[command(after_help = ANNOTATION_HELP)]
pub struct InjectArgs {
    /// YAML or JSON files with Kubernetes objects; `-` is stdin [default: stdin].
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// A file to read, as with kubectl (repeatable; same as a FILE argument).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: Vec<PathBuf>,

    #[command(flatten)]
    pub defaults: InjectDefaults,

    /// Namespace of a secret-zero.dev/secret given as a bare NAME when the object has
    /// no metadata.namespace.
    #[arg(short = 'n', long, env = env::INJECT_NAMESPACE)]
    pub namespace: Option<String>,

    /// Output format: the YAML stream, or JSON (one object, or a v1 List of several).
    #[arg(short = 'o', long, env = env::INJECT_OUTPUT, value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,
}

const ANNOTATION_HELP: &str = "\
Pod template annotations:
  secret-zero.dev/inject             \"true\" to inject (required)
  secret-zero.dev/secret             [NAMESPACE/]NAME[#DATAKEY] of the ciphertext Secret (required)
  secret-zero.dev/role               Vault role (required)
  secret-zero.dev/vault-addr         Vault address (required unless --vault-addr)
  secret-zero.dev/vault-ca-configmap ConfigMap NAME[#KEY] with Vault's CA bundle (key ca.crt)
  secret-zero.dev/vault-namespace    Vault namespace
  secret-zero.dev/transit-key        Transit key [default: the Secret's annotation]
  secret-zero.dev/transit-mount      Transit mount [default: the Secret's annotation, else transit]
  secret-zero.dev/auth-method        kubernetes (default) or jwt
  secret-zero.dev/auth-mount         auth mount path [default: the method's name]
  secret-zero.dev/audience           audience of the projected token [default: vault]
  secret-zero.dev/max-deliveries     deliveries in all [default: 1]
  secret-zero.dev/image              agent image [default: --image]
  secret-zero.dev/socket             socket path or @NAME [default: /run/secret-zero/agent.sock]
  secret-zero.dev/containers         containers that read the socket [default: all app containers]
  secret-zero.dev/allow-uid          uids allowed to read [default: their runAsUser; the agent's own is always allowed]
  secret-zero.dev/agent-uid          the agent's runAsUser [default: --agent-uid, else none: it runs as the pod does]
  secret-zero.dev/cpu-request        agent CPU request [default: 5m]
  secret-zero.dev/cpu-limit          agent CPU limit [default: 100m]
  secret-zero.dev/memory-request     agent memory request [default: 16Mi]
  secret-zero.dev/memory-limit       agent memory limit [default: 32Mi]
inject sets secret-zero.dev/status: injected; a second run replaces what the first added.";

/// What the agent gets where a pod's annotations say nothing: shared by `inject` and
/// `webhook`, which must inject the same pod.
#[derive(Debug, Clone, Args)]
pub struct InjectDefaults {
    /// Put the agent in `containers` instead of as a native sidecar (an init container
    /// with restartPolicy Always), for clusters older than Kubernetes 1.29.
    #[arg(long, env = env::LEGACY_SIDECAR, value_parser = super::EnvBool)]
    pub legacy_sidecar: bool,

    /// Agent image for pods without secret-zero.dev/image.
    #[arg(long, env = env::INJECT_IMAGE, default_value = env::DEFAULT_IMAGE)]
    pub image: String,

    /// Vault address for pods without secret-zero.dev/vault-addr. (Not read from
    /// VAULT_ADDR on purpose: the operator's own Vault address is rarely the pods'.)
    #[arg(long, env = env::INJECT_VAULT_ADDR)]
    pub vault_addr: Option<String>,

    /// runAsUser of the agent for pods without secret-zero.dev/agent-uid. Without it the
    /// agent sets none and runs with the pod's runAsUser, else the uid the platform
    /// assigns (as OpenShift does), like the app containers.
    #[arg(long, env = env::AGENT_UID, value_name = "UID", value_parser = agent_uid)]
    pub agent_uid: Option<u32>,
}

fn agent_uid(text: &str) -> Result<u32, String> {
    crate::inject::parse_uid(text)
}

impl InjectDefaults {
    /// The injection options these defaults make, with `namespace` for bare Secret names.
    pub fn options(&self, namespace: Option<String>) -> Options {
        Options {
            legacy_sidecar: self.legacy_sidecar,
            image: self.image.clone(),
            vault_addr: self.vault_addr.clone(),
            namespace,
            agent_uid: self.agent_uid,
        }
    }
}
