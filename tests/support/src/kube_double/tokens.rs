//! ServiceAccount tokens: the claims the TokenRequest API puts in a JWT bound to a
//! ServiceAccount only (no Pod or Secret binding).

use serde_json::{Value, json};

use super::clock;
use super::ids;
use super::state::Double;

/// A freshly issued token and its `exp`.
pub(crate) struct Issued {
    pub token: String,
    pub expires_at: i64,
}

/// Signs a token for `system:serviceaccount:NS:NAME`. `expiration_secs` is taken as
/// given (the 10-minute floor is the TokenRequest handler's job, not the signer's).
pub(crate) fn issue(
    double: &Double,
    namespace: &str,
    name: &str,
    uid: &str,
    audiences: &[String],
    expiration_secs: i64,
) -> Issued {
    let now = clock::now();
    let expires_at = now + expiration_secs;
    let claims: Value = json!({
        "aud": audiences,
        "exp": expires_at,
        "iat": now,
        "iss": double.issuer,
        "jti": ids::new_uid(),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": { "name": name, "uid": uid },
        },
        "nbf": now,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
    });
    Issued {
        token: double.signer.sign(&claims),
        expires_at,
    }
}
