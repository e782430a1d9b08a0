//! What can go wrong talking to Vault, kept typed so callers can decide what to retry
//! and what to tell the user.
//!
//! Every variant keeps the API path (never a token: tokens travel in headers only) and
//! the server's own message.

/// A failed Vault/OpenBao request.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// 403: the token (or the login) is not allowed to do this.
    #[error("permission denied on {path}{}", suffix(message))]
    PermissionDenied { path: String, message: String },

    /// 403 or another client error on a login: Vault refused who we are (role,
    /// audience, expired or foreign token). Decided where the error is made, so no
    /// caller has to recognise a login path.
    #[error("{}", login_refused(*status, path, message))]
    LoginRefused {
        path: String,
        status: u16,
        message: String,
    },

    /// 400 and other client errors except 403/404: Vault refused the request as malformed
    /// (bad ciphertext, wrong key type, unknown role...).
    #[error("invalid request to {path} (HTTP {status}){}", suffix(message))]
    InvalidRequest {
        path: String,
        status: u16,
        message: String,
    },

    /// 404: no such key, mount or path.
    #[error("not found: {path}{}", suffix(message))]
    NotFound { path: String, message: String },

    /// 503: Vault is sealed, or this node is a standby that cannot serve the request.
    #[error("Vault unavailable at {path} (HTTP 503){}", suffix(message))]
    Unavailable { path: String, message: String },

    /// 5xx, 429, connection refused or reset, timeout: worth retrying with backoff.
    #[error("transient failure on {path}: {detail}")]
    Transient {
        path: String,
        detail: String,
        /// The server's `Retry-After`, when it sent one (a rate-limit quota does).
        retry_after: Option<std::time::Duration>,
    },

    /// The TLS handshake failed: most often the server's certificate is not signed by
    /// the CA in VAULT_CACERT.
    #[error("TLS handshake with {addr} failed: {detail}")]
    Tls { addr: String, detail: String },

    /// Vault answered 2xx with a body we cannot use.
    #[error("unexpected answer from {path}: {detail}")]
    BadResponse { path: String, detail: String },

    /// The credentials we were given are unusable (the ServiceAccount token file is
    /// missing, empty or expired).
    #[error(transparent)]
    Credentials(crate::failure::InputError),

    /// Our own configuration is unusable (bad address, unreadable CA bundle, no token).
    #[error("{0}")]
    Config(String),
}

fn login_refused(status: u16, path: &str, message: &str) -> String {
    match status {
        403 => format!("permission denied on {path}{}", suffix(message)),
        _ => format!(
            "invalid request to {path} (HTTP {status}){}",
            suffix(message)
        ),
    }
}

fn suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl VaultError {
    /// The same failure, seen as the answer to a login: a refusal becomes
    /// [`VaultError::LoginRefused`]; anything else is kept.
    pub(crate) fn at_login(self) -> VaultError {
        match self {
            VaultError::PermissionDenied { path, message } => VaultError::LoginRefused {
                path,
                status: 403,
                message,
            },
            VaultError::InvalidRequest {
                path,
                status,
                message,
            } => VaultError::LoginRefused {
                path,
                status,
                message,
            },
            other => other,
        }
    }

    /// Faults that a later attempt may not meet: 5xx, 429, 503, connection faults.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            VaultError::Transient { .. } | VaultError::Unavailable { .. }
        )
    }

    /// The API path the failure happened on, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            VaultError::PermissionDenied { path, .. }
            | VaultError::LoginRefused { path, .. }
            | VaultError::InvalidRequest { path, .. }
            | VaultError::NotFound { path, .. }
            | VaultError::Unavailable { path, .. }
            | VaultError::Transient { path, .. }
            | VaultError::BadResponse { path, .. } => Some(path),
            VaultError::Tls { .. } | VaultError::Credentials(_) | VaultError::Config(_) => None,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            VaultError::LoginRefused { path, .. } if path == LOOKUP_SELF => {
                "Vault refuses this token even auth/token/lookup-self, which the default policy allows every valid token: it is most likely expired, revoked or mistyped; log in again (`vault login`) or pass another with --vault-token-file or VAULT_TOKEN".into()
            }
            VaultError::LoginRefused {
                path, status: 403, ..
            } => {
                format!(
                    "the login was refused: check that the role exists on {} and is bound to this ServiceAccount, namespace and audience",
                    mount_of(path)
                )
            }
            VaultError::LoginRefused { .. } => {
                "check the role name and that the JWT is valid (audience, expiry, issuer)".into()
            }
            VaultError::PermissionDenied { path, .. } => {
                format!("check that the token's policy grants this operation on {path}")
            }
            VaultError::InvalidRequest { path, .. } if path.contains("/decrypt/") => {
                "check the transit key, the binding context and that the ciphertext was not altered or copied from another Secret".into()
            }
            VaultError::NotFound { path, .. } => match transit_key_of(path) {
                Some((mount, key)) => format!(
                    "no Transit key {key:?} on mount {mount:?}: check --transit-key and --transit-mount (create a key with `vault write -f {mount}/keys/{key}`)"
                ),
                None => format!("check that the mount and name in {path} exist"),
            },
            VaultError::Unavailable { .. } => {
                "Vault is sealed or on standby: unseal it or point VAULT_ADDR at the active node".into()
            }
            VaultError::Transient { .. } => {
                "check VAULT_ADDR and that Vault is running and reachable".into()
            }
            VaultError::Credentials(e) => e.hint.clone(),
            VaultError::BadResponse { .. } => {
                "Vault answered with a body that is not Vault's: check that VAULT_ADDR points at Vault itself, not at a proxy or another service".into()
            }
            VaultError::Tls { .. } => {
                "check that VAULT_CACERT (--vault-cacert) holds the CA that signed Vault's certificate".into()
            }
            _ => return None,
        };
        Some(hint)
    }
}

/// The path a token asks about itself.
const LOOKUP_SELF: &str = "auth/token/lookup-self";

/// `MOUNT/keys/KEY` (the key itself, not a sub-path) -> `(MOUNT, KEY)`.
fn transit_key_of(path: &str) -> Option<(&str, &str)> {
    let (mount, key) = path.rsplit_once("/keys/")?;
    (!key.is_empty() && !key.contains('/')).then_some((mount, key))
}

/// `auth/kubernetes/login` -> `auth/kubernetes`.
fn mount_of(path: &str) -> &str {
    path.rsplit_once('/')
        .map(|(mount, _)| mount)
        .unwrap_or(path)
}

impl crate::retry::Transient for VaultError {
    fn is_transient(&self) -> bool {
        VaultError::is_transient(self)
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            VaultError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
