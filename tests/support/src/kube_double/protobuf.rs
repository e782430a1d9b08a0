//! Request bodies in Kubernetes protobuf, which kubectl sends for typed commands
//! (`create secret generic`, `create token`, `create serviceaccount`): the magic
//! `k8s\0`, then a `runtime.Unknown` whose `raw` is the message. Decoded into the same
//! JSON the handlers take from JSON clients; answers always go back as JSON.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_pb::api::authentication::v1::{TokenRequest, TokenReview};
use k8s_pb::api::core::v1::{Secret, ServiceAccount};
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value, json};

pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf body into the JSON form of the object it carries.
pub(crate) fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("protobuf body does not start with the k8s magic prefix")?;
    let unknown = Unknown::decode(envelope).map_err(|e| format!("runtime.Unknown: {e}"))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let raw = raw.as_slice();
    let err = |e: prost::DecodeError| format!("{kind}: {e}");
    let mut object = match kind.as_str() {
        "Secret" => secret(Secret::decode(raw).map_err(err)?),
        "ServiceAccount" => service_account(ServiceAccount::decode(raw).map_err(err)?),
        "TokenRequest" => token_request(TokenRequest::decode(raw).map_err(err)?),
        "TokenReview" => token_review(TokenReview::decode(raw).map_err(err)?),
        other => {
            return Err(format!(
                "the kube double cannot decode protobuf kind {other:?}"
            ));
        }
    };
    object["kind"] = json!(kind);
    object["apiVersion"] = json!(api_version);
    Ok(object)
}

fn metadata(meta: Option<ObjectMeta>) -> Value {
    let meta = meta.unwrap_or_default();
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.insert(key.to_string(), json!(v));
        }
    };
    put("name", meta.name);
    put("generateName", meta.generate_name);
    put("namespace", meta.namespace);
    put("uid", meta.uid);
    put("resourceVersion", meta.resource_version);
    if !meta.labels.is_empty() {
        out.insert("labels".into(), json!(meta.labels));
    }
    if !meta.annotations.is_empty() {
        out.insert("annotations".into(), json!(meta.annotations));
    }
    Value::Object(out)
}

fn secret(secret: Secret) -> Value {
    let mut out = json!({ "metadata": metadata(secret.metadata) });
    if !secret.data.is_empty() {
        let data: BTreeMap<String, String> = secret
            .data
            .into_iter()
            .map(|(k, v)| (k, STANDARD.encode(v)))
            .collect();
        out["data"] = json!(data);
    }
    if !secret.string_data.is_empty() {
        out["stringData"] = json!(secret.string_data);
    }
    if let Some(t) = secret.r#type.filter(|t| !t.is_empty()) {
        out["type"] = json!(t);
    }
    if let Some(immutable) = secret.immutable {
        out["immutable"] = json!(immutable);
    }
    out
}

fn service_account(account: ServiceAccount) -> Value {
    let mut out = json!({ "metadata": metadata(account.metadata) });
    if let Some(automount) = account.automount_service_account_token {
        out["automountServiceAccountToken"] = json!(automount);
    }
    out
}

fn token_request(request: TokenRequest) -> Value {
    let spec = request.spec.unwrap_or_default();
    let mut out = json!({
        "metadata": metadata(request.metadata),
        "spec": { "audiences": spec.audiences },
    });
    if let Some(seconds) = spec.expiration_seconds {
        out["spec"]["expirationSeconds"] = json!(seconds);
    }
    if let Some(bound) = spec.bound_object_ref {
        out["spec"]["boundObjectRef"] = json!({
            "kind": bound.kind,
            "apiVersion": bound.api_version,
            "name": bound.name,
            "uid": bound.u_id,
        });
    }
    out
}

fn token_review(review: TokenReview) -> Value {
    let spec = review.spec.unwrap_or_default();
    json!({
        "metadata": metadata(review.metadata),
        "spec": { "token": spec.token.unwrap_or_default(), "audiences": spec.audiences },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    #[test]
    fn decodes_a_secret_as_kubectl_sends_it() {
        let secret = Secret {
            metadata: Some(ObjectMeta {
                name: Some("s".into()),
                ..Default::default()
            }),
            data: [("k".to_string(), b"v".to_vec())].into(),
            ..Default::default()
        };
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("v1".into()),
                kind: Some("Secret".into()),
            }),
            raw: Some(secret.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let body = [MAGIC, &unknown.encode_to_vec()].concat();
        let json = decode(&body).unwrap();
        assert_eq!(json["kind"], "Secret");
        assert_eq!(json["metadata"]["name"], "s");
        assert_eq!(json["data"]["k"], "dg==");
    }
}
