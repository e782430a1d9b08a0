//! core/v1 ConfigMaps: get, create, delete; enough for secret-zero's
//! `--plaintext-configmap` source and for tests that set one up over the wire.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::decode;
use super::http::{ApiRequest, ApiResponse};
use super::rbac::Attributes;
use super::state::Cluster;
use super::status::{self, FieldError};

const RESOURCE: &str = "configmaps";

type Answer = Result<ApiResponse, ApiResponse>;

pub(crate) fn handle(cluster: &mut Cluster, req: &ApiRequest, attrs: &Attributes) -> ApiResponse {
    let ns = attrs.namespace.as_deref();
    let answer = match (attrs.verb, ns, attrs.name.as_deref()) {
        ("get", Some(ns), Some(name)) => get(cluster, ns, name),
        ("create", Some(ns), None) => create(cluster, req, ns),
        ("delete", Some(ns), Some(name)) => delete(cluster, req, ns, name),
        _ => Err(status::method_not_allowed()),
    };
    answer.unwrap_or_else(|error| error)
}

fn key(ns: &str, name: &str) -> (String, String) {
    (ns.to_string(), name.to_string())
}

fn get(cluster: &Cluster, ns: &str, name: &str) -> Answer {
    cluster
        .configmaps
        .get(&key(ns, name))
        .map(|object| ApiResponse::json(200, object))
        .ok_or_else(|| status::not_found("", RESOURCE, name))
}

fn create(cluster: &mut Cluster, req: &ApiRequest, ns: &str) -> Answer {
    let body = decode::object(req, "ConfigMap", "v1")?;
    let object = from_client(body, ns)?;
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if cluster.configmaps.contains_key(&key(ns, &name)) {
        return Err(status::already_exists("", RESOURCE, &name));
    }
    if req.dry_run() {
        return Ok(ApiResponse::json(201, &object));
    }
    let object = cluster.store(|c| &mut c.configmaps, ns, &name, object);
    Ok(ApiResponse::json(201, &object))
}

fn delete(cluster: &mut Cluster, req: &ApiRequest, ns: &str, name: &str) -> Answer {
    let old = cluster
        .configmaps
        .get(&key(ns, name))
        .cloned()
        .ok_or_else(|| status::not_found("", RESOURCE, name))?;
    let uid = old["metadata"]["uid"].as_str().unwrap_or("").to_string();
    if !req.dry_run() {
        cluster.configmaps.remove(&key(ns, name));
        cluster.next_resource_version();
    }
    Ok(status::deleted("", RESOURCE, name, &uid))
}

/// Validates a ConfigMap as the API server would (name, string `data`, base64
/// `binaryData`, no key in both) and returns it as stored, without server metadata.
pub(crate) fn from_client(mut object: Value, ns: &str) -> Result<Value, ApiResponse> {
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    match object["metadata"]["namespace"].as_str() {
        Some(given) if !given.is_empty() && given != ns => {
            return Err(status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => {}
    }
    let mut keys = Map::new();
    match &object["data"] {
        Value::Null => {}
        Value::Object(data) => {
            for (k, v) in data {
                if !v.is_string() {
                    errors.push(FieldError::invalid(
                        &format!("data[{k}]"),
                        "",
                        "must be a string",
                    ));
                }
                keys.insert(k.clone(), Value::Null);
            }
        }
        _ => errors.push(FieldError::invalid("data", "", "must be a map of strings")),
    }
    match &object["binaryData"] {
        Value::Null => {}
        Value::Object(data) => {
            for (k, v) in data {
                let decodes = v
                    .as_str()
                    .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
                if !decodes {
                    errors.push(FieldError::invalid(
                        &format!("binaryData[{k}]"),
                        "",
                        "must be base64",
                    ));
                }
                if keys.contains_key(k) {
                    errors.push(FieldError::invalid(
                        &format!("binaryData[{k}]"),
                        k,
                        "duplicate of key present in data",
                    ));
                }
            }
        }
        _ => errors.push(FieldError::invalid(
            "binaryData",
            "",
            "must be a map of base64 strings",
        )),
    }
    if !errors.is_empty() {
        return Err(status::invalid("", "ConfigMap", &name, &errors));
    }
    object["apiVersion"] = json!("v1");
    object["kind"] = json!("ConfigMap");
    object["metadata"]["namespace"] = json!(ns);
    if let Some(meta) = object["metadata"].as_object_mut() {
        for server_owned in ["uid", "creationTimestamp", "resourceVersion"] {
            meta.remove(server_owned);
        }
    }
    Ok(object)
}
