//! core/v1 Secrets: get, list (one namespace or all), create, update with optimistic
//! concurrency, merge patch, delete.

use serde_json::{Value, json};

use super::decode;
use super::http::{ApiRequest, ApiResponse};
use super::ids;
use super::listing::{self, ListKind};
use super::merge_patch;
use super::rbac::Attributes;
use super::secret_object;
use super::state::{Cluster, resource_version_of};
use super::status;
use super::table;

const RESOURCE: &str = "secrets";

const LIST: ListKind = ListKind {
    list_kind: "SecretList",
    printer: &table::SECRETS,
    fields: &["metadata.name", "metadata.namespace", "type"],
};

type Answer = Result<ApiResponse, ApiResponse>;

pub(crate) fn handle(cluster: &mut Cluster, req: &ApiRequest, attrs: &Attributes) -> ApiResponse {
    let ns = attrs.namespace.as_deref();
    let answer = match (attrs.verb, ns, attrs.name.as_deref()) {
        ("list", ns, None) => Ok(list(cluster, req, ns)),
        ("get", Some(ns), Some(name)) => get(cluster, req, ns, name),
        ("create", Some(ns), None) => create(cluster, req, ns),
        ("update", Some(ns), Some(name)) => update(cluster, req, ns, name),
        ("patch", Some(ns), Some(name)) => patch(cluster, req, ns, name),
        ("delete", Some(ns), Some(name)) => delete(cluster, req, ns, name),
        _ => Err(status::method_not_allowed()),
    };
    answer.unwrap_or_else(|error| error)
}

fn unknown_fields(req: &ApiRequest) -> secret_object::Unknown {
    if req.query("fieldValidation") == Some("Strict") {
        secret_object::Unknown::Reject
    } else {
        secret_object::Unknown::Drop
    }
}

fn key(ns: &str, name: &str) -> (String, String) {
    (ns.to_string(), name.to_string())
}

fn stored(cluster: &Cluster, ns: &str, name: &str) -> Result<Value, ApiResponse> {
    cluster
        .secrets
        .get(&key(ns, name))
        .cloned()
        .ok_or_else(|| status::not_found("", RESOURCE, name))
}

fn get(cluster: &Cluster, req: &ApiRequest, ns: &str, name: &str) -> Answer {
    let secret = stored(cluster, ns, name)?;
    if req.wants_table() {
        let rv = resource_version_of(&secret).to_string();
        let table = table::render(&table::SECRETS, &[&secret], &rv, req.query("includeObject"));
        return Ok(ApiResponse::json(200, &table));
    }
    Ok(ApiResponse::json(200, &secret))
}

fn list(cluster: &Cluster, req: &ApiRequest, ns: Option<&str>) -> ApiResponse {
    let objects: Vec<&Value> = cluster
        .secrets
        .iter()
        .filter(|((object_ns, _), _)| ns.is_none_or(|ns| ns == object_ns))
        .map(|(_, secret)| secret)
        .collect();
    listing::respond(req, &LIST, objects, cluster.current_resource_version())
}

fn create(cluster: &mut Cluster, req: &ApiRequest, ns: &str) -> Answer {
    let body = decode::object(req, "Secret", "v1")?;
    let mut secret = secret_object::from_client(body, ns, None, unknown_fields(req))?;
    if !resource_version_of(&secret).is_empty() {
        return Err(status::internal_error(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let mut name = secret["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        let prefix = secret["metadata"]["generateName"].as_str().unwrap_or("");
        name = format!("{prefix}{}", ids::name_suffix());
        secret["metadata"]["name"] = json!(name);
    }
    if cluster.secrets.contains_key(&key(ns, &name)) {
        return Err(status::already_exists("", RESOURCE, &name));
    }
    if req.dry_run() {
        return Ok(ApiResponse::json(201, &secret));
    }
    let secret = cluster.store(|c| &mut c.secrets, ns, &name, secret);
    Ok(ApiResponse::json(201, &secret))
}

fn update(cluster: &mut Cluster, req: &ApiRequest, ns: &str, name: &str) -> Answer {
    let body = decode::object(req, "Secret", "v1")?;
    let new = secret_object::from_client(body, ns, Some(name), unknown_fields(req))?;
    let old = stored(cluster, ns, name)?;
    save_over(cluster, req, old, new)
}

fn patch(cluster: &mut Cluster, req: &ApiRequest, ns: &str, name: &str) -> Answer {
    let content_type = req.content_type();
    if !matches!(
        content_type.as_str(),
        "application/merge-patch+json" | "application/strategic-merge-patch+json"
    ) {
        return Err(status::unsupported_media_type(
            &content_type,
            "application/merge-patch+json, application/strategic-merge-patch+json \
             (the kube double does not implement json-patch or apply-patch)",
        ));
    }
    let patch: Value = serde_json::from_slice(&req.body)
        .map_err(|e| status::bad_request(&format!("error decoding patch: {e}")))?;
    let old = stored(cluster, ns, name)?;
    let mut patched = old.clone();
    merge_patch::apply(&mut patched, &patch);
    let new = secret_object::from_client(patched, ns, Some(name), unknown_fields(req))?;
    save_over(cluster, req, old, new)
}

/// The common tail of update and patch: optimistic concurrency, update rules, store.
fn save_over(cluster: &mut Cluster, req: &ApiRequest, old: Value, new: Value) -> Answer {
    let name = old["metadata"]["name"].as_str().unwrap_or("").to_string();
    // No resourceVersion means an unconditional update, which Secrets allow.
    let wanted = resource_version_of(&new);
    if !wanted.is_empty() && wanted != resource_version_of(&old) {
        return Err(status::conflict("", RESOURCE, &name, status::MODIFIED));
    }
    secret_object::validate_update(&old, &new)?;
    if req.dry_run() {
        return Ok(ApiResponse::json(200, &new));
    }
    let ns = old["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let saved = cluster.commit(Some(&old), new);
    cluster.secrets.insert(key(&ns, &name), saved.clone());
    Ok(ApiResponse::json(200, &saved))
}

fn delete(cluster: &mut Cluster, req: &ApiRequest, ns: &str, name: &str) -> Answer {
    let old = stored(cluster, ns, name)?;
    let uid = old["metadata"]["uid"].as_str().unwrap_or("").to_string();
    if let Some(options) = decode::optional_json(req) {
        let preconditions = &options["preconditions"];
        if let Some(want) = preconditions["uid"].as_str()
            && want != uid
        {
            let why = format!(
                "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
            );
            return Err(status::conflict("", RESOURCE, name, &why));
        }
        if let Some(want) = preconditions["resourceVersion"].as_str()
            && want != resource_version_of(&old)
        {
            let why = format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                resource_version_of(&old)
            );
            return Err(status::conflict("", RESOURCE, name, &why));
        }
    }
    if !req.dry_run() {
        cluster.secrets.remove(&key(ns, name));
        // A delete is a write: etcd's revision moves on.
        cluster.next_resource_version();
    }
    Ok(status::deleted("", RESOURCE, name, &uid))
}
