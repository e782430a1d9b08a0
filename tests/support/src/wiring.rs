//! OpenBao's auth methods pointed at the Kubernetes API double, as a cluster operator
//! would configure them.

use serde_json::json;

use crate::kube_double::{KubeDouble, Rule};
use crate::openbao::OpenBao;

/// Enable kubernetes auth at `kubernetes` and point it at the double: OpenBao calls
/// TokenReview there with the token of ServiceAccount vault/reviewer, which may create
/// tokenreviews cluster-wide (the `system:auth-delegator` of a real cluster).
pub fn kubernetes_auth(bao: &OpenBao, double: &KubeDouble) {
    double.create_service_account("vault", "reviewer");
    double.grant(
        "vault",
        "reviewer",
        Rule::new(&["create"], &["tokenreviews"]).cluster_wide(),
    );
    let reviewer = double.issue_token("vault", "reviewer", &[&double.issuer()], 3600);
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

/// A kubernetes auth role for ServiceAccount `namespace/sa`, audience `vault`, with the
/// short-lived, few-use tokens the agent needs.
pub fn kubernetes_role(bao: &OpenBao, role: &str, namespace: &str, sa: &str, policies: &[&str]) {
    bao.write(
        &format!("auth/kubernetes/role/{role}"),
        json!({
            "bound_service_account_names": [sa],
            "bound_service_account_namespaces": [namespace],
            "audience": "vault",
            "token_policies": policies,
            "token_ttl": "10s",
            "token_num_uses": 3,
        }),
    );
}
