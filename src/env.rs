//! Every environment variable secret-zero reads, and every default, in one place.
//!
//! Each flag has a `SECRET_ZERO_*` variable (flags win); the usual Vault variables
//! (`VAULT_ADDR`, `VAULT_CACERT`, `VAULT_NAMESPACE`, `VAULT_TOKEN`) are honoured too.
//! The names are a contract with manifests and scripts: add to them, rename none.

// ---- Variable names ----

// Global flags, `serve`, `get` and `probe`, and the flags shared with the operator commands.
pub const LOG_FORMAT: &str = "SECRET_ZERO_LOG_FORMAT";
pub const LOG_LEVEL: &str = "SECRET_ZERO_LOG_LEVEL";
pub const VAULT_TIMEOUT: &str = "SECRET_ZERO_VAULT_TIMEOUT";
pub const VAULT_TOKEN_FILE: &str = "SECRET_ZERO_VAULT_TOKEN_FILE";
pub const AUTH_METHOD: &str = "SECRET_ZERO_AUTH_METHOD";
pub const AUTH_MOUNT: &str = "SECRET_ZERO_AUTH_MOUNT";
pub const ROLE: &str = "SECRET_ZERO_ROLE";
pub const TOKEN_FILE: &str = "SECRET_ZERO_TOKEN_FILE";
pub const KUBECONFIG: &str = "SECRET_ZERO_KUBECONFIG";
pub const SERVICEACCOUNT_DIR: &str = "SECRET_ZERO_SERVICEACCOUNT_DIR";
pub const TRANSIT_MOUNT: &str = "SECRET_ZERO_TRANSIT_MOUNT";
pub const TRANSIT_KEY: &str = "SECRET_ZERO_TRANSIT_KEY";
pub const BINDING: &str = "SECRET_ZERO_BINDING";
pub const BINDING_CONTEXT: &str = "SECRET_ZERO_BINDING_CONTEXT";
pub const SECRET: &str = "SECRET_ZERO_SECRET";
pub const CIPHERTEXT_FILE: &str = "SECRET_ZERO_CIPHERTEXT_FILE";
pub const PLAINTEXT_FILE: &str = "SECRET_ZERO_PLAINTEXT_FILE";
pub const PLAINTEXT_ENV: &str = "SECRET_ZERO_PLAINTEXT_ENV";
pub const ENV_FILE: &str = "SECRET_ZERO_ENV_FILE";
pub const PLAINTEXT_SECRET: &str = "SECRET_ZERO_PLAINTEXT_SECRET";
pub const PLAINTEXT_CONFIGMAP: &str = "SECRET_ZERO_PLAINTEXT_CONFIGMAP";
pub const FORMAT: &str = "SECRET_ZERO_FORMAT";
/// The agent's socket; the client library reads the same variable.
pub const SOCKET: &str = secret_zero_client::SOCKET_ENV;
pub const SOCKET_MODE: &str = "SECRET_ZERO_SOCKET_MODE";
pub const ALLOW_UID: &str = "SECRET_ZERO_ALLOW_UID";
pub const ALLOW_GID: &str = "SECRET_ZERO_ALLOW_GID";
pub const MAX_DELIVERIES: &str = "SECRET_ZERO_MAX_DELIVERIES";
pub const MAX_CONNECTIONS: &str = "SECRET_ZERO_MAX_CONNECTIONS";
pub const HEADER_READ_TIMEOUT: &str = "SECRET_ZERO_HEADER_READ_TIMEOUT";
pub const EXIT_AFTER_DELIVERY: &str = "SECRET_ZERO_EXIT_AFTER_DELIVERY";
pub const RETRY_TIMEOUT: &str = "SECRET_ZERO_RETRY_TIMEOUT";
pub const GET_FORMAT: &str = "SECRET_ZERO_GET_FORMAT";
pub const KEY: &str = "SECRET_ZERO_KEY";

// `seal`.
pub const NAMESPACE: &str = "SECRET_ZERO_NAMESPACE";
pub const NAME: &str = "SECRET_ZERO_NAME";
pub const DATA_KEY: &str = "SECRET_ZERO_DATA_KEY";
pub const FROM_FILE: &str = "SECRET_ZERO_FROM_FILE";
pub const INPUT_FORMAT: &str = "SECRET_ZERO_INPUT_FORMAT";
pub const OUTPUT: &str = "SECRET_ZERO_OUTPUT";
pub const APPLY: &str = "SECRET_ZERO_APPLY";
pub const NO_VERIFY: &str = "SECRET_ZERO_NO_VERIFY";
pub const ADOPT: &str = "SECRET_ZERO_ADOPT";

// `rotate`.
pub const ALL_NAMESPACES: &str = "SECRET_ZERO_ALL_NAMESPACES";
pub const SELECTOR: &str = "SECRET_ZERO_SELECTOR";
pub const NO_ROTATE: &str = "SECRET_ZERO_NO_ROTATE";
pub const RETIRE: &str = "SECRET_ZERO_RETIRE";
pub const TRIM: &str = "SECRET_ZERO_TRIM";
pub const DRY_RUN: &str = "SECRET_ZERO_DRY_RUN";
pub const BATCH_SIZE: &str = "SECRET_ZERO_BATCH_SIZE";
/// `rotate --page-size`: Secrets a list request asks for at once.
pub const PAGE_SIZE: &str = "SECRET_ZERO_PAGE_SIZE";

// `inject`.
pub const INJECT_NAMESPACE: &str = "SECRET_ZERO_INJECT_NAMESPACE";
pub const INJECT_OUTPUT: &str = "SECRET_ZERO_INJECT_OUTPUT";
pub const LEGACY_SIDECAR: &str = "SECRET_ZERO_LEGACY_SIDECAR";
pub const INJECT_IMAGE: &str = "SECRET_ZERO_INJECT_IMAGE";
pub const INJECT_VAULT_ADDR: &str = "SECRET_ZERO_INJECT_VAULT_ADDR";
pub const AGENT_UID: &str = "SECRET_ZERO_AGENT_UID";

// `audit`.
pub const AUDIT_IMAGE: &str = "SECRET_ZERO_AUDIT_IMAGE";
pub const AUDIT_OUTPUT: &str = "SECRET_ZERO_AUDIT_OUTPUT";
pub const AUDIT_PAGE_SIZE: &str = "SECRET_ZERO_AUDIT_PAGE_SIZE";

// `webhook`.
pub const TLS_CERT: &str = "SECRET_ZERO_TLS_CERT";
pub const TLS_KEY: &str = "SECRET_ZERO_TLS_KEY";
pub const LISTEN: &str = "SECRET_ZERO_LISTEN";
pub const TLS_RELOAD_INTERVAL: &str = "SECRET_ZERO_TLS_RELOAD_INTERVAL";
pub const MAX_REQUEST_BYTES: &str = "SECRET_ZERO_MAX_REQUEST_BYTES";
pub const DRAIN_DELAY: &str = "SECRET_ZERO_DRAIN_DELAY";
pub const METRICS_LISTEN: &str = "SECRET_ZERO_METRICS_LISTEN";

// ---- Defaults ----

/// `--log-level`.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// `VAULT_ADDR`: Vault's own default, as the Vault CLI uses it.
pub const DEFAULT_VAULT_ADDR: &str = "https://127.0.0.1:8200";
/// `--vault-timeout`: each Vault request.
pub const DEFAULT_VAULT_TIMEOUT: &str = "10s";
/// `--serviceaccount-dir`: where kubelet mounts the pod's token, CA and namespace.
pub const DEFAULT_SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// `--token-file`: the ServiceAccount token the agent logs in with.
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// `--socket`: a file in a memory-backed `emptyDir`.
pub const DEFAULT_SOCKET: &str = secret_zero_client::DEFAULT_SOCKET;
/// `--socket-mode`.
pub const DEFAULT_SOCKET_MODE: &str = "0600";
/// `serve --max-connections`: allowed connections open at once on the agent's socket
/// (docs/socket-limits.md). One application needs one; the rest is room for probes and
/// retries.
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;
/// `serve --header-read-timeout`: how long a connection may take to send its request
/// head. A client sends its few bytes at once; anything slower is closed.
pub const DEFAULT_HEADER_READ_TIMEOUT: &str = "5s";
/// The largest request head (request line and headers) the socket reads; more is 431.
pub const SOCKET_MAX_HEADER_BYTES: usize = 8 * 1024;
/// The most request headers the socket reads; more is 431.
pub const SOCKET_MAX_HEADERS: usize = 32;
/// How long one connection may last once its request is read, answer included: room
/// for a later delivery's fresh login and decrypt (retried for up to `--retry-timeout`).
pub const SOCKET_CONNECTION_TIMEOUT_SECS: u64 = 120;
/// Refused peers (`SO_PEERCRED` not allowed) whose fixed 403 answer is still being
/// drained at once; beyond this a refused peer is closed with no answer.
pub const SOCKET_MAX_REFUSED_LINGERING: usize = 16;
/// How long a refused peer's 403 may linger for the peer to read it.
pub const SOCKET_REFUSED_LINGER_MS: u64 = 1000;
/// File descriptors kept free of connections (runtime, listener, Vault and Kubernetes
/// clients, files): `--max-connections` is lowered to fit the open-file limit.
pub const SOCKET_FD_RESERVE: u64 = 32;
/// `--retry-timeout` of `serve` and `rotate`.
pub const DEFAULT_RETRY_TIMEOUT: &str = "30s";
/// `seal --retry-timeout`: an operator at a terminal waits less.
pub const DEFAULT_SEAL_RETRY_TIMEOUT: &str = "10s";
/// `--transit-mount` when no annotation names one.
pub const DEFAULT_TRANSIT_MOUNT: &str = "transit";
/// `rotate --batch-size`: ciphertexts per rewrap request.
pub const DEFAULT_BATCH_SIZE: u32 = 100;
/// Default of `rotate --page-size` (what kubectl asks for too).
pub const DEFAULT_PAGE_SIZE: u32 = 500;
/// `inject --image`, when no `secret-zero.dev/image` annotation names one.
pub const DEFAULT_IMAGE: &str = concat!(
    "ghcr.io/secret-zero/secret-zero:",
    env!("CARGO_PKG_VERSION")
);
/// `audit --page-size`: pods per list request, the same page as rotate's.
pub const DEFAULT_AUDIT_PAGE_SIZE: u32 = DEFAULT_PAGE_SIZE;
/// `webhook --listen`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8443";
/// `webhook --metrics-listen`: plain HTTP, `GET /metrics`; `off` serves none.
pub const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9090";
/// The `--metrics-listen` value that serves no metrics.
pub const METRICS_OFF: &str = "off";
/// `webhook --tls-reload-interval`.
pub const DEFAULT_TLS_RELOAD_INTERVAL: &str = "2s";
/// `webhook --drain-delay`.
pub const DEFAULT_DRAIN_DELAY: &str = "3s";
/// `webhook --max-request-bytes`: the API server's own limit on a request body, so a
/// review of any pod it accepted fits.
pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

// ---- Limits on documents from outside (docs/fuzzing.md has the table) ----

/// The most bytes of one document read from a file or stdin (`seal --from-file`,
/// `inject`, the `serve` sources): anything near it cannot fit a Secret anyway.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// The deepest nesting of mappings and sequences in a YAML document (serde-saphyr's own
/// default: deeper, its parser would need more stack than a 2 MiB thread has in a debug
/// build). JSON's is serde_json's fixed recursion limit: 127 levels.
pub const MAX_DOCUMENT_DEPTH: usize = 64;
/// YAML nodes (scalars, mappings, sequences) as written in one document.
pub const MAX_YAML_NODES: usize = 250_000;
/// YAML aliases (`*name`) as written in one document.
pub const MAX_YAML_ALIASES: usize = 10_000;
/// Events that alias replays add to one YAML document, in all (and the events anchors
/// may record for them): a "billion laughs" stops here.
pub const MAX_YAML_ALIAS_EVENTS: usize = 100_000;
/// Bytes of scalar text in one YAML document, alias replays included: one large value
/// repeated by aliases stops here, at the document limit again.
pub const MAX_YAML_SCALAR_BYTES: usize = MAX_DOCUMENT_BYTES;
/// The limits above, as the document reader takes them.
pub const DOCUMENT_LIMITS: secret_zero_client::DocumentLimits =
    secret_zero_client::DocumentLimits {
        bytes: MAX_DOCUMENT_BYTES,
        depth: MAX_DOCUMENT_DEPTH,
        yaml_nodes: MAX_YAML_NODES,
        yaml_aliases: MAX_YAML_ALIASES,
        yaml_alias_events: MAX_YAML_ALIAS_EVENTS,
        yaml_scalar_bytes: MAX_YAML_SCALAR_BYTES,
    };
