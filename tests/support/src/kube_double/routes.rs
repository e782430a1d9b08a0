//! One request, start to finish: log it, authenticate, find the handler, authorize,
//! answer. The order is the API server's: a bad token is a 401 even for public paths;
//! authorization happens before the handler looks at the object.

use super::authn::{self, User};
use super::backdoor;
use super::configmaps;
use super::discovery;
use super::http::{ApiRequest, ApiResponse};
use super::list_faults;
use super::namespaces;
use super::openapi;
use super::pods;
use super::rbac::{self, Attributes};
use super::secrets;
use super::serviceaccounts;
use super::state::Double;
use super::status;
use super::tokenreview;

const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

pub(crate) fn respond(double: &Double, req: &ApiRequest) -> ApiResponse {
    if let Some(rest) = req.path.strip_prefix(backdoor::PREFIX) {
        return backdoor::handle(double, req, rest);
    }
    let mut cluster = double.cluster();
    cluster.log.push(format!("{} {}", req.method, req.path));

    let user = match req.bearer() {
        Some(token) => match authn::authenticate(double, &cluster, token, &[]) {
            Ok(ok) => ok.user,
            Err(_) => return status::unauthorized(),
        },
        None => User::Anonymous,
    };

    if let Some(answer) = public(double, req) {
        return answer;
    }
    // Anonymous access is enabled only for the public paths above (an
    // AuthenticationConfiguration with `anonymous.conditions`), so the rest is 401.
    if matches!(user, User::Anonymous) {
        return status::unauthorized();
    }
    if let Some(answer) = discovery_document(double, req) {
        return answer;
    }
    let Some(attrs) = resource_attributes(req) else {
        return not_found(&req.path);
    };
    if let Some(denied) = rbac::authorize(&cluster, &user, &attrs) {
        return denied;
    }
    let listing = attrs.verb == "list";
    if listing && let Some(fault) = list_faults::before(&mut cluster, req) {
        return fault;
    }
    let answer = match (attrs.group, attrs.resource.as_str()) {
        ("", "secrets") => secrets::handle(&mut cluster, req, &attrs),
        ("", "configmaps") => configmaps::handle(&mut cluster, req, &attrs),
        ("", "pods") => pods::handle(&mut cluster, req, &attrs),
        ("", "serviceaccounts") => serviceaccounts::handle(double, &mut cluster, req, &attrs),
        ("", "namespaces") => namespaces::handle(&cluster, req, &attrs),
        (AUTHENTICATION_GROUP, "tokenreviews") if attrs.verb == "create" => {
            tokenreview::create(double, &cluster, req)
        }
        _ => status::method_not_allowed(),
    };
    let mut answer = answer;
    let secrets =
        attrs.group.is_empty() && attrs.resource == "secrets" && attrs.subresource.is_none();
    if answer.status == 200 && secrets && list_faults::cut(&mut cluster, attrs.verb, &mut answer) {
        return answer;
    }
    if listing && answer.status == 200 {
        list_faults::after(&mut cluster);
    }
    answer
}

/// Paths served to anyone: version, health and OIDC discovery.
fn public(double: &Double, req: &ApiRequest) -> Option<ApiResponse> {
    let answer = match req.path.as_str() {
        "/version" | "/version/" => ApiResponse::json(200, &discovery::version()),
        "/healthz" | "/livez" | "/readyz" => ApiResponse::text(200, "ok"),
        "/.well-known/openid-configuration" => {
            ApiResponse::json(200, &discovery::openid_configuration(&double.issuer))
        }
        "/openid/v1/jwks" => ApiResponse::json(200, &double.signer.jwks()),
        _ => return None,
    };
    Some(if req.method == "GET" {
        answer
    } else {
        status::method_not_allowed()
    })
}

/// Discovery and OpenAPI documents, readable by every authenticated user
/// (`system:discovery`).
fn discovery_document(double: &Double, req: &ApiRequest) -> Option<ApiResponse> {
    let document = match req.path.trim_end_matches('/') {
        "/api" => discovery::api_versions(double.issuer.trim_start_matches("https://")),
        "/api/v1" => discovery::core_v1(),
        "/apis" => discovery::api_groups(),
        "/apis/authentication.k8s.io" => discovery::authentication_group(),
        "/apis/authentication.k8s.io/v1" => discovery::authentication_v1(),
        "/openapi/v3" => openapi::root(),
        other => openapi::group_version(other)?,
    };
    Some(if req.method == "GET" {
        ApiResponse::json(200, &document)
    } else {
        status::method_not_allowed()
    })
}

/// Unknown API paths get a Status; anything else (`/openapi/v2`, ...)
/// gets Go's plain `404 page not found`, which tells kubectl the feature is absent.
fn not_found(path: &str) -> ApiResponse {
    if path.starts_with("/api/") || path.starts_with("/apis/") {
        status::no_such_resource()
    } else {
        ApiResponse::text(404, "404 page not found\n")
    }
}

/// The RequestInfo of a resource path, or `None` for paths that name no resource the
/// double serves.
fn resource_attributes(req: &ApiRequest) -> Option<Attributes> {
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", AUTHENTICATION_GROUP, "v1", rest @ ..] => (AUTHENTICATION_GROUP, rest),
        _ => return None,
    };
    let owned = |s: &&str| s.to_string();
    let (namespace, resource, name, subresource) = match rest {
        ["namespaces"] => (None, "namespaces", None, None),
        ["namespaces", ns] => (None, "namespaces", Some(owned(ns)), None),
        ["namespaces", ns, resource] => (Some(owned(ns)), *resource, None, None),
        ["namespaces", ns, resource, name] => (Some(owned(ns)), *resource, Some(owned(name)), None),
        ["namespaces", ns, resource, name, sub] => (
            Some(owned(ns)),
            *resource,
            Some(owned(name)),
            Some(owned(sub)),
        ),
        [resource] => (None, *resource, None, None),
        [resource, name] => (None, *resource, Some(owned(name)), None),
        _ => return None,
    };
    let namespaced = match (group, resource) {
        ("", "secrets" | "configmaps" | "serviceaccounts" | "pods") => true,
        ("", "namespaces") | (AUTHENTICATION_GROUP, "tokenreviews") => false,
        _ => return None,
    };
    // A namespaced resource addressed by name needs its namespace, and a
    // cluster-scoped one must not have one.
    if (namespaced && namespace.is_none() && name.is_some()) || (!namespaced && namespace.is_some())
    {
        return None;
    }
    let verb = match (req.method.as_str(), name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if matches!(req.query("watch"), Some("true" | "1")) => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unsupported",
    };
    Some(Attributes {
        verb,
        group,
        resource: resource.to_string(),
        subresource,
        namespace,
        name,
    })
}
