//! The list verb for any kind: label and field selectors, `limit`/`continue` paging,
//! and the answer as a typed List or as a Table.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::http::{ApiRequest, ApiResponse};
use super::selectors::{FieldSelector, LabelSelector};
use super::status;
use super::table::{self, Printer};

pub(crate) struct ListKind {
    /// `SecretList`
    pub list_kind: &'static str,
    pub printer: &'static Printer,
    /// Fields a `fieldSelector` may name.
    pub fields: &'static [&'static str],
}

/// `objects` must come in key order (namespace, name), as etcd returns them.
pub(crate) fn respond(
    req: &ApiRequest,
    kind: &ListKind,
    objects: Vec<&Value>,
    resource_version: String,
) -> ApiResponse {
    let labels = match LabelSelector::parse(req.query("labelSelector").unwrap_or("")) {
        Ok(selector) => selector,
        Err(e) => return status::bad_request(&e),
    };
    let fields = match FieldSelector::parse(req.query("fieldSelector").unwrap_or(""), kind.fields) {
        Ok(selector) => selector,
        Err(e) => return status::bad_request(&e),
    };
    // A continued list stays at the resourceVersion of its first page, as the token says.
    let mut list_rv: u64 = resource_version.parse().unwrap_or(0);
    let after = match req.query("continue").filter(|c| !c.is_empty()) {
        None => None,
        Some(token) => match decode_continue(token) {
            Some((rv, key)) => {
                list_rv = rv;
                Some(key)
            }
            None => {
                return status::bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
                );
            }
        },
    };
    let mut matching: Vec<&Value> = objects
        .into_iter()
        .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
        .filter(|o| after.as_ref().is_none_or(|after| &key(o) > after))
        .collect();

    let mut metadata = json!({ "resourceVersion": resource_version });
    let limit = req
        .query("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    if let Some(limit) = limit
        && matching.len() > limit
    {
        let remaining = matching.len() - limit;
        matching.truncate(limit);
        metadata["continue"] = json!(encode_continue(list_rv, &key(matching[limit - 1])));
        metadata["remainingItemCount"] = json!(remaining);
    }

    if req.wants_table() {
        let mut table = table::render(
            kind.printer,
            &matching,
            &resource_version_of(&metadata),
            req.query("includeObject"),
        );
        table["metadata"] = metadata;
        return ApiResponse::json(200, &table);
    }
    // Items of a typed list carry no kind/apiVersion on the wire.
    let items: Vec<Value> = matching
        .into_iter()
        .map(|o| {
            let mut item = o.clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    ApiResponse::json(
        200,
        &json!({
            "kind": kind.list_kind,
            "apiVersion": "v1",
            "metadata": metadata,
            "items": items,
        }),
    )
}

fn resource_version_of(metadata: &Value) -> String {
    metadata["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn key(object: &Value) -> (String, String) {
    let meta = &object["metadata"];
    (
        meta["namespace"].as_str().unwrap_or("").to_string(),
        meta["name"].as_str().unwrap_or("").to_string(),
    )
}

/// A continue token as the API server makes one: base64url of
/// `{"v":"meta.k8s.io/v1","rv":RV,"start":"NS/NAME\u0000"}`, where `rv` is the
/// resourceVersion of the list's first page and `start` the key after the last item.
pub(crate) fn encode_continue(rv: u64, (namespace, name): &(String, String)) -> String {
    let token =
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{namespace}/{name}\u{0}")});
    URL_SAFE_NO_PAD.encode(token.to_string())
}

/// The `rv` and the last key of a continue token.
pub(crate) fn decode_continue(token: &str) -> Option<(u64, (String, String))> {
    let token: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    if token["v"] != "meta.k8s.io/v1" {
        return None;
    }
    let rv = token["rv"].as_u64()?;
    let start = token["start"].as_str()?.strip_suffix('\u{0}')?;
    let (namespace, name) = start.split_once('/')?;
    Some((rv, (namespace.to_string(), name.to_string())))
}
