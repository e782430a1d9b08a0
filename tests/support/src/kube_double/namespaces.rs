//! core/v1 Namespaces, read-only: they appear on first use (or `create_namespace`).

use serde_json::Value;

use super::http::{ApiRequest, ApiResponse};
use super::listing::{self, ListKind};
use super::rbac::Attributes;
use super::state::Cluster;
use super::status;
use super::table;

const LIST: ListKind = ListKind {
    list_kind: "NamespaceList",
    printer: &table::NAMESPACES,
    fields: &["metadata.name"],
};

pub(crate) fn handle(cluster: &Cluster, req: &ApiRequest, attrs: &Attributes) -> ApiResponse {
    match (attrs.verb, attrs.name.as_deref()) {
        ("list", None) => {
            let objects: Vec<&Value> = cluster.namespaces.values().collect();
            listing::respond(req, &LIST, objects, cluster.current_resource_version())
        }
        ("get", Some(name)) => match cluster.namespaces.get(name) {
            Some(ns) if req.wants_table() => {
                let rv = ns["metadata"]["resourceVersion"].as_str().unwrap_or("");
                let table =
                    table::render(&table::NAMESPACES, &[ns], rv, req.query("includeObject"));
                ApiResponse::json(200, &table)
            }
            Some(ns) => ApiResponse::json(200, ns),
            None => status::not_found("", "namespaces", name),
        },
        _ => status::method_not_allowed(),
    }
}
