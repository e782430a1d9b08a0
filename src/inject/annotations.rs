//! The pod annotations that drive the mutation, parsed and checked into [`Settings`].

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{INJECT, InjectError, Options, STATUS};
use crate::agent::SocketSpec;
use crate::env::DEFAULT_SOCKET;
use crate::failure::Hinted;
use crate::secret_format::SecretRef;

const P: &str = "secret-zero.dev/";

/// `NAMESPACE/NAME[#DATAKEY]` or `NAME[#DATAKEY]` of the ciphertext Secret (required).
pub const SECRET: &str = "secret-zero.dev/secret";
/// The Vault role to log in as (required).
pub const ROLE: &str = "secret-zero.dev/role";
/// The Vault address (required unless `inject --vault-addr` gives a default).
pub const VAULT_ADDR: &str = "secret-zero.dev/vault-addr";
/// A ConfigMap `NAME[#KEY]` (key `ca.crt` by default) with the CA bundle for Vault's TLS.
pub const VAULT_CA_CONFIGMAP: &str = "secret-zero.dev/vault-ca-configmap";
/// `X-Vault-Namespace`.
pub const VAULT_NAMESPACE: &str = "secret-zero.dev/vault-namespace";
/// Transit key; by default the Secret's own annotation.
pub const TRANSIT_KEY: &str = crate::secret_format::ANN_TRANSIT_KEY;
/// Transit mount; by default the Secret's annotation, else `transit`.
pub const TRANSIT_MOUNT: &str = crate::secret_format::ANN_TRANSIT_MOUNT;
/// `kubernetes` (default) or `jwt`.
pub const AUTH_METHOD: &str = "secret-zero.dev/auth-method";
/// Mount path of the auth method; by default its name.
pub const AUTH_MOUNT: &str = "secret-zero.dev/auth-mount";
/// Audience of the projected token (default `vault`).
pub const AUDIENCE: &str = "secret-zero.dev/audience";
/// Deliveries in all (default 1): raise it to let the app container restart.
pub const MAX_DELIVERIES: &str = "secret-zero.dev/max-deliveries";
/// The agent image.
pub const IMAGE: &str = "secret-zero.dev/image";
/// Socket path (default `/run/secret-zero/agent.sock`) or `@NAME`.
pub const SOCKET: &str = "secret-zero.dev/socket";
/// Comma-separated names of the containers that read the socket (default: all of
/// `containers`; init containers may be named too).
pub const CONTAINERS: &str = "secret-zero.dev/containers";
/// Comma-separated uids allowed to read (default: the `runAsUser` of those containers).
pub const ALLOW_UID: &str = "secret-zero.dev/allow-uid";
/// The agent's own `runAsUser` (default: none, so it inherits the pod's or the
/// platform's uid, like the app containers).
pub const AGENT_UID: &str = "secret-zero.dev/agent-uid";
/// The agent's resources.
pub const CPU_REQUEST: &str = "secret-zero.dev/cpu-request";
pub const CPU_LIMIT: &str = "secret-zero.dev/cpu-limit";
pub const MEMORY_REQUEST: &str = "secret-zero.dev/memory-request";
pub const MEMORY_LIMIT: &str = "secret-zero.dev/memory-limit";

/// Every annotation the mutation reads or writes; any other `secret-zero.dev/` key on
/// an opted-in pod is a typo and refused.
pub const ANNOTATIONS: &[&str] = &[
    INJECT,
    STATUS,
    SECRET,
    ROLE,
    VAULT_ADDR,
    VAULT_CA_CONFIGMAP,
    VAULT_NAMESPACE,
    TRANSIT_KEY,
    TRANSIT_MOUNT,
    AUTH_METHOD,
    AUTH_MOUNT,
    AUDIENCE,
    MAX_DELIVERIES,
    IMAGE,
    SOCKET,
    CONTAINERS,
    ALLOW_UID,
    AGENT_UID,
    CPU_REQUEST,
    CPU_LIMIT,
    MEMORY_REQUEST,
    MEMORY_LIMIT,
];

/// Small on purpose: the agent idles at a few MiB and spends milliseconds of CPU.
pub const DEFAULT_CPU_REQUEST: &str = "5m";
pub const DEFAULT_CPU_LIMIT: &str = "100m";
pub const DEFAULT_MEMORY_REQUEST: &str = "16Mi";
pub const DEFAULT_MEMORY_LIMIT: &str = "32Mi";

/// Where the agent listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    /// A file; `dir` is mounted as a memory-backed emptyDir.
    Path { path: String, dir: String },
    /// A Linux abstract name (given without the `@`).
    Abstract(String),
}

impl Socket {
    /// As `--socket` and `SECRET_ZERO_SOCKET` take it.
    pub fn arg(&self) -> String {
        match self {
            Socket::Path { path, .. } => path.clone(),
            Socket::Abstract(name) => format!("@{name}"),
        }
    }
}

/// Everything the annotations (and the caller's defaults) decide.
#[derive(Debug, Clone)]
pub struct Settings {
    pub secret: String,
    pub role: String,
    pub vault_addr: String,
    /// ConfigMap name and key holding Vault's CA bundle.
    pub vault_ca: Option<(String, String)>,
    pub vault_namespace: Option<String>,
    pub transit_key: Option<String>,
    pub transit_mount: Option<String>,
    pub auth_method: Option<String>,
    pub auth_mount: Option<String>,
    pub audience: String,
    pub max_deliveries: Option<u32>,
    pub image: String,
    pub socket: Socket,
    pub containers: Option<Vec<String>>,
    pub allow_uid: Option<Vec<u32>>,
    /// The agent's pinned uid (annotation, else the caller's default).
    pub agent_uid: Option<u32>,
    pub cpu_request: String,
    pub cpu_limit: String,
    pub memory_request: String,
    pub memory_limit: String,
}

impl Settings {
    /// Read and check the annotations of an opted-in pod template.
    pub fn parse(
        annotations: &Map<String, Value>,
        namespace: Option<&str>,
        options: &Options,
        place: &str,
    ) -> Result<Settings, InjectError> {
        let bad = |name: &str, message: String| InjectError::BadAnnotation {
            place: place.to_string(),
            name: name.to_string(),
            message,
        };

        let mut text = std::collections::BTreeMap::new();
        for (key, value) in annotations {
            if !key.starts_with(P) {
                continue;
            }
            if !ANNOTATIONS.contains(&key.as_str()) {
                return Err(bad(
                    key,
                    "unknown secret-zero annotation (a typo?)".to_string(),
                ));
            }
            let Some(s) = value.as_str() else {
                return Err(bad(
                    key,
                    format!("{value} is not a string (quote it: annotations are strings)"),
                ));
            };
            text.insert(key.as_str(), s.trim());
        }
        let get = |name: &str| text.get(name).copied().filter(|s| !s.is_empty());

        let mut missing = Vec::new();
        let secret_text = get(SECRET);
        let role = get(ROLE);
        let vault_addr = get(VAULT_ADDR)
            .map(str::to_string)
            .or_else(|| options.vault_addr.clone());
        if secret_text.is_none() {
            missing.push(SECRET);
        }
        if role.is_none() {
            missing.push(ROLE);
        }
        if vault_addr.is_none() {
            missing.push(VAULT_ADDR);
        }
        if !missing.is_empty() {
            return Err(InjectError::MissingAnnotations {
                place: place.to_string(),
                names: missing.join(", "),
            });
        }
        let (secret_text, role, vault_addr) = (
            secret_text.unwrap_or_default(),
            role.unwrap_or_default(),
            vault_addr.unwrap_or_default(),
        );

        let secret = {
            let (object, key) = match secret_text.split_once('#') {
                Some((o, k)) => (o, Some(k)),
                None => (secret_text, None),
            };
            let qualified = if object.contains('/') {
                object.to_string()
            } else {
                let ns = namespace.ok_or_else(|| {
                    bad(
                        SECRET,
                        format!(
                            "{secret_text:?} names no namespace and the object has none: write NAMESPACE/NAME, or set metadata.namespace, or run inject --namespace NS"
                        ),
                    )
                })?;
                format!("{ns}/{object}")
            };
            let full = match key {
                Some(k) => format!("{qualified}#{k}"),
                None => qualified,
            };
            SecretRef::parse(&full)
                .map_err(|_| {
                    bad(
                        SECRET,
                        format!("{secret_text:?} is not [NAMESPACE/]NAME[#DATAKEY]"),
                    )
                })?
                .to_string()
        };

        word(role).map_err(|m| bad(ROLE, m))?;
        match url::Url::parse(&vault_addr) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => {
                return Err(bad(
                    VAULT_ADDR,
                    format!(
                        "{vault_addr:?} is not an http(s) URL such as https://vault.vault:8200"
                    ),
                ));
            }
        }

        let optional_word = |name: &str| -> Result<Option<String>, InjectError> {
            match get(name) {
                None => Ok(None),
                Some(v) => word(v)
                    .map(|()| Some(v.to_string()))
                    .map_err(|m| bad(name, m)),
            }
        };
        let vault_namespace = optional_word(VAULT_NAMESPACE)?;
        let transit_key = optional_word(TRANSIT_KEY)?;
        let transit_mount = optional_word(TRANSIT_MOUNT)?;
        let auth_mount = optional_word(AUTH_MOUNT)?;
        let audience = optional_word(AUDIENCE)?.unwrap_or_else(|| "vault".to_string());
        let image = optional_word(IMAGE)?.unwrap_or_else(|| options.image.clone());

        let auth_method = match get(AUTH_METHOD) {
            None => None,
            Some(m @ ("kubernetes" | "jwt")) => Some(m.to_string()),
            Some(other) => {
                return Err(bad(
                    AUTH_METHOD,
                    format!("{other:?} is neither kubernetes nor jwt"),
                ));
            }
        };

        let vault_ca = match get(VAULT_CA_CONFIGMAP) {
            None => None,
            Some(v) => {
                let (name, key) = v.split_once('#').unwrap_or((v, "ca.crt"));
                if !is_dns_subdomain(name) || !is_config_key(key) {
                    return Err(bad(
                        VAULT_CA_CONFIGMAP,
                        format!("{v:?} is not a ConfigMap NAME[#KEY]"),
                    ));
                }
                Some((name.to_string(), key.to_string()))
            }
        };

        let max_deliveries = match get(MAX_DELIVERIES) {
            None => None,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(bad(
                        MAX_DELIVERIES,
                        format!("{v:?} is not a whole number of at least 1"),
                    ));
                }
            },
        };

        let socket_text = get(SOCKET).unwrap_or(DEFAULT_SOCKET);
        let socket = match socket_text.parse::<SocketSpec>() {
            Err(e) => return Err(bad(SOCKET, e.one_line())),
            Ok(SocketSpec::Abstract(name)) => {
                if name.chars().any(|c| c.is_whitespace() || c == '\0') {
                    return Err(bad(SOCKET, format!("{socket_text:?} is not a usable name")));
                }
                Socket::Abstract(name)
            }
            Ok(SocketSpec::Path(_)) => {
                let path = socket_text;
                let (dir, file) = path.rsplit_once('/').unwrap_or_default();
                if !path.starts_with('/')
                    || dir.is_empty()
                    || file.is_empty()
                    || path.split('/').any(|c| c == "." || c == "..")
                    || path.contains("//")
                {
                    return Err(bad(
                        SOCKET,
                        format!(
                            "{path:?} must be an absolute path to a file in a directory of its own (e.g. /run/secret-zero/agent.sock), or @NAME"
                        ),
                    ));
                }
                Socket::Path {
                    path: path.to_string(),
                    dir: dir.to_string(),
                }
            }
        };

        let containers = match get(CONTAINERS) {
            None => None,
            Some(v) => {
                let names: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    return Err(bad(CONTAINERS, "names no container".into()));
                }
                Some(names)
            }
        };

        let allow_uid = match get(ALLOW_UID) {
            None => None,
            Some(v) => {
                let mut uids = BTreeSet::new();
                for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    uids.insert(
                        part.parse::<u32>()
                            .map_err(|_| bad(ALLOW_UID, format!("{part:?} is not a uid")))?,
                    );
                }
                if uids.is_empty() {
                    return Err(bad(ALLOW_UID, "names no uid".into()));
                }
                Some(uids.into_iter().collect())
            }
        };

        let agent_uid = match get(AGENT_UID) {
            None => options.agent_uid,
            Some(v) => Some(parse_uid(v).map_err(|m| bad(AGENT_UID, m))?),
        };

        let quantity = |name: &str, default: &str| -> Result<String, InjectError> {
            let v = get(name).unwrap_or(default);
            if is_quantity(v) {
                Ok(v.to_string())
            } else {
                Err(bad(
                    name,
                    format!("{v:?} is not a Kubernetes quantity such as 5m, 16Mi"),
                ))
            }
        };

        Ok(Settings {
            secret,
            role: role.to_string(),
            vault_addr,
            vault_ca,
            vault_namespace,
            transit_key,
            transit_mount,
            auth_method,
            auth_mount,
            audience,
            max_deliveries,
            image,
            socket,
            containers,
            allow_uid,
            agent_uid,
            cpu_request: quantity(CPU_REQUEST, DEFAULT_CPU_REQUEST)?,
            cpu_limit: quantity(CPU_LIMIT, DEFAULT_CPU_LIMIT)?,
            memory_request: quantity(MEMORY_REQUEST, DEFAULT_MEMORY_REQUEST)?,
            memory_limit: quantity(MEMORY_LIMIT, DEFAULT_MEMORY_LIMIT)?,
        })
    }
}

/// The largest uid Kubernetes accepts in `runAsUser`.
pub const MAX_UID: u32 = i32::MAX as u32;

/// A uid the agent may be pinned to: a whole number from 1 to [`MAX_UID`] (0 is root,
/// which `runAsNonRoot` forbids). The message names the value, which is no secret.
pub fn parse_uid(text: &str) -> Result<u32, String> {
    let text = text.trim();
    let range = format!("a uid is a whole number from 1 to {MAX_UID}");
    if let Some(rest) = text.strip_prefix('-')
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{text:?} is negative: {range}"));
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a number: {range}"));
    }
    match text.parse::<u64>() {
        Ok(0) => Err(format!(
            "{text:?} is root, and the agent runs as non-root: {range}"
        )),
        Ok(n) if n <= u64::from(MAX_UID) => Ok(n as u32),
        _ => Err(format!(
            "{text:?} is too large: {range} (Kubernetes' limit)"
        )),
    }
}

/// One token: no spaces or control characters (it becomes a `--flag=value`).
fn word(value: &str) -> Result<(), String> {
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!("{value:?} must be one word"))
    } else {
        Ok(())
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn is_config_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A Kubernetes resource quantity: a decimal number and an optional SI or binary
/// suffix or decimal exponent (`5m`, `0.5`, `16Mi`, `1e3`).
pub fn is_quantity(s: &str) -> bool {
    let digits_end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(s.len(), |(i, _)| i);
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number.chars().filter(|c| *c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| {
            let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
        })
        .unwrap_or(false);
    number_ok && suffix_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids() {
        assert_eq!(parse_uid("1000"), Ok(1000));
        assert_eq!(parse_uid("1"), Ok(1));
        assert_eq!(parse_uid("2147483647"), Ok(MAX_UID));
        for (bad, why) in [
            ("abc", "is not a number"),
            ("", "is not a number"),
            ("10 00", "is not a number"),
            ("+5", "is not a number"),
            ("1e3", "is not a number"),
            ("0", "is root"),
            ("000", "is root"),
            ("-1", "is negative"),
            ("2147483648", "is too large"),
            ("99999999999999999999999", "is too large"),
        ] {
            let message = parse_uid(bad).unwrap_err();
            assert!(message.contains(why), "{bad}: {message}");
            assert!(message.contains("from 1 to 2147483647"), "{bad}: {message}");
        }
    }

    #[test]
    fn quantities() {
        for ok in ["5m", "16Mi", "0.5", "1", "100m", "1e3", "2Gi", "1E-2"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "m", "5 m", "16MB", "-1", "1.2.3", "abc", "5mm"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
