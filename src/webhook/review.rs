//! `admission.k8s.io/v1` AdmissionReview in, AdmissionReview out.
//!
//! Pure: bytes in, JSON out, no I/O, so the HTTP layer and the tests share it. The
//! patch is the diff between the pod before and after [`inject_object`], the very
//! function `inject` runs on YAML: both doors produce the same pod by construction.

use base64::Engine;
use serde_json::{Value, json};

use crate::inject::{InjectError, Options, inject_object};

/// The API version of the reviews this webhook answers.
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// Why a body is not a review we can answer (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// What happened to one review, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not a pod CREATE, or the pod did not opt in: allowed, no patch.
    Skipped,
    /// Opted in and already as inject would leave it (e.g. a reinvocation): no patch.
    Unchanged,
    /// Allowed with a patch of this many operations.
    Patched(usize),
    /// Refused: the annotations cannot be used.
    Denied,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Skipped => f.write_str("skipped"),
            Decision::Unchanged => f.write_str("unchanged"),
            Decision::Patched(_) => f.write_str("patched"),
            Decision::Denied => f.write_str("denied"),
        }
    }
}

/// One answered review: the response body and what to log about it.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The AdmissionReview to send back.
    pub review: Value,
    /// The request's uid (echoed in the response).
    pub uid: String,
    /// The request's namespace, if any.
    pub namespace: String,
    /// The object's name, or its generateName (pods of a ReplicaSet have no name yet).
    pub name: String,
    /// Whether the API server marked the request as a dry run.
    pub dry_run: bool,
    /// What was decided.
    pub outcome: Decision,
    /// Why it was denied, for the log.
    pub message: Option<String>,
}

/// Verdict one AdmissionReview body.
///
/// `Err` only for bodies that are not an `admission.k8s.io/v1` AdmissionReview with a
/// request and a uid; everything about the pod itself is answered in the review.
pub fn review(body: &[u8], options: &Options) -> Result<Verdict, Malformed> {
    let mut review: Value = serde_json::from_slice(body)
        .map_err(|e| Malformed(format!("the body is not JSON: {e}")))?;
    let api_version = review.get("apiVersion").and_then(Value::as_str);
    let kind = review.get("kind").and_then(Value::as_str);
    if api_version != Some(API_VERSION) || kind != Some("AdmissionReview") {
        return Err(Malformed(format!(
            "expected apiVersion {API_VERSION} kind AdmissionReview, got {} {}",
            api_version.unwrap_or("(none)"),
            kind.unwrap_or("(none)")
        )));
    }
    let Some(request) = review.get_mut("request").and_then(Value::as_object_mut) else {
        return Err(Malformed("the AdmissionReview has no request".into()));
    };
    let uid = match request.get("uid").and_then(Value::as_str) {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => return Err(Malformed("the AdmissionReview request has no uid".into())),
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let namespace = text(request.get("namespace"));
    let operation = text(request.get("operation"));
    let dry_run = request
        .get("dryRun")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let kind = request.get("kind");
    let is_pod = text(kind.and_then(|k| k.get("group"))).is_empty()
        && text(kind.and_then(|k| k.get("kind"))) == "Pod"
        && text(request.get("subResource")).is_empty();
    let object = request.remove("object").unwrap_or(Value::Null);
    let name = {
        let meta = object.get("metadata");
        let name = text(meta.and_then(|m| m.get("name")));
        if name.is_empty() {
            text(
                request
                    .get("name")
                    .or_else(|| meta.and_then(|m| m.get("generateName"))),
            )
        } else {
            name
        }
    };
    let mut answer = Verdict {
        review: Value::Null,
        uid,
        namespace,
        name,
        dry_run,
        outcome: Decision::Skipped,
        message: None,
    };

    // Only a pod's creation gets the agent: a running pod's containers are immutable.
    if !(is_pod && operation == "CREATE") {
        answer.review = response(&answer.uid, json!({"allowed": true}));
        return Ok(answer);
    }
    if !object.is_object() {
        return Err(Malformed(
            "the AdmissionReview request has no object to review".into(),
        ));
    }

    let mut before = object;
    // The API server always sends typed objects; fill the type in if a caller did not,
    // on both sides of the diff so the patch does not carry it.
    for (field, value) in [("apiVersion", "v1"), ("kind", "Pod")] {
        if let Some(map) = before.as_object_mut() {
            map.entry(field).or_insert_with(|| value.into());
        }
    }
    let mut after = before.clone();
    let options = Options {
        namespace: (!answer.namespace.is_empty())
            .then(|| answer.namespace.clone())
            .or_else(|| options.namespace.clone()),
        ..options.clone()
    };
    match inject_object(&mut after, &options, "this pod") {
        Ok(report) => {
            let mut response_body = json!({"allowed": true});
            if !report.warnings.is_empty() {
                response_body["warnings"] = json!(report.warnings);
            }
            if report.changed() {
                let patch = json_patch::diff(&before, &after);
                if patch.0.is_empty() {
                    answer.outcome = Decision::Unchanged;
                } else {
                    answer.outcome = Decision::Patched(patch.0.len());
                    let bytes = serde_json::to_vec(&patch)
                        .map_err(|e| Malformed(format!("cannot encode the patch: {e}")))?;
                    response_body["patchType"] = json!("JSONPatch");
                    response_body["patch"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes));
                }
            }
            answer.review = response(&answer.uid, response_body);
        }
        Err(error) => {
            let message = denial(&error);
            answer.outcome = Decision::Denied;
            answer.review = response(
                &answer.uid,
                json!({
                    "allowed": false,
                    "status": {
                        "status": "Failure",
                        "code": 400,
                        "reason": "BadRequest",
                        "message": message,
                    },
                }),
            );
            answer.message = Some(message);
        }
    }
    Ok(answer)
}

/// The line `kubectl apply` shows after "admission webhook ... denied the request: ".
fn denial(error: &InjectError) -> String {
    format!("secret-zero: {error} (hint: {})", error.hint())
}

fn response(uid: &str, mut body: Value) -> Value {
    body["uid"] = json!(uid);
    json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": body})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review_of(object: Value, operation: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": API_VERSION, "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": "shop", "operation": operation,
                "object": object, "dryRun": false,
            }
        }))
        .unwrap()
    }

    fn pod(annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "shop", "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]}})
    }

    #[test]
    fn unannotated_pods_and_other_operations_are_allowed_without_patch() {
        let options = Options::default();
        for (object, op) in [
            (pod(json!({})), "CREATE"),
            (pod(json!({"secret-zero.dev/inject": "true"})), "UPDATE"),
        ] {
            let answer = review(&review_of(object, op), &options).unwrap();
            assert_eq!(answer.outcome, Decision::Skipped);
            let response = &answer.review["response"];
            assert_eq!(response["allowed"], true);
            assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
            assert!(response.get("patch").is_none());
        }
    }

    #[test]
    fn bad_annotations_are_denied_with_a_message() {
        let answer = review(
            &review_of(pod(json!({"secret-zero.dev/inject": "true"})), "CREATE"),
            &Options::default(),
        )
        .unwrap();
        assert_eq!(answer.outcome, Decision::Denied);
        let response = &answer.review["response"];
        assert_eq!(response["allowed"], false);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains("secret-zero.dev/secret"), "{message}");
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let options = Options::default();
        assert!(review(b"{not json", &options).is_err());
        assert!(review(b"{}", &options).is_err());
        assert!(
            review(
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#,
                &options
            )
            .is_err()
        );
    }
}
