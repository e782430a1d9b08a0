//! Just enough OpenAPI v3 for kubectl's `--validate=strict` (its default): kubectl
//! reads `/openapi/v3`, then the core/v1 document, and looks for a PATCH operation of
//! the object's kind that takes the `fieldValidation` query parameter. Finding it,
//! kubectl leaves validation to the server (`?fieldValidation=Strict`) instead of
//! downloading schemas. No schemas are served; `/openapi/v2` stays a 404.

use serde_json::{Value, json};

const CORE_V1: &str = "/openapi/v3/api/v1";

/// `/openapi/v3`: where each group-version's document lives.
pub(crate) fn root() -> Value {
    json!({
        "paths": {
            "api/v1": { "serverRelativeURL": format!("{CORE_V1}?hash=kube-double-1") },
        }
    })
}

/// The document of one group-version, by path (query string excluded).
pub(crate) fn group_version(path: &str) -> Option<Value> {
    if path != CORE_V1 {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for (plural, kind) in [("secrets", "Secret"), ("serviceaccounts", "ServiceAccount")] {
        let patch = json!({
            "operationId": format!("patchCoreV1Namespaced{kind}"),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": { "group": "", "version": "v1", "kind": kind },
            "parameters": [
                { "name": "fieldValidation", "in": "query", "schema": { "type": "string" } },
                { "name": "dryRun", "in": "query", "schema": { "type": "string" } },
            ],
            "responses": { "200": { "description": "OK" } },
        });
        paths.insert(
            format!("/api/v1/namespaces/{{namespace}}/{plural}/{{name}}"),
            json!({ "patch": patch }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.32.4" },
        "paths": paths,
    }))
}
