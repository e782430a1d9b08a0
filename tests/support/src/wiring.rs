//! OpenBao's auth methods pointed at the Kubernetes API double, as a cluster operator
//! would configure them.

use serde_json::json;

use crate::kube_double::{KubeDouble, Rule};
use crate::openbao::OpenBao;

/// Enable kubernetes auth at `kubernetes` and point it at the double: OpenBao calls
/// TokenReview there with the token of ServiceAccount vault/reviewer, which may create
/// tokenreviews cluster-wide (the `system:auth-delegator` of a real cluster).
pub fn kubernetes_auth(bao: &OpenBao, double: &KubeDouble) {
    let reviewer = token_reviewer(double);
    bao.enable_auth("kubernetes", "kubernetes");
    bao.write(
        "auth/kubernetes/config",
        json!({
            "kubernetes_host": double.url(),
            "kubernetes_ca_cert": double.ca_pem(),
            "token_reviewer_jwt": reviewer,
            "disable_local_ca_jwt": true,
        }),
    );
}

/// ServiceAccount vault/reviewer, allowed to create tokenreviews cluster-wide (the
/// `system:auth-delegator` of a real cluster); returns its API token (an hour).
pub fn token_reviewer(double: &KubeDouble) -> String {
    double.create_service_account("vault", "reviewer");
    double.grant(
        "vault",
        "reviewer",
        Rule::new(&["create"], &["tokenreviews"]).cluster_wide(),
    );
    double.issue_token("vault", "reviewer", &[&double.issuer()], 3600)
}

/// A kubernetes auth role for ServiceAccount `namespace/sa`, audience `vault`, with the
/// short-lived, few-use tokens the agent needs (10 s, 3 uses).
pub fn kubernetes_role(bao: &OpenBao, role: &str, namespace: &str, sa: &str, policies: &[&str]) {
    kubernetes_role_with(bao, role, namespace, sa, policies, "10s", 3);
}

/// [`kubernetes_role`] with its own token lifetime and number of uses (0: unlimited),
/// for a sealer or a rotator that makes many calls with one login.
pub fn kubernetes_role_with(
    bao: &OpenBao,
    role: &str,
    namespace: &str,
    sa: &str,
    policies: &[&str],
    ttl: &str,
    num_uses: u32,
) {
    bao.write(
        &format!("auth/kubernetes/role/{role}"),
        json!({
            "bound_service_account_names": [sa],
            "bound_service_account_namespaces": [namespace],
            "audience": "vault",
            "token_policies": policies,
            "token_ttl": ttl,
            "token_num_uses": num_uses,
        }),
    );
}

/// How OpenBao's jwt auth checks the double's token signatures.
#[derive(Clone, Copy, Debug)]
pub enum JwtKeys {
    /// Fetched from the double's JWKS endpoint (over TLS, trusting its CA).
    Jwks,
    /// The double's signing public key, configured once.
    PublicKey,
}

/// Enable jwt auth at `jwt`, trusting the double's tokens (issuer bound).
pub fn jwt_auth(bao: &OpenBao, double: &KubeDouble, keys: JwtKeys) {
    bao.enable_auth("jwt", "jwt");
    let config = match keys {
        JwtKeys::Jwks => json!({
            "jwks_url": format!("{}/openid/v1/jwks", double.url()),
            "jwks_ca_pem": double.ca_pem(),
            "bound_issuer": double.issuer(),
        }),
        JwtKeys::PublicKey => json!({
            "jwt_validation_pubkeys": [double.signing_public_key_pem()],
            "bound_issuer": double.issuer(),
        }),
    };
    bao.write("auth/jwt/config", config);
}

/// A jwt auth role for ServiceAccount `namespace/sa` (subject bound), audience
/// `vault`, with the agent's short-lived, few-use tokens (10 s, 3 uses).
pub fn jwt_role(bao: &OpenBao, role: &str, namespace: &str, sa: &str, policies: &[&str]) {
    bao.write(
        &format!("auth/jwt/role/{role}"),
        json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["vault"],
            "bound_subject": format!("system:serviceaccount:{namespace}:{sa}"),
            "token_policies": policies,
            "token_ttl": "10s",
            "token_num_uses": 3,
        }),
    );
}
