//! The pod-template mutation shared by `inject` (YAML files) and `webhook` (admission).
//!
//! Pure functions over `serde_json::Value`, no I/O: the webhook computes its JSONPatch
//! by diffing a pod before and after [`inject_object`], so both doors produce the same
//! pod by construction.
//!
//! Why `serde_json::Value` and not `k8s_openapi` types: a typed round trip drops the
//! fields `k8s-openapi` does not know (newer API fields, vendor extensions) and
//! rewrites defaults, so an admission patch would touch things the user wrote and a
//! YAML file would silently lose them. On a `Value` the mutation touches only what it
//! adds.
//!
//! The mutation is idempotent: a pod carrying [`STATUS`] has what an earlier run added
//! removed first (recognised by name), then added again from the current annotations,
//! so injecting twice equals injecting once and a changed annotation updates the pod.

mod annotations;
mod pod;
mod stream;

pub use annotations::{IMAGE as IMAGE_ANNOTATION, parse_uid};
pub use pod::AGENT_CONTAINER;
pub use stream::inject_yaml;

use serde_json::Value;

/// `secret-zero.dev/inject: "true"` on a pod (template) opts it in.
pub const INJECT: &str = "secret-zero.dev/inject";
/// Set on every pod template the mutation has handled; marks what it added as its own.
pub const STATUS: &str = "secret-zero.dev/status";
/// The value of [`STATUS`].
pub const STATUS_INJECTED: &str = "injected";

use crate::env::DEFAULT_IMAGE;

/// Kinds whose pod template `inject` understands, as `(kind, API group)`.
pub const SUPPORTED_KINDS: &[(&str, &str)] = &[
    ("Pod", ""),
    ("Deployment", "apps"),
    ("StatefulSet", "apps"),
    ("DaemonSet", "apps"),
    ("ReplicaSet", "apps"),
    ("Job", "batch"),
    ("CronJob", "batch"),
];

/// What the caller decides for every pod; annotations win over the defaults here.
#[derive(Debug, Clone)]
pub struct Options {
    /// Put the agent in `containers` (clusters before 1.29, no native sidecars).
    pub legacy_sidecar: bool,
    /// Image when the pod has no `secret-zero.dev/image`.
    pub image: String,
    /// Vault address when the pod has no `secret-zero.dev/vault-addr`.
    pub vault_addr: Option<String>,
    /// Namespace of a `secret-zero.dev/secret` given as a bare NAME, when the object
    /// names none (the webhook passes the request's namespace).
    pub namespace: Option<String>,
    /// The agent's `runAsUser` when the pod has no `secret-zero.dev/agent-uid`; `None`:
    /// the agent sets none and inherits the pod's or the platform's uid.
    pub agent_uid: Option<u32>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            legacy_sidecar: false,
            image: DEFAULT_IMAGE.to_string(),
            vault_addr: None,
            namespace: None,
            agent_uid: None,
        }
    }
}

/// What happened to one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Pod templates that received the agent (0: the object is unchanged).
    pub injected: usize,
    /// Things the user should know, e.g. an app container whose uid is unknown.
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether the object was touched.
    pub fn changed(&self) -> bool {
        self.injected > 0
    }

    fn merge(&mut self, other: Report) {
        self.injected += other.injected;
        self.warnings.extend(other.warnings);
    }
}

/// Why a document cannot be injected. Each renders as one line naming the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// The input is not YAML, or a document is not a Kubernetes object.
    #[error("{place}: {message}")]
    Malformed { place: String, message: String },

    /// The annotation asks for injection on a kind without a known pod template.
    #[error(
        "{place}: kind {kind} is not supported by inject (supported: Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, and List of them)"
    )]
    UnsupportedKind { place: String, kind: String },

    /// Required annotations are absent.
    #[error("{place}: missing required annotation{s} {names}", s = if names.contains(',') { "s" } else { "" })]
    MissingAnnotations { place: String, names: String },

    /// An annotation's value is unusable.
    #[error("{place}: annotation {name}: {message}")]
    BadAnnotation {
        place: String,
        name: String,
        message: String,
    },

    /// An abstract socket lives in the network namespace: with `hostNetwork` that is
    /// the node's, so every process on the node could connect.
    #[error(
        "{place}: an abstract socket ({socket}) in a hostNetwork pod would be reachable from the whole node"
    )]
    AbstractSocketOnHostNetwork { place: String, socket: String },

    /// Anything else about the pod that the mutation cannot work with.
    #[error("{place}: {message}")]
    Pod {
        place: String,
        message: String,
        hint: String,
    },
}

impl InjectError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            InjectError::Malformed { .. } => {
                "give Kubernetes objects in YAML or JSON, several documents separated by ---".into()
            }
            InjectError::UnsupportedKind { .. } => {
                "remove secret-zero.dev/inject from it, or add the agent by hand (see manifests/example-app)".into()
            }
            InjectError::MissingAnnotations { .. } => {
                "set them on the pod template's metadata.annotations (secret-zero inject --help lists them all)".into()
            }
            InjectError::BadAnnotation { .. } => {
                "fix the annotation on the pod template's metadata.annotations".into()
            }
            InjectError::AbstractSocketOnHostNetwork { .. } => {
                "use a socket path such as /run/secret-zero/agent.sock (the default) in secret-zero.dev/socket".into()
            }
            InjectError::Pod { hint, .. } => hint.clone(),
        }
    }
}

/// Where an object sits in the input, for messages: `document 2 (Deployment shop/web)`.
fn place_of(prefix: &str, object: &Value) -> String {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("?");
    let meta = object.get("metadata");
    let name = meta
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
    {
        Some(ns) => format!("{prefix} ({kind} {ns}/{name})"),
        None => format!("{prefix} ({kind} {name})"),
    }
}

/// Inject every annotated pod template in one Kubernetes object (a `List` included).
///
/// `place` names the object in errors (e.g. "document 2"). Objects without the opt-in
/// annotation are left untouched and give an empty report.
pub fn inject_object(
    object: &mut Value,
    options: &Options,
    place: &str,
) -> Result<Report, InjectError> {
    let Some(map) = object.as_object() else {
        return Err(InjectError::Malformed {
            place: place.to_string(),
            message: "not a Kubernetes object (expected a mapping with apiVersion and kind)".into(),
        });
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() || api_version.is_empty() {
        return Err(InjectError::Malformed {
            place: place.to_string(),
            message: "not a Kubernetes object (no apiVersion or kind)".into(),
        });
    }
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let here = place_of(place, object);

    if kind == "List" && group.is_empty() {
        let mut report = Report::default();
        if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
            for (i, item) in items.iter_mut().enumerate() {
                report.merge(inject_object(
                    item,
                    options,
                    &format!("{place}, item {}", i + 1),
                )?);
            }
        }
        return Ok(report);
    }

    let supported = SUPPORTED_KINDS
        .iter()
        .any(|(k, g)| *k == kind && *g == group);
    if !supported {
        if opted_in_anywhere(object) {
            let kind = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind} ({api_version})")
            };
            return Err(InjectError::UnsupportedKind { place: here, kind });
        }
        return Ok(Report::default());
    }

    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    // Pods meant to finish: a legacy sidecar must then exit after its delivery.
    let is_job = matches!(kind, "Job" | "CronJob")
        || (kind == "Pod"
            && matches!(
                object
                    .pointer("/spec/restartPolicy")
                    .and_then(Value::as_str),
                Some("Never" | "OnFailure")
            ));
    let template_pointer = match kind {
        "Pod" => "",
        "CronJob" => "/spec/jobTemplate/spec/template",
        _ => "/spec/template",
    };

    if kind != "Pod"
        && opt_in(object.get("metadata"), &here)?
        && inject_annotation(object, template_pointer).is_none()
    {
        return Err(InjectError::Pod {
            place: here,
            message: format!(
                "{INJECT} is on the {kind}'s own metadata, which does not reach its pods; move it to the pod template (spec{}.metadata.annotations)",
                template_pointer
                    .trim_start_matches("/spec")
                    .replace('/', ".")
            ),
            hint: "inject reads only the pod template's annotations, as the webhook sees only pods"
                .into(),
        });
    }

    let Some(template) = object.pointer_mut(template_pointer) else {
        return Ok(Report::default());
    };
    if !opt_in(template.get("metadata"), &here)? {
        return Ok(Report::default());
    }
    let template = template
        .as_object_mut()
        .ok_or_else(|| InjectError::Malformed {
            place: here.clone(),
            message: "the pod template is not a mapping".into(),
        })?;
    let context = pod::Context {
        place: here,
        namespace: namespace.or_else(|| options.namespace.clone()),
        run_to_completion: is_job,
    };
    let warnings = pod::inject_template(template, &context, options)?;
    Ok(Report {
        injected: 1,
        warnings,
    })
}

/// The value of [`INJECT`]: `"true"` opts in, `"false"` or absent does not; anything
/// else is a mistake worth stopping for.
fn opt_in(metadata: Option<&Value>, place: &str) -> Result<bool, InjectError> {
    match metadata
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(INJECT))
    {
        None => Ok(false),
        Some(Value::String(s)) if s == "true" => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(false),
        Some(other) => Err(InjectError::BadAnnotation {
            place: place.to_string(),
            name: INJECT.into(),
            message: format!(
                "{} is neither \"true\" nor \"false\" (quote it: annotations are strings)",
                other
            ),
        }),
    }
}

/// Whether any place a pod template usually sits carries the opt-in annotation.
fn opted_in_anywhere(object: &Value) -> bool {
    ["", "/spec/template", "/spec/jobTemplate/spec/template"]
        .iter()
        .any(|p| inject_annotation(object, p).and_then(Value::as_str) == Some("true"))
}

/// The [`INJECT`] annotation of the pod template at `pointer` (`""`: the object itself).
fn inject_annotation<'a>(object: &'a Value, pointer: &str) -> Option<&'a Value> {
    object.pointer(&format!(
        "{pointer}/metadata/annotations/{}",
        escape(INJECT)
    ))
}

/// JSON pointer escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::pod::AGENT_CONTAINER;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "annotations": {
                INJECT: "true",
                "secret-zero.dev/secret": "app-secrets",
                "secret-zero.dev/role": "shop-app",
            }},
            "spec": {"containers": [{"name": "app", "image": "app:1",
                "securityContext": {"runAsUser": 1000}}]},
        })
    }

    /// What the webhook does: a pod from an AdmissionReview, the request's namespace
    /// and a default Vault address as options.
    #[test]
    fn a_pod_value_is_injected_once_and_only_once() {
        let options = Options {
            namespace: Some("shop".into()),
            vault_addr: Some("https://vault:8200".into()),
            ..Options::default()
        };
        let mut once = pod();
        let report = inject_object(&mut once, &options, "request").unwrap();
        assert_eq!(report.injected, 1);
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let agent = &once["spec"]["initContainers"][0];
        assert_eq!(agent["name"], AGENT_CONTAINER);
        assert!(
            agent["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--secret=shop/app-secrets"))
        );
        assert_eq!(once["metadata"]["annotations"][STATUS], STATUS_INJECTED);

        let mut twice = once.clone();
        inject_object(&mut twice, &options, "request").unwrap();
        assert_eq!(twice, once);
    }

    #[test]
    fn an_unannotated_pod_is_not_touched() {
        let mut object = pod();
        object["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(INJECT);
        let before = object.clone();
        let report = inject_object(&mut object, &Options::default(), "x").unwrap();
        assert!(!report.changed());
        assert_eq!(object, before);
    }
}
