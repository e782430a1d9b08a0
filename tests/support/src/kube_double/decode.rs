//! Request bodies to JSON: JSON as is, Kubernetes protobuf through [`protobuf`].

use serde_json::Value;

use super::http::{ApiRequest, ApiResponse};
use super::protobuf;
use super::status;

const ACCEPTED: &str = "application/json, application/vnd.kubernetes.protobuf";

/// The object in a create/update body, which must be of `kind`.
pub(crate) fn object(
    req: &ApiRequest,
    kind: &str,
    api_version: &str,
) -> Result<Value, ApiResponse> {
    let content_type = req.content_type();
    let cannot = |why: String| {
        status::bad_request(&format!(
            "{kind} in version {api_version:?} cannot be handled as a {kind}: {why}"
        ))
    };
    let object = match content_type.as_str() {
        protobuf::MEDIA_TYPE => protobuf::decode(&req.body).map_err(cannot)?,
        "application/json" | "" => {
            serde_json::from_slice(&req.body).map_err(|e| cannot(e.to_string()))?
        }
        other => return Err(status::unsupported_media_type(other, ACCEPTED)),
    };
    match object.get("kind").and_then(Value::as_str) {
        Some(found) if found != kind => Err(cannot(format!(
            "the kind {found:?} of the object does not match {kind:?}"
        ))),
        _ => Ok(object),
    }
}

/// A body that may be absent (DELETE options): `None` when empty or not JSON.
pub(crate) fn optional_json(req: &ApiRequest) -> Option<Value> {
    serde_json::from_slice(&req.body).ok()
}

/// The strings of a JSON array (`audiences`, ...); empty when absent, non-strings skipped.
pub(crate) fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
