//! core/v1 ServiceAccounts (create, get, list, delete) and their `token` subresource,
//! the TokenRequest API.

use serde_json::{Map, Value, json};

use super::clock;
use super::decode;
use super::http::{ApiRequest, ApiResponse};
use super::listing::{self, ListKind};
use super::rbac::Attributes;
use super::state::{Cluster, Double};
use super::status::{self, FieldError};
use super::table;
use super::tokens;

const RESOURCE: &str = "serviceaccounts";

const LIST: ListKind = ListKind {
    list_kind: "ServiceAccountList",
    printer: &table::SERVICE_ACCOUNTS,
    fields: &["metadata.name", "metadata.namespace"],
};

/// `expirationSeconds` when the request has none.
const DEFAULT_EXPIRATION_SECS: i64 = 3600;
/// ValidateTokenRequest's floor and ceiling.
const MIN_EXPIRATION_SECS: i64 = 600;
const MAX_EXPIRATION_SECS: i64 = 1 << 32;

type Answer = Result<ApiResponse, ApiResponse>;

pub(crate) fn handle(
    double: &Double,
    cluster: &mut Cluster,
    req: &ApiRequest,
    attrs: &Attributes,
) -> ApiResponse {
    let ns = attrs.namespace.as_deref();
    let name = attrs.name.as_deref();
    let answer = match (attrs.verb, attrs.subresource.as_deref(), ns, name) {
        ("create", Some("token"), Some(ns), Some(name)) => token(double, cluster, req, ns, name),
        (_, Some(_), _, _) => Err(status::no_such_resource()),
        ("list", None, ns, None) => Ok(list(cluster, req, ns)),
        ("get", None, Some(ns), Some(name)) => get(cluster, req, ns, name),
        ("create", None, Some(ns), None) => create(cluster, req, ns),
        ("delete", None, Some(ns), Some(name)) => delete(cluster, ns, name),
        _ => Err(status::method_not_allowed()),
    };
    answer.unwrap_or_else(|error| error)
}

fn key(ns: &str, name: &str) -> (String, String) {
    (ns.to_string(), name.to_string())
}

fn stored(cluster: &Cluster, ns: &str, name: &str) -> Result<Value, ApiResponse> {
    cluster
        .service_accounts
        .get(&key(ns, name))
        .cloned()
        .ok_or_else(|| status::not_found("", RESOURCE, name))
}

fn get(cluster: &Cluster, req: &ApiRequest, ns: &str, name: &str) -> Answer {
    let account = stored(cluster, ns, name)?;
    if req.wants_table() {
        let rv = account["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let table = table::render(
            &table::SERVICE_ACCOUNTS,
            &[&account],
            &rv,
            req.query("includeObject"),
        );
        return Ok(ApiResponse::json(200, &table));
    }
    Ok(ApiResponse::json(200, &account))
}

fn list(cluster: &Cluster, req: &ApiRequest, ns: Option<&str>) -> ApiResponse {
    let objects: Vec<&Value> = cluster
        .service_accounts
        .iter()
        .filter(|((object_ns, _), _)| ns.is_none_or(|ns| ns == object_ns))
        .map(|(_, account)| account)
        .collect();
    listing::respond(req, &LIST, objects, cluster.current_resource_version())
}

fn create(cluster: &mut Cluster, req: &ApiRequest, ns: &str) -> Answer {
    let body = decode::object(req, "ServiceAccount", "v1")?;
    let meta = body["metadata"].as_object().cloned().unwrap_or_default();
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        let error = FieldError::required("metadata.name", "name or generateName is required");
        return Err(status::invalid("", "ServiceAccount", "", &[error]));
    }
    if meta
        .get("namespace")
        .and_then(Value::as_str)
        .is_some_and(|body_ns| !body_ns.is_empty() && body_ns != ns)
    {
        return Err(status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if cluster.service_accounts.contains_key(&key(ns, &name)) {
        return Err(status::already_exists("", RESOURCE, &name));
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    metadata.insert("namespace".into(), json!(ns));
    for field in ["labels", "annotations"] {
        if let Some(value) = meta.get(field) {
            metadata.insert(field.into(), value.clone());
        }
    }
    let mut account = json!({ "kind": "ServiceAccount", "apiVersion": "v1", "metadata": metadata });
    if let Some(automount) = body.get("automountServiceAccountToken") {
        account["automountServiceAccountToken"] = automount.clone();
    }
    if req.dry_run() {
        return Ok(ApiResponse::json(201, &account));
    }
    cluster.ensure_namespace(ns);
    let account = cluster.commit(None, account);
    cluster
        .service_accounts
        .insert(key(ns, &name), account.clone());
    Ok(ApiResponse::json(201, &account))
}

fn delete(cluster: &mut Cluster, ns: &str, name: &str) -> Answer {
    let old = stored(cluster, ns, name)?;
    cluster.service_accounts.remove(&key(ns, name));
    cluster.next_resource_version();
    let uid = old["metadata"]["uid"].as_str().unwrap_or("");
    Ok(status::deleted("", RESOURCE, name, uid))
}

/// `POST .../serviceaccounts/NAME/token`, in the order the real handler checks things:
/// body names, the ServiceAccount, then field validation.
fn token(double: &Double, cluster: &Cluster, req: &ApiRequest, ns: &str, name: &str) -> Answer {
    let body = decode::object(req, "TokenRequest", "authentication.k8s.io/v1")?;
    for (field, url_value, what) in [("name", name, "name"), ("namespace", ns, "namespace")] {
        let body_value = body["metadata"][field].as_str().unwrap_or("");
        if !body_value.is_empty() && body_value != url_value {
            let error = FieldError::invalid(
                &format!("metadata.{field}"),
                &format!("{body_value:?}"),
                &format!("must match the service account {what} if specified"),
            );
            return Err(status::invalid(
                "authentication.k8s.io",
                "TokenRequest",
                name,
                &[error],
            ));
        }
    }
    let account = stored(cluster, ns, name)?;
    let uid = account["metadata"]["uid"]
        .as_str()
        .unwrap_or("")
        .to_string();

    let spec = &body["spec"];
    if spec["boundObjectRef"].is_object() {
        return Err(status::bad_request(
            "the kube double does not bind tokens to objects (boundObjectRef)",
        ));
    }
    let mut audiences: Vec<String> = decode::strings(&spec["audiences"]);
    if audiences.is_empty() {
        audiences = double.api_audiences();
    }
    let expiration = spec["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION_SECS);
    let mut errors = Vec::new();
    if expiration < MIN_EXPIRATION_SECS {
        errors.push(FieldError::invalid(
            "spec.expirationSeconds",
            &expiration.to_string(),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION_SECS {
        errors.push(FieldError::invalid(
            "spec.expirationSeconds",
            &expiration.to_string(),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !errors.is_empty() {
        return Err(status::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            "",
            &errors,
        ));
    }

    let issued = tokens::issue(double, ns, name, &uid, &audiences, expiration);
    Ok(ApiResponse::json(
        201,
        &json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": name,
                "namespace": ns,
                "creationTimestamp": clock::rfc3339(clock::now()),
            },
            "spec": {
                "audiences": audiences,
                "expirationSeconds": expiration,
                "boundObjectRef": null,
            },
            "status": {
                "token": issued.token,
                "expirationTimestamp": clock::rfc3339(issued.expires_at),
            },
        }),
    ))
}
