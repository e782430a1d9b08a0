//! Bearer-token authentication, shared by API requests and TokenReview. It follows the
//! API server's service-account JWT authenticator step by step (issuer, signature,
//! audience, time with go-jose's 60 s leeway, ServiceAccount still there with the same
//! uid) so that the errors TokenReview reports read like the real ones.

use serde_json::{Value, json};

use super::clock;
use super::signing;
use super::state::{Cluster, Double};
use super::status::go_quoted_list;

/// go-jose's `DefaultLeeway`, applied by the API server to `exp` and `nbf`.
const LEEWAY_SECS: i64 = 60;

/// The username behind the admin token.
pub(crate) const ADMIN_USER: &str = "kubernetes-admin";

#[derive(Clone, Debug)]
pub(crate) enum User {
    Admin,
    ServiceAccount {
        namespace: String,
        name: String,
        uid: String,
        /// `JTI=<jti>`, reported in `extra` as `authentication.kubernetes.io/credential-id`.
        credential_id: String,
    },
    Anonymous,
}

impl User {
    pub(crate) fn username(&self) -> String {
        match self {
            User::Admin => ADMIN_USER.to_string(),
            User::ServiceAccount {
                namespace, name, ..
            } => format!("system:serviceaccount:{namespace}:{name}"),
            User::Anonymous => "system:anonymous".to_string(),
        }
    }

    /// `status.user` of a TokenReview.
    pub(crate) fn user_info(&self) -> Value {
        match self {
            User::Admin => json!({
                "username": ADMIN_USER,
                "groups": ["system:masters", "system:authenticated"],
            }),
            User::ServiceAccount {
                namespace,
                uid,
                credential_id,
                ..
            } => json!({
                "username": self.username(),
                "uid": uid,
                "groups": [
                    "system:serviceaccounts",
                    format!("system:serviceaccounts:{namespace}"),
                    "system:authenticated",
                ],
                "extra": {
                    "authentication.kubernetes.io/credential-id": [credential_id],
                },
            }),
            User::Anonymous => json!({
                "username": "system:anonymous",
                "groups": ["system:unauthenticated"],
            }),
        }
    }
}

/// A successful authentication: who, and for which of the requested audiences.
pub(crate) struct Authenticated {
    pub user: User,
    pub audiences: Vec<String>,
}

/// Authenticates `token` for `requested` audiences (the API server's own when the
/// caller has none). The error is the text a TokenReview puts in `status.error`.
pub(crate) fn authenticate(
    double: &Double,
    cluster: &Cluster,
    token: &str,
    requested: &[String],
) -> Result<Authenticated, String> {
    let requested = if requested.is_empty() {
        double.api_audiences()
    } else {
        requested.to_vec()
    };
    if token == double.admin_token {
        // A static token knows only the API server's audiences.
        let api = double.api_audiences();
        let audiences = intersect(&api, &requested);
        if audiences.is_empty() {
            return Err(wrap(&audience_error(&api, &requested)));
        }
        return Ok(Authenticated {
            user: User::Admin,
            audiences,
        });
    }
    if signing::unverified_issuer(token).as_deref() != Some(double.issuer.as_str()) {
        return Err("invalid bearer token".to_string());
    }
    service_account_token(double, cluster, token, &requested).map_err(|e| wrap(&e))
}

fn service_account_token(
    double: &Double,
    cluster: &Cluster,
    token: &str,
    requested: &[String],
) -> Result<Authenticated, String> {
    let claims = double
        .signer
        .verify(token)
        .map_err(|e| e.message().to_string())?;
    let token_audiences: Vec<String> = match &claims["aud"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => double.api_audiences(),
    };
    let audiences = intersect(&token_audiences, requested);
    if audiences.is_empty() {
        return Err(audience_error(&token_audiences, requested));
    }

    let now = clock::now();
    if claims["exp"]
        .as_i64()
        .is_some_and(|exp| now - LEEWAY_SECS > exp)
    {
        return Err("service account token has expired".to_string());
    }
    if claims["nbf"]
        .as_i64()
        .is_some_and(|nbf| now + LEEWAY_SECS < nbf)
    {
        return Err("service account token is not valid yet".to_string());
    }

    let k8s = &claims["kubernetes.io"];
    let namespace = k8s["namespace"].as_str().unwrap_or("");
    let name = k8s["serviceaccount"]["name"].as_str().unwrap_or("");
    let claimed_uid = k8s["serviceaccount"]["uid"].as_str().unwrap_or("");
    let Some(uid) = cluster.service_account_uid(namespace, name) else {
        return Err(format!("serviceaccounts {name:?} not found"));
    };
    if uid != claimed_uid {
        return Err(format!(
            "service account UID ({uid}) does not match claim ({claimed_uid})"
        ));
    }
    Ok(Authenticated {
        user: User::ServiceAccount {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid,
            credential_id: format!("JTI={}", claims["jti"].as_str().unwrap_or("")),
        },
        audiences,
    })
}

/// `Audiences.Intersect`: the token's audiences that were asked for, in token order.
fn intersect(have: &[String], want: &[String]) -> Vec<String> {
    have.iter().filter(|h| want.contains(h)).cloned().collect()
}

fn audience_error(token_audiences: &[String], requested: &[String]) -> String {
    format!(
        "token audiences {} is invalid for the target audiences {}",
        go_quoted_list(token_audiences),
        go_quoted_list(requested)
    )
}

/// The union authenticator's aggregate, as seen in real `status.error` texts.
fn wrap(error: &str) -> String {
    format!("[invalid bearer token, {error}]")
}
