//! Operations the test bed performs directly on the cluster, shared by the in-process
//! API ([`KubeDouble`](super::KubeDouble)) and the HTTP back door.

use super::rule::Rule;
use super::state::{Double, Grant};
use super::{ids, tokens};

pub(crate) fn grant(double: &Double, namespace: &str, service_account: &str, rule: Rule) {
    double.cluster().grants.push(Grant {
        namespace: namespace.to_string(),
        service_account: service_account.to_string(),
        rule,
    });
}

/// A token as TokenRequest would sign it, without its 10-minute floor. A token for a
/// ServiceAccount that does not exist gets a random uid (and fails review with
/// `serviceaccounts "NAME" not found`, as a deleted account's tokens do).
pub(crate) fn issue_token(
    double: &Double,
    namespace: &str,
    service_account: &str,
    audiences: &[String],
    expiration_secs: i64,
) -> String {
    let uid = double
        .cluster()
        .service_account_uid(namespace, service_account)
        .unwrap_or_else(ids::new_uid);
    let audiences = if audiences.is_empty() {
        double.api_audiences()
    } else {
        audiences.to_vec()
    };
    tokens::issue(
        double,
        namespace,
        service_account,
        &uid,
        &audiences,
        expiration_secs,
    )
    .token
}
