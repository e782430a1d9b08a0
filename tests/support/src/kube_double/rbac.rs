//! Authorization: what RBAC would decide for the request, and the 403 it would send.
//! Authenticated users may read discovery (the `system:discovery` role); the admin may
//! do anything; a ServiceAccount may do what its grants say.

use super::authn::User;
use super::http::ApiResponse;
use super::state::Cluster;
use super::status;

/// The RequestInfo of a resource request.
#[derive(Clone, Debug)]
pub(crate) struct Attributes {
    pub verb: &'static str,
    pub group: &'static str,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Attributes {
    /// `serviceaccounts/token` as RBAC rules name it.
    fn rbac_resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.clone(),
        }
    }
}

/// `None` when allowed, else the 403 to send.
pub(crate) fn authorize(cluster: &Cluster, user: &User, attrs: &Attributes) -> Option<ApiResponse> {
    let allowed = match user {
        User::Admin => true,
        User::Anonymous => false,
        User::ServiceAccount {
            namespace, name, ..
        } => cluster.grants.iter().any(|grant| {
            &grant.namespace == namespace
                && &grant.service_account == name
                && (grant.rule.cluster_wide
                    || (attrs.namespace.is_some() && attrs.namespace.as_ref() == Some(namespace)))
                && grant
                    .rule
                    .allows(attrs.verb, &attrs.rbac_resource(), attrs.name.as_deref())
        }),
    };
    if allowed {
        return None;
    }
    Some(status::forbidden(
        attrs.group,
        &attrs.resource,
        attrs.name.as_deref().unwrap_or(""),
        &forbidden_reason(user, attrs),
    ))
}

/// The authorizer's sentence, e.g. `User "system:serviceaccount:shop:app" cannot get
/// resource "secrets" in API group "" in the namespace "shop"`.
fn forbidden_reason(user: &User, attrs: &Attributes) -> String {
    let scope = match &attrs.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".to_string(),
    };
    format!(
        "User {:?} cannot {} resource {:?} in API group {:?} {scope}",
        user.username(),
        attrs.verb,
        attrs.rbac_resource(),
        attrs.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_double::rule::Rule;
    use crate::kube_double::state::Grant;

    fn sa() -> User {
        User::ServiceAccount {
            namespace: "shop".into(),
            name: "app".into(),
            uid: "u".into(),
            credential_id: String::new(),
        }
    }

    fn get_secret(ns: &str) -> Attributes {
        Attributes {
            verb: "get",
            group: "",
            resource: "secrets".into(),
            subresource: None,
            namespace: Some(ns.into()),
            name: Some("app-secrets".into()),
        }
    }

    fn cluster_with(rule: Rule) -> Cluster {
        let mut cluster = Cluster::new();
        cluster.grants.push(Grant {
            namespace: "shop".into(),
            service_account: "app".into(),
            rule,
        });
        cluster
    }

    #[test]
    fn namespaced_rules_stay_in_their_namespace() {
        let cluster = cluster_with(Rule::new(&["get"], &["secrets"]));
        assert!(authorize(&cluster, &sa(), &get_secret("shop")).is_none());
        let denied = authorize(&cluster, &sa(), &get_secret("other")).expect("403");
        let body: serde_json::Value = serde_json::from_slice(&denied.body).unwrap();
        assert_eq!(denied.status, 403);
        assert_eq!(
            body["message"],
            "secrets \"app-secrets\" is forbidden: User \"system:serviceaccount:shop:app\" \
             cannot get resource \"secrets\" in API group \"\" in the namespace \"other\""
        );
    }

    #[test]
    fn cluster_scoped_resources_need_a_cluster_wide_rule() {
        let review = Attributes {
            verb: "create",
            group: "authentication.k8s.io",
            resource: "tokenreviews".into(),
            subresource: None,
            namespace: None,
            name: None,
        };
        let namespaced = cluster_with(Rule::new(&["create"], &["tokenreviews"]));
        let denied = authorize(&namespaced, &sa(), &review).expect("403");
        let body: serde_json::Value = serde_json::from_slice(&denied.body).unwrap();
        assert_eq!(
            body["message"],
            "tokenreviews.authentication.k8s.io is forbidden: User \"system:serviceaccount:shop:app\" \
             cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope"
        );
        let wide = cluster_with(Rule::new(&["create"], &["tokenreviews"]).cluster_wide());
        assert!(authorize(&wide, &sa(), &review).is_none());
    }
}
