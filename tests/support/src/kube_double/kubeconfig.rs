//! A kubeconfig that kubectl, client-go and the kube crate all read: one cluster (the
//! double, its CA inline), one token user, one context. Strings are written as JSON
//! strings, which are valid YAML double-quoted scalars.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub(crate) fn render(server: &str, ca_pem: &str, token: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("JSON string");
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: kube-double\n\
         \x20 cluster:\n\
         \x20   server: {server}\n\
         \x20   certificate-authority-data: {ca}\n\
         users:\n\
         - name: kube-double-user\n\
         \x20 user:\n\
         \x20   token: {token}\n\
         contexts:\n\
         - name: kube-double\n\
         \x20 context:\n\
         \x20   cluster: kube-double\n\
         \x20   user: kube-double-user\n\
         \x20   namespace: default\n\
         current-context: kube-double\n\
         preferences: {{}}\n",
        server = q(server),
        ca = q(&STANDARD.encode(ca_pem)),
        token = q(token),
    )
}
