//! `metav1.Status` answers, worded as the real API server words them, because clients
//! (kubectl, client-go, the kube crate, OpenBao) branch on `reason` and print `message`.

use serde_json::{Value, json};

use super::http::ApiResponse;

fn failure(code: u16, reason: &str, message: &str, details: Option<Value>) -> ApiResponse {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    ApiResponse::json(code, &status)
}

/// `details` of a Status: `kind` is the resource (plural), `group` only when non-core.
fn details(group: &str, resource: &str, name: &str) -> Value {
    let mut details = json!({ "kind": resource });
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    details
}

/// `secrets` or `tokenreviews.authentication.k8s.io`, as `GroupResource.String()`.
pub(crate) fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

pub(crate) fn unauthorized() -> ApiResponse {
    failure(401, "Unauthorized", "Unauthorized", None)
}

/// 403 for a resource request; `why` is the authorizer's sentence.
pub(crate) fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> ApiResponse {
    let message = if name.is_empty() {
        format!("{} is forbidden: {why}", qualified(group, resource))
    } else {
        format!(
            "{} {name:?} is forbidden: {why}",
            qualified(group, resource)
        )
    };
    failure(
        403,
        "Forbidden",
        &message,
        Some(details(group, resource, name)),
    )
}

/// 403 for a non-resource path (`/kube-double/...` without the admin token).
pub(crate) fn forbidden_path(message: &str) -> ApiResponse {
    failure(
        403,
        "Forbidden",
        &format!("forbidden: {message}"),
        Some(json!({})),
    )
}

pub(crate) fn not_found(group: &str, resource: &str, name: &str) -> ApiResponse {
    let message = format!("{} {name:?} not found", qualified(group, resource));
    failure(
        404,
        "NotFound",
        &message,
        Some(details(group, resource, name)),
    )
}

/// An unknown resource or path under `/api` and `/apis`.
pub(crate) fn no_such_resource() -> ApiResponse {
    failure(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

pub(crate) fn already_exists(group: &str, resource: &str, name: &str) -> ApiResponse {
    let message = format!("{} {name:?} already exists", qualified(group, resource));
    failure(
        409,
        "AlreadyExists",
        &message,
        Some(details(group, resource, name)),
    )
}

/// 409 Conflict: `Operation cannot be fulfilled on secrets "x": <why>`.
pub(crate) fn conflict(group: &str, resource: &str, name: &str, why: &str) -> ApiResponse {
    let message = format!(
        "Operation cannot be fulfilled on {} {name:?}: {why}",
        qualified(group, resource)
    );
    failure(
        409,
        "Conflict",
        &message,
        Some(details(group, resource, name)),
    )
}

/// The `why` of an update whose `resourceVersion` is stale.
pub(crate) const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// One failed field check inside a 422 Invalid.
pub(crate) struct FieldError {
    pub field: String,
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, ...
    pub reason: &'static str,
    /// E.g. `Invalid value: 60: may not specify a duration less than 10 minutes`.
    pub message: String,
}

impl FieldError {
    /// `field.Invalid(path, value, detail)`; `value` is already rendered as Go prints it.
    pub(crate) fn invalid(field: &str, value: &str, detail: &str) -> FieldError {
        FieldError {
            field: field.to_string(),
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {value}: {detail}"),
        }
    }

    pub(crate) fn required(field: &str, detail: &str) -> FieldError {
        FieldError {
            field: field.to_string(),
            reason: "FieldValueRequired",
            message: format!("Required value: {detail}"),
        }
    }

    /// `field.Duplicate(path, value)` for a string value.
    pub(crate) fn duplicate(field: &str, value: &str) -> FieldError {
        FieldError {
            field: field.to_string(),
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: {value:?}"),
        }
    }

    pub(crate) fn forbidden(field: &str, detail: &str) -> FieldError {
        FieldError {
            field: field.to_string(),
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {detail}"),
        }
    }
}

/// 422 Invalid: `Kind.group "name" is invalid: field: message`.
pub(crate) fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> ApiResponse {
    let rendered: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    let joined = match rendered.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let message = format!("{} {name:?} is invalid: {joined}", qualified(group, kind));
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
        .collect();
    let mut details = details(group, kind, name);
    details["causes"] = json!(causes);
    failure(422, "Invalid", &message, Some(details))
}

pub(crate) fn bad_request(message: &str) -> ApiResponse {
    failure(400, "BadRequest", message, None)
}

pub(crate) fn method_not_allowed() -> ApiResponse {
    failure(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(json!({})),
    )
}

pub(crate) fn unsupported_media_type(content_type: &str, accepted: &str) -> ApiResponse {
    let message = format!(
        "the body of the request was in an unknown format ({content_type:?}) - accepted media types include: {accepted}"
    );
    failure(415, "UnsupportedMediaType", &message, Some(json!({})))
}

/// What `DELETE` of a Secret (or ServiceAccount) answers: Status Success with details.
pub(crate) fn deleted(group: &str, resource: &str, name: &str, uid: &str) -> ApiResponse {
    let mut details = details(group, resource, name);
    details["uid"] = json!(uid);
    ApiResponse::json(
        200,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }),
    )
}

/// Go's `%q` of a `[]string`: `["a" "b"]`, as it appears in authenticator errors.
pub(crate) fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// 500 InternalError, e.g. the storage layer refusing a create that carries a
/// `resourceVersion`.
pub(crate) fn internal_error(cause: &str) -> ApiResponse {
    failure(
        500,
        "InternalError",
        &format!("Internal error occurred: {cause}"),
        Some(json!({ "causes": [{ "message": cause }] })),
    )
}
