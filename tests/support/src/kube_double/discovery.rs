//! What clients read before anything else: `/version`, legacy discovery (`/api`,
//! `/api/v1`, `/apis`, `/apis/authentication.k8s.io/v1`) and OIDC discovery.
//!
//! Aggregated discovery (`Accept: ...;g=apidiscovery.k8s.io;v=v2`) is answered with the
//! legacy documents as `application/json`, which is what an older server does and what
//! client-go falls back on; `/openapi/*` is a plain 404, as with OpenAPI disabled.

use serde_json::{Value, json};

/// Kept at kubectl's own minor so kubectl does not warn about version skew.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T00:00:00Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn api_versions(host: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": host }],
    })
}

/// Only the verbs the double implements are advertised.
pub(crate) fn core_v1() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": "configmaps",
                "singularName": "configmap",
                "namespaced": true,
                "kind": "ConfigMap",
                "verbs": ["create", "delete", "get"],
                "shortNames": ["cm"],
            },
            {
                "name": "namespaces",
                "singularName": "namespace",
                "namespaced": false,
                "kind": "Namespace",
                "verbs": ["get", "list"],
                "shortNames": ["ns"],
            },
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get", "list"],
                "shortNames": ["po"],
                "categories": ["all"],
            },
            {
                "name": "secrets",
                "singularName": "secret",
                "namespaced": true,
                "kind": "Secret",
                "verbs": ["create", "delete", "get", "list", "patch", "update"],
            },
            {
                "name": "serviceaccounts",
                "singularName": "serviceaccount",
                "namespaced": true,
                "kind": "ServiceAccount",
                "verbs": ["create", "delete", "get", "list"],
                "shortNames": ["sa"],
            },
            {
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": true,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            },
        ],
    })
}

fn authentication_version() -> Value {
    json!({ "groupVersion": "authentication.k8s.io/v1", "version": "v1" })
}

pub(crate) fn authentication_group() -> Value {
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "authentication.k8s.io",
        "versions": [authentication_version()],
        "preferredVersion": authentication_version(),
    })
}

pub(crate) fn api_groups() -> Value {
    let mut group = authentication_group();
    let fields = group.as_object_mut().expect("object");
    fields.remove("kind");
    fields.remove("apiVersion");
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": [group] })
}

pub(crate) fn authentication_v1() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "authentication.k8s.io/v1",
        "resources": [{
            "name": "tokenreviews",
            "singularName": "tokenreview",
            "namespaced": false,
            "kind": "TokenReview",
            "verbs": ["create"],
        }],
    })
}

/// `/.well-known/openid-configuration`, as the API server serves it.
pub(crate) fn openid_configuration(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/openid/v1/jwks"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
}
