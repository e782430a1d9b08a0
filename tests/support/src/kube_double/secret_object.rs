//! A Secret as the API server stores it: decoded (`data` must be base64), defaulted
//! (`type: Opaque`, `stringData` folded into `data`), validated (name, keys,
//! immutability) and stripped of what clients may not set.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::http::ApiResponse;
use super::status::{self, FieldError};

/// Metadata the server owns or that the double does not model; never taken from clients.
const SERVER_OWNED_METADATA: [&str; 6] = [
    "uid",
    "creationTimestamp",
    "selfLink",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

const SECRET_FIELDS: [&str; 7] = [
    "apiVersion",
    "kind",
    "metadata",
    "data",
    "stringData",
    "type",
    "immutable",
];

const METADATA_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// How to treat fields a Secret does not have (`?fieldValidation=`): `Strict` rejects
/// them, anything else drops them, as the server does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    Drop,
    Reject,
}

/// Turns a client's body into the object to store (without uid/timestamps/RV, which
/// the store stamps). `url_name` is the name in the URL (update/patch), if any.
pub(crate) fn from_client(
    body: Value,
    namespace: &str,
    url_name: Option<&str>,
    unknown: Unknown,
) -> Result<Value, ApiResponse> {
    let Value::Object(mut object) = body else {
        return Err(status::bad_request(
            "Secret in version \"v1\" cannot be handled as a Secret: expected a JSON object",
        ));
    };
    if unknown == Unknown::Reject {
        reject_unknown_fields(&object)?;
    }
    if let Some(kind) = object.get("kind").and_then(Value::as_str)
        && kind != "Secret"
    {
        return Err(status::bad_request(&format!(
            "Secret in version \"v1\" cannot be handled as a {kind}: the kind of the object does not match"
        )));
    }
    let mut metadata = match object.remove("metadata") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(ns) = metadata.get("namespace").and_then(Value::as_str)
        && !ns.is_empty()
        && ns != namespace
    {
        return Err(status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    metadata.insert("namespace".into(), json!(namespace));
    for key in SERVER_OWNED_METADATA {
        metadata.remove(key);
    }
    let body_name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(url_name) = url_name {
        if body_name.is_empty() {
            metadata.insert("name".into(), json!(url_name));
        } else if body_name != url_name {
            return Err(status::bad_request(&format!(
                "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
            )));
        }
    }

    let mut data = match object.remove("data") {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
    };
    for (key, value) in &data {
        let text = value.as_str().unwrap_or("");
        if let Err(e) = STANDARD.decode(text) {
            let at = match e {
                base64::DecodeError::InvalidByte(offset, _) => offset,
                _ => text.len(),
            };
            return Err(status::bad_request(&format!(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte {at} (key {key:?})"
            )));
        }
    }
    // `stringData` wins over `data` for the same key, then disappears.
    if let Some(Value::Object(string_data)) = object.remove("stringData") {
        for (key, value) in string_data {
            let text = value.as_str().unwrap_or("").to_string();
            data.insert(key, json!(STANDARD.encode(text)));
        }
    }

    let mut secret = Map::new();
    secret.insert("kind".into(), json!("Secret"));
    secret.insert("apiVersion".into(), json!("v1"));
    secret.insert("metadata".into(), Value::Object(metadata));
    if !data.is_empty() {
        secret.insert("data".into(), Value::Object(data));
    }
    let secret_type = object
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("Opaque");
    secret.insert("type".into(), json!(secret_type));
    if let Some(immutable) = object.get("immutable").filter(|v| v.is_boolean()) {
        secret.insert("immutable".into(), immutable.clone());
    }
    let secret = Value::Object(secret);
    validate(&secret)?;
    Ok(secret)
}

fn reject_unknown_fields(object: &Map<String, Value>) -> Result<(), ApiResponse> {
    let mut unknown: Vec<String> = object
        .keys()
        .filter(|k| !SECRET_FIELDS.contains(&k.as_str()))
        .map(|k| format!("unknown field {k:?}"))
        .collect();
    if let Some(Value::Object(metadata)) = object.get("metadata") {
        unknown.extend(
            metadata
                .keys()
                .filter(|k| !METADATA_FIELDS.contains(&k.as_str()))
                .map(|k| format!("unknown field \"metadata.{k}\"")),
        );
    }
    if unknown.is_empty() {
        return Ok(());
    }
    Err(status::bad_request(&format!(
        "Secret in version \"v1\" cannot be handled as a Secret: strict decoding error: {}",
        unknown.join(", ")
    )))
}

/// Field validation on create and update.
fn validate(secret: &Value) -> Result<(), ApiResponse> {
    let name = secret["metadata"]["name"].as_str().unwrap_or("");
    let generate_name = secret["metadata"]["generateName"].as_str().unwrap_or("");
    let mut errors = Vec::new();
    if name.is_empty() && generate_name.is_empty() {
        errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else if !name.is_empty() && !is_dns_subdomain(name) {
        errors.push(FieldError::invalid(
            "metadata.name",
            &format!("{name:?}"),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ));
    }
    if let Some(data) = secret["data"].as_object() {
        for key in data.keys() {
            if !is_config_key(key) {
                errors.push(FieldError::invalid(
                    &format!("data[{key}]"),
                    &format!("{key:?}"),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(status::invalid("", "Secret", name, &errors))
    }
}

/// Update rules that compare with the stored object: `type` and immutable Secrets.
pub(crate) fn validate_update(old: &Value, new: &Value) -> Result<(), ApiResponse> {
    let name = old["metadata"]["name"].as_str().unwrap_or("");
    let mut errors = Vec::new();
    if old["type"] != new["type"] {
        errors.push(FieldError::invalid(
            "type",
            &format!("{:?}", new["type"].as_str().unwrap_or("")),
            "field is immutable",
        ));
    }
    if old["immutable"] == json!(true) {
        if old["data"] != new["data"] {
            errors.push(FieldError::forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
        if new["immutable"] != json!(true) {
            errors.push(FieldError::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(status::invalid("", "Secret", name, &errors))
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.starts_with(alnum)
                && label.ends_with(alnum)
                && label.chars().all(|c| alnum(c) || c == '-')
        })
}

fn is_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_string_data_and_defaults_type() {
        let body = json!({
            "metadata": {"name": "s", "uid": "client-made-up"},
            "data": {"a": "YQ=="},
            "stringData": {"b": "b", "a": "override"},
        });
        let secret = from_client(body, "ns", None, Unknown::Drop).ok().unwrap();
        assert_eq!(secret["type"], "Opaque");
        assert_eq!(secret["data"]["a"], STANDARD.encode("override"));
        assert_eq!(secret["data"]["b"], "Yg==");
        assert!(secret.get("stringData").is_none());
        assert!(secret["metadata"].get("uid").is_none());
        assert_eq!(secret["metadata"]["namespace"], "ns");
    }

    #[test]
    fn rejects_bad_input_like_the_api_server() {
        let bad_b64 = from_client(
            json!({"metadata": {"name": "s"}, "data": {"a": "!!"}}),
            "ns",
            None,
            Unknown::Drop,
        );
        assert_eq!(bad_b64.err().unwrap().status, 400);
        let bad_name = from_client(
            json!({"metadata": {"name": "Bad_Name"}}),
            "ns",
            None,
            Unknown::Drop,
        );
        assert_eq!(bad_name.err().unwrap().status, 422);
        let no_name = from_client(json!({"metadata": {}}), "ns", None, Unknown::Drop);
        assert_eq!(no_name.err().unwrap().status, 422);
        let other_ns = from_client(
            json!({"metadata": {"name": "s", "namespace": "x"}}),
            "ns",
            None,
            Unknown::Drop,
        );
        assert_eq!(other_ns.err().unwrap().status, 400);
        let other_name = from_client(
            json!({"metadata": {"name": "s"}}),
            "ns",
            Some("t"),
            Unknown::Drop,
        );
        assert_eq!(other_name.err().unwrap().status, 400);
        let typo = json!({"metadata": {"name": "s"}, "stringdata": {"a": "b"}});
        let strict = from_client(typo.clone(), "ns", None, Unknown::Reject);
        let body = String::from_utf8(strict.err().unwrap().body).unwrap();
        assert!(
            body.contains(r#"strict decoding error: unknown field \"stringdata\""#),
            "{body}"
        );
        assert!(from_client(typo, "ns", None, Unknown::Drop).is_ok());
    }
}
