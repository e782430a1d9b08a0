//! One RBAC rule granted to a ServiceAccount: what a Role + RoleBinding (or, with
//! `cluster_wide`, a ClusterRole + ClusterRoleBinding) would say.

use serde::{Deserialize, Serialize};

/// A permission for a ServiceAccount.
///
/// Resources are named as in real RBAC: `secrets`, `serviceaccounts`,
/// `serviceaccounts/token`, `namespaces`, `tokenreviews` (the API group does not need
/// to be spelled out; `*` matches anything). A namespaced rule applies only in the
/// ServiceAccount's own namespace and never to cluster-scoped resources such as
/// `tokenreviews`, exactly like a RoleBinding; `cluster_wide` makes it a
/// ClusterRoleBinding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Rule {
    /// `get`, `list`, `create`, `update`, `patch`, `delete`, ... or `*`.
    pub verbs: Vec<String>,
    /// `secrets`, `serviceaccounts/token`, `tokenreviews`, ... or `*`.
    pub resources: Vec<String>,
    /// Empty means every object; otherwise only these names (never matches `list` or
    /// `create`, which carry no name, as in real RBAC).
    pub resource_names: Vec<String>,
    /// Applies in every namespace and to cluster-scoped resources.
    pub cluster_wide: bool,
}

impl Rule {
    /// `Rule::new(&["get"], &["secrets"])`.
    pub fn new(verbs: &[&str], resources: &[&str]) -> Rule {
        Rule {
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            ..Rule::default()
        }
    }

    /// Restricts the rule to these object names.
    pub fn names(mut self, names: &[&str]) -> Rule {
        self.resource_names = names.iter().map(|n| n.to_string()).collect();
        self
    }

    /// Makes the rule apply cluster-wide (a ClusterRoleBinding).
    pub fn cluster_wide(mut self) -> Rule {
        self.cluster_wide = true;
        self
    }

    /// Parses the command-line form `VERBS:RESOURCES[:NAMES]`, each a comma-separated
    /// list, e.g. `get,list:secrets:app-secrets`.
    pub fn parse(spec: &str) -> Result<Rule, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        if !(2..=3).contains(&parts.len()) || parts[0].is_empty() || parts[1].is_empty() {
            return Err(format!(
                "rule {spec:?}: expected VERBS:RESOURCES[:NAMES], e.g. get,list:secrets:app-secrets"
            ));
        }
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        };
        Ok(Rule {
            verbs: list(parts[0]),
            resources: list(parts[1]),
            resource_names: parts.get(2).map(|n| list(n)).unwrap_or_default(),
            cluster_wide: false,
        })
    }

    /// Whether the rule allows `verb` on `resource` (already including any
    /// `/subresource`) for the object `name`.
    pub(crate) fn allows(&self, verb: &str, resource: &str, name: Option<&str>) -> bool {
        let any = |list: &[String], item: &str| list.iter().any(|x| x == "*" || x == item);
        any(&self.verbs, verb)
            && any(&self.resources, resource)
            && (self.resource_names.is_empty()
                || name.is_some_and(|n| self.resource_names.iter().any(|x| x == n)))
    }
}

#[cfg(test)]
mod tests {
    use super::Rule;

    #[test]
    fn parses_the_cli_form() {
        let rule = Rule::parse("get,list:secrets:a,b").unwrap();
        assert_eq!(
            rule,
            Rule::new(&["get", "list"], &["secrets"]).names(&["a", "b"])
        );
        assert!(Rule::parse("get").is_err());
    }

    #[test]
    fn names_restrict_and_never_match_nameless_requests() {
        let rule = Rule::new(&["get", "list"], &["secrets"]).names(&["app"]);
        assert!(rule.allows("get", "secrets", Some("app")));
        assert!(!rule.allows("get", "secrets", Some("other")));
        assert!(!rule.allows("list", "secrets", None));
        assert!(!rule.allows("delete", "secrets", Some("app")));
    }
}
