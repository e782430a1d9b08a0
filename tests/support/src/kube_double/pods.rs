//! core/v1 Pods: get and list (one namespace or all, label and field selectors,
//! `limit`/`continue`), as `PodList` or as a Table for `kubectl get pods`. Nothing in
//! the double schedules or runs a pod: tests store pods through the back door
//! ([`KubeDouble::put_pod`](super::KubeDouble::put_pod)), with whatever `status` a
//! kubelet would have reported.

use serde_json::{Value, json};

use super::http::{ApiRequest, ApiResponse};
use super::listing::{self, ListKind};
use super::rbac::Attributes;
use super::state::{Cluster, resource_version_of};
use super::status::{self, FieldError};
use super::table;

const RESOURCE: &str = "pods";

const LIST: ListKind = ListKind {
    list_kind: "PodList",
    printer: &table::PODS,
    // What the API server's pod field selector accepts, as far as the double stores it.
    fields: &[
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ],
};

type Answer = Result<ApiResponse, ApiResponse>;

pub(crate) fn handle(cluster: &mut Cluster, req: &ApiRequest, attrs: &Attributes) -> ApiResponse {
    let ns = attrs.namespace.as_deref();
    let answer = match (attrs.verb, ns, attrs.name.as_deref()) {
        ("list", ns, None) => Ok(list(cluster, req, ns)),
        ("get", Some(ns), Some(name)) => get(cluster, req, ns, name),
        _ => Err(status::method_not_allowed()),
    };
    answer.unwrap_or_else(|error| error)
}

fn get(cluster: &Cluster, req: &ApiRequest, ns: &str, name: &str) -> Answer {
    let pod = cluster
        .pods
        .get(&(ns.to_string(), name.to_string()))
        .ok_or_else(|| status::not_found("", RESOURCE, name))?;
    if req.wants_table() {
        let rv = resource_version_of(pod).to_string();
        let table = table::render(&table::PODS, &[pod], &rv, req.query("includeObject"));
        return Ok(ApiResponse::json(200, &table));
    }
    Ok(ApiResponse::json(200, pod))
}

fn list(cluster: &Cluster, req: &ApiRequest, ns: Option<&str>) -> ApiResponse {
    let objects: Vec<&Value> = cluster
        .pods
        .iter()
        .filter(|((object_ns, _), _)| ns.is_none_or(|ns| ns == object_ns))
        .map(|(_, pod)| pod)
        .collect();
    listing::respond(req, &LIST, objects, cluster.current_resource_version())
}

/// Checks a pod as the API server's validation would, for the parts the double
/// looks at (a name; containers, each with a name and an image, names unique across
/// `initContainers` and `containers`; an init container's `restartPolicy` only
/// `Always`), and fills in the defaults it would (`restartPolicy`, `dnsPolicy`,
/// `schedulerName`, `terminationGracePeriodSeconds`, each container's
/// `imagePullPolicy` and termination message settings, `status.phase: Pending`).
/// Returns it without server metadata.
pub(crate) fn from_client(mut pod: Value, ns: &str) -> Result<Value, ApiResponse> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    match pod["metadata"]["namespace"].as_str() {
        Some(given) if !given.is_empty() && given != ns => {
            return Err(status::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => {}
    }
    if pod["spec"]["containers"]
        .as_array()
        .is_none_or(|c| c.is_empty())
    {
        errors.push(FieldError::required("spec.containers", ""));
    }
    let mut seen = Vec::new();
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod["spec"][list].as_array_mut() else {
            continue;
        };
        for (i, container) in containers.iter_mut().enumerate() {
            let field = format!("spec.{list}[{i}]");
            let cname = container["name"].as_str().unwrap_or("").to_string();
            if cname.is_empty() {
                errors.push(FieldError::required(&format!("{field}.name"), ""));
            } else if seen.contains(&cname) {
                errors.push(FieldError::duplicate(&format!("{field}.name"), &cname));
            }
            seen.push(cname);
            let image = container["image"].as_str().unwrap_or("").to_string();
            if image.is_empty() {
                errors.push(FieldError::required(&format!("{field}.image"), ""));
            }
            match (list, container["restartPolicy"].as_str()) {
                (_, None) | ("initContainers", Some("Always")) => {}
                (_, Some(other)) => errors.push(FieldError::invalid(
                    &format!("{field}.restartPolicy"),
                    other,
                    "may not be set for non-init containers, and only to Always for init containers",
                )),
            }
            default(container, "imagePullPolicy", json!(pull_policy(&image)));
            default(
                container,
                "terminationMessagePath",
                json!("/dev/termination-log"),
            );
            default(container, "terminationMessagePolicy", json!("File"));
        }
    }
    if !errors.is_empty() {
        return Err(status::invalid("", "Pod", &name, &errors));
    }
    pod["apiVersion"] = json!("v1");
    pod["kind"] = json!("Pod");
    pod["metadata"]["namespace"] = json!(ns);
    if let Some(meta) = pod["metadata"].as_object_mut() {
        for server_owned in ["uid", "creationTimestamp", "resourceVersion"] {
            meta.remove(server_owned);
        }
    }
    let spec = &mut pod["spec"];
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "schedulerName", json!("default-scheduler"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(&mut pod["status"], "phase", json!("Pending"));
    Ok(pod)
}

fn default(object: &mut Value, key: &str, value: Value) {
    if object.get(key).is_none_or(Value::is_null) {
        object[key] = value;
    }
}

/// `Always` for `:latest` or no tag (and no digest), else `IfNotPresent`.
fn pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let latest =
        !image.contains('@') && last.split_once(':').is_none_or(|(_, tag)| tag == "latest");
    if latest { "Always" } else { "IfNotPresent" }
}
