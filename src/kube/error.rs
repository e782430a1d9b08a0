//! What can go wrong talking to the Kubernetes API, by what the caller does next.

use crate::failure::root_cause;

/// A failed Kubernetes API call. `object` is `namespace/name` or a list description.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// 401: the credentials were not accepted.
    #[error("unauthorized reading {object}: {message}")]
    Unauthorized { object: String, message: String },

    /// 403: RBAC does not allow this verb on this object.
    #[error("forbidden: {message}")]
    Forbidden { object: String, message: String },

    /// 404.
    #[error("secret {object} not found")]
    NotFound { object: String },

    /// 409 on an update: someone changed the object since we read it.
    #[error("conflict updating {object}: {message}")]
    Conflict { object: String, message: String },

    /// 409 on a create.
    #[error("{object} already exists")]
    AlreadyExists { object: String },

    /// Connection faults, timeouts, 5xx and 429.
    #[error("transient failure on {object}: {detail}")]
    Transient {
        object: String,
        detail: String,
        /// How long the API server asked us to wait: its `Retry-After` header (API
        /// Priority and Fairness sends it) or a `Status`'s `retryAfterSeconds`.
        retry_after: Option<std::time::Duration>,
    },

    /// Any other refusal (400, 422...). A 410 on a list is an expired continue token:
    /// see [`KubeError::is_expired`].
    #[error("request on {object} refused (HTTP {code}): {message}")]
    Refused {
        object: String,
        code: u16,
        message: String,
    },

    /// No usable configuration: missing kubeconfig, not in a cluster, bad CA.
    #[error("{0}")]
    Config(String),
}

impl KubeError {
    /// Classify a kube-rs error for the operation on `object`.
    pub(crate) fn from_kube(object: &str, error: kube::Error) -> KubeError {
        let object = object.to_string();
        match error {
            kube::Error::Api(status) => {
                let message = status.message.clone();
                match (status.code, status.reason.as_str()) {
                    (401, _) => KubeError::Unauthorized { object, message },
                    (403, _) => KubeError::Forbidden { object, message },
                    (404, _) => KubeError::NotFound { object },
                    (409, "AlreadyExists") => KubeError::AlreadyExists { object },
                    (409, _) => KubeError::Conflict { object, message },
                    (429, _) | (500..=599, _) => KubeError::Transient {
                        object,
                        detail: format!("HTTP {}: {message}", status.code),
                        retry_after: status
                            .details
                            .as_ref()
                            .map(|d| d.retry_after_seconds)
                            .filter(|&s| s > 0)
                            .map(|s| std::time::Duration::from_secs(u64::from(s))),
                    },
                    // 410 (reason Expired) stays a refusal, recognised by `is_expired`.
                    (code, _) => KubeError::Refused {
                        object,
                        code,
                        message,
                    },
                }
            }
            kube::Error::Auth(e) => KubeError::Config(format!(
                "cannot load Kubernetes credentials for {object}: {e}"
            )),
            // A body of the wrong shape: described without the values serde would quote
            // (a list carries Secrets' data).
            kube::Error::SerdeError(e) => KubeError::Transient {
                object,
                detail: crate::failure::json_error_without_values(&e, false),
                retry_after: None,
            },
            other => KubeError::Transient {
                object,
                detail: root_cause(&other),
                retry_after: None,
            },
        }
    }

    /// A `Retry-After` header, when the answer had one, wins over what its body said.
    pub(crate) fn with_retry_after(mut self, header: Option<std::time::Duration>) -> KubeError {
        if let (KubeError::Transient { retry_after, .. }, Some(wait)) = (&mut self, header) {
            *retry_after = Some(wait);
        }
        self
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, KubeError::Transient { .. })
    }

    /// 410 Gone (reason `Expired`): the `continue` token of a paged list is older than
    /// the last etcd compaction. The list must start again without it.
    pub fn is_expired(&self) -> bool {
        matches!(self, KubeError::Refused { code: 410, .. })
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            KubeError::Unauthorized { .. } => {
                "the API server did not accept the credentials: check the kubeconfig or the pod's ServiceAccount token".to_string()
            }
            KubeError::Forbidden { object, message } => forbidden_hint(object, message),
            KubeError::NotFound { object } => {
                format!("create {object} first (e.g. with `secret-zero seal --apply`) or fix the name")
            }
            KubeError::Conflict { .. } => {
                "the Secret changed while we worked on it: run again".to_string()
            }
            KubeError::Transient { .. } => {
                "check that the Kubernetes API is reachable from here".to_string()
            }
            _ => return None,
        };
        Some(hint)
    }
}

/// Which grant a 403 asks for: the verb the API server names (`cannot list resource
/// "secrets"`), on what, and with which RBAC objects (a list in every namespace needs
/// a ClusterRole and a ClusterRoleBinding; one namespace, a Role and a RoleBinding).
fn forbidden_hint(object: &str, message: &str) -> String {
    let verb = message
        .split_once("cannot ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .filter(|v| v.chars().all(|c| c.is_ascii_lowercase()));
    // Lists are described as "PLURAL in NAMESPACE" or "PLURAL in all namespaces",
    // perhaps with " (SELECTOR)"; anything else names one object.
    let list = object
        .split_once(" (")
        .map_or(object, |(scope, _)| scope)
        .split_once(" in ");
    match list {
        Some((resource, "all namespaces")) => format!(
            "grant this identity the verb `{}` on {resource} in every namespace: a ClusterRole and a ClusterRoleBinding",
            verb.unwrap_or("list")
        ),
        Some((resource, namespace)) => format!(
            "grant this identity the verb `{}` on {resource} in namespace {namespace}: a Role and a RoleBinding there (or a ClusterRole bound there)",
            verb.unwrap_or("list")
        ),
        None => format!(
            "grant this identity the verb `{}` on {object}: a Role and a RoleBinding in its namespace",
            verb.unwrap_or("get")
        ),
    }
}

impl crate::retry::Transient for KubeError {
    fn is_transient(&self) -> bool {
        KubeError::is_transient(self)
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            KubeError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_of_the_wrong_shape_is_described_without_its_values() {
        let e = serde_json::from_str::<k8s_openapi::api::core::v1::Secret>(
            r#"{"metadata":{"generation":"c2VudGluZWw="}}"#,
        )
        .unwrap_err();
        let error = KubeError::from_kube("Secret shop/a", kube::Error::SerdeError(e));
        assert!(error.is_transient(), "{error}");
        assert!(!error.to_string().contains("c2VudGluZWw="), "{error}");
    }

    #[test]
    fn a_403_hint_names_the_verb_and_the_rbac_objects() {
        let hint = |object: &str, message: &str| {
            KubeError::Forbidden {
                object: object.into(),
                message: message.into(),
            }
            .hint()
            .unwrap()
        };
        assert_eq!(
            hint(
                "secrets in all namespaces (app.kubernetes.io/managed-by=secret-zero)",
                r#"secrets is forbidden: User "system:serviceaccount:ops:rot" cannot list resource "secrets" in API group "" at the cluster scope"#
            ),
            "grant this identity the verb `list` on secrets in every namespace: a ClusterRole and a ClusterRoleBinding"
        );
        assert_eq!(
            hint("secrets in shop", "forbidden"),
            "grant this identity the verb `list` on secrets in namespace shop: a Role and a RoleBinding there (or a ClusterRole bound there)"
        );
        assert_eq!(
            hint(
                "shop/app",
                r#"secrets "app" is forbidden: User "u" cannot update resource "secrets""#
            ),
            "grant this identity the verb `update` on shop/app: a Role and a RoleBinding in its namespace"
        );
    }
}
