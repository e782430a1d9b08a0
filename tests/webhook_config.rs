//! The shipped MutatingWebhookConfiguration (`manifests/webhook/`, built by
//! `kubectl kustomize` as it is applied) never sends the API server's requests for a
//! Pod in the webhook's own namespace or in `kube-system` to the webhook, labelled or
//! not, while an opted-in Pod of an opted-in namespace is sent.
//!
//! The API server's decision is evaluated here as the admission docs define it: a
//! request goes to a webhook only if one of its `rules` matches AND its
//! `namespaceSelector` matches the Namespace object AND its `objectSelector` matches the
//! object's labels AND every `matchConditions` expression is true. The label selector
//! semantics (matchLabels, matchExpressions with In/NotIn/Exists/DoesNotExist) are
//! implemented below; the CEL of `matchConditions` is evaluated by a small evaluator of
//! the forms the manifest uses, which fails the test on anything else rather than
//! guess. A Namespace carries the label `kubernetes.io/metadata.name` with its own name,
//! set by the API server on every namespace (it cannot be set to another value), which
//! is what makes an exclusion by name hold.

use std::path::Path;

use secret_zero_testbed::cmd::Cmd;
use secret_zero_testbed::tools;
use serde_json::{Value, json};

const NAME_LABEL: &str = "kubernetes.io/metadata.name";
const OPT_IN_LABEL: &str = "secret-zero.dev/inject";

fn repo_path(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

fn yaml_docs(text: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `kubectl kustomize manifests/webhook`: the objects as `kubectl apply -k` sends them.
fn built() -> Vec<Value> {
    let kubectl = tools::require("kubectl", "apt-get install -y kubernetes-client");
    let out = Cmd::new(kubectl)
        .args(["kustomize", &repo_path("manifests/webhook")])
        .run();
    assert!(out.success(), "kubectl kustomize failed: {}", out.stderr);
    yaml_docs(&out.stdout)
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// A Namespace as the API server stores it: its name label, and `labels`.
fn namespace(name: &str, labels: Value) -> Value {
    let mut ns = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {NAME_LABEL: name}},
    });
    for (k, v) in labels.as_object().unwrap() {
        ns["metadata"]["labels"][k] = v.clone();
    }
    ns
}

/// A Pod asking for the agent.
fn opted_in_pod(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace,
            "labels": {"app": "web"},
            "annotations": {"secret-zero.dev/inject": "true"}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    })
}

/// One admission request for a namespaced resource.
struct Request<'a> {
    operation: &'a str,
    group: &'a str,
    version: &'a str,
    resource: &'a str,
    namespace: &'a Value,
    object: &'a Value,
}

impl Request<'_> {
    fn create_pod<'a>(namespace: &'a Value, pod: &'a Value) -> Request<'a> {
        Request {
            operation: "CREATE",
            group: "",
            version: "v1",
            resource: "pods",
            namespace,
            object: pod,
        }
    }
}

/// Whether the API server sends `request` to any webhook of `config`.
fn sent_to(config: &Value, request: &Request) -> bool {
    config["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .any(|webhook| calls(webhook, request))
}

/// Whether the API server calls this one webhook for `request`.
fn calls(webhook: &Value, request: &Request) -> bool {
    let rule_matches = webhook["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .any(|rule| rule_matches(rule, request));
    rule_matches
        && selector_matches(
            webhook.get("namespaceSelector"),
            &request.namespace["metadata"]["labels"],
        )
        && selector_matches(
            webhook.get("objectSelector"),
            &request.object["metadata"]["labels"],
        )
        && webhook
            .get("matchConditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|condition| {
                let expression = condition["expression"].as_str().expect("expression");
                cel(expression, request.object).unwrap_or_else(|e| {
                    // An error with failurePolicy Fail rejects the request: it is
                    // still the webhook's business, so count it as sent.
                    eprintln!("matchCondition error ({e}): {expression}");
                    true
                })
            })
}

fn listed(list: &Value, value: &str) -> bool {
    list.as_array()
        .expect("a list")
        .iter()
        .any(|v| v == "*" || v == value)
}

fn rule_matches(rule: &Value, r: &Request) -> bool {
    let scope = rule.get("scope").and_then(Value::as_str).unwrap_or("*");
    listed(&rule["operations"], r.operation)
        && listed(&rule["apiGroups"], r.group)
        && listed(&rule["apiVersions"], r.version)
        && listed(&rule["resources"], r.resource)
        && matches!(scope, "*" | "Namespaced")
}

/// A LabelSelector against labels: absent or `{}` selects everything; matchLabels and
/// every matchExpressions requirement must all hold.
fn selector_matches(selector: Option<&Value>, labels: &Value) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let by_label = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let by_expression = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|req| {
            let key = req["key"].as_str().expect("key");
            let values: Vec<&str> = req
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|v| v.as_str().expect("a string value"))
                .collect();
            match req["operator"].as_str().expect("operator") {
                "In" => label(key).is_some_and(|v| values.contains(&v)),
                "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
                "Exists" => label(key).is_some(),
                "DoesNotExist" => label(key).is_none(),
                other => panic!("not a LabelSelector operator: {other}"),
            }
        });
    by_label && by_expression
}

/// The CEL forms the shipped matchConditions use, joined by `&&` (short-circuit, left
/// to right): `has(object.a.b)`, `'KEY' in object.a.b`,
/// `object.a.b['KEY'] == 'VALUE'` and `!=`. Anything else fails the test.
fn cel(expression: &str, object: &Value) -> Result<bool, String> {
    let root = json!({ "object": object });
    let path = |text: &str| -> Option<Value> {
        let mut parts = text.trim().split('.');
        assert_eq!(parts.next(), Some("object"), "unsupported CEL: {text}");
        let mut at = &root["object"];
        for part in parts {
            assert!(
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()),
                "unsupported CEL path: {text}"
            );
            at = at.get(part)?;
        }
        (!at.is_null()).then(|| at.clone())
    };
    let literal = |text: &str| -> String {
        let text = text.trim();
        assert!(
            text.len() >= 2 && text.starts_with('\'') && text.ends_with('\''),
            "unsupported CEL literal: {text}"
        );
        text[1..text.len() - 1].to_string()
    };
    for term in expression.split("&&").map(str::trim) {
        let value = if let Some(inner) = term.strip_prefix("has(").and_then(|t| t.strip_suffix(')'))
        {
            path(inner).is_some()
        } else if let Some((key, map)) = term.split_once(" in ") {
            let map = path(map).ok_or_else(|| format!("no such field in {term}"))?;
            map.as_object()
                .ok_or_else(|| format!("not a map in {term}"))?
                .contains_key(&literal(key))
        } else if let Some((lhs, rhs, equal)) = term
            .split_once("!=")
            .map(|(l, r)| (l, r, false))
            .or_else(|| term.split_once("==").map(|(l, r)| (l, r, true)))
        {
            let (map, key) = lhs
                .trim()
                .strip_suffix(']')
                .and_then(|l| l.split_once('['))
                .unwrap_or_else(|| panic!("unsupported CEL: {term}"));
            let map = path(map).ok_or_else(|| format!("no such field in {term}"))?;
            let found = map
                .get(literal(key))
                .ok_or_else(|| format!("no such key in {term}"))?;
            (found.as_str() == Some(literal(rhs).as_str())) == equal
        } else {
            panic!("unsupported CEL in the test's evaluator (extend it): {term}");
        };
        if !value {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The built configuration and the namespace the webhook runs in.
fn shipped() -> (Value, String, Vec<Value>) {
    let objects = built();
    let configs = of_kind(&objects, "MutatingWebhookConfiguration");
    assert_eq!(configs.len(), 1, "one MutatingWebhookConfiguration");
    let config = configs[0].clone();
    let deployments = of_kind(&objects, "Deployment");
    assert_eq!(deployments.len(), 1);
    let own = deployments[0]["metadata"]["namespace"]
        .as_str()
        .expect("the Deployment's namespace")
        .to_string();
    for webhook in config["webhooks"].as_array().unwrap() {
        assert_eq!(
            webhook["clientConfig"]["service"]["namespace"], own,
            "the webhook's Service is in another namespace than its Deployment"
        );
    }
    (config, own, objects)
}

#[test]
fn a_pod_in_the_webhooks_own_namespace_or_kube_system_is_never_sent_to_it() {
    let (config, own, objects) = shipped();
    let opted_in = json!({OPT_IN_LABEL: "enabled"});

    // Even labelled for injection (by mistake or malice), and whatever the pod asks.
    for name in [
        own.as_str(),
        "kube-system",
        "kube-public",
        "kube-node-lease",
    ] {
        for labels in [json!({}), opted_in.clone()] {
            let ns = namespace(name, labels.clone());
            let pod = opted_in_pod(name);
            assert!(
                !sent_to(&config, &Request::create_pod(&ns, &pod)),
                "a Pod in {name} (labels {labels}) would be sent to the webhook"
            );
        }
    }

    // The webhook's own pods, exactly as its Deployment makes them, with the annotation
    // added: not sent.
    let deployment = of_kind(&objects, "Deployment")[0];
    let mut own_pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": deployment["spec"]["template"]["metadata"].clone(),
        "spec": deployment["spec"]["template"]["spec"].clone(),
    });
    own_pod["metadata"]["namespace"] = json!(own);
    own_pod["metadata"]["annotations"]["secret-zero.dev/inject"] = json!("true");
    let own_ns = namespace(&own, opted_in.clone());
    assert!(!sent_to(&config, &Request::create_pod(&own_ns, &own_pod)));

    // The raw file says the same as the build.
    let raw = std::fs::read_to_string(repo_path(
        "manifests/webhook/mutatingwebhookconfiguration.yaml",
    ))
    .unwrap();
    let raw = &yaml_docs(&raw)[0];
    for name in [own.as_str(), "kube-system"] {
        let ns = namespace(name, opted_in.clone());
        assert!(!sent_to(
            raw,
            &Request::create_pod(&ns, &opted_in_pod(name))
        ));
    }
}

#[test]
fn an_opted_in_pod_of_an_opted_in_namespace_is_sent_and_nothing_else() {
    let (config, _, _) = shipped();
    let shop = namespace("shop", json!({OPT_IN_LABEL: "enabled"}));
    let pod = opted_in_pod("shop");
    assert!(sent_to(&config, &Request::create_pod(&shop, &pod)));

    // A mistyped value is sent too, so that the webhook refuses it with a message.
    let mut typo = pod.clone();
    typo["metadata"]["annotations"]["secret-zero.dev/inject"] = json!("yes");
    assert!(sent_to(&config, &Request::create_pod(&shop, &typo)));

    // Not sent: the namespace not opted in (or opted in with another value), the pod
    // not asking, or asking "false", or another operation or resource.
    for ns in [
        namespace("other", json!({})),
        namespace("other", json!({OPT_IN_LABEL: "disabled"})),
    ] {
        assert!(!sent_to(&config, &Request::create_pod(&ns, &pod)), "{ns}");
    }
    let mut plain = pod.clone();
    plain["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    let mut other_annotations = pod.clone();
    other_annotations["metadata"]["annotations"] = json!({"team": "shop"});
    let mut off = pod.clone();
    off["metadata"]["annotations"]["secret-zero.dev/inject"] = json!("false");
    for p in [&plain, &other_annotations, &off] {
        assert!(!sent_to(&config, &Request::create_pod(&shop, p)), "{p}");
    }
    let update = Request {
        operation: "UPDATE",
        ..Request::create_pod(&shop, &pod)
    };
    assert!(!sent_to(&config, &update));
    let deployment = Request {
        group: "apps",
        resource: "deployments",
        ..Request::create_pod(&shop, &pod)
    };
    assert!(!sent_to(&config, &deployment));
}

/// The evaluators themselves, on cases whose answer the Kubernetes docs state.
#[test]
fn the_selector_and_cel_evaluators_follow_the_kubernetes_semantics() {
    let labels = json!({"a": "1", "b": "2"});
    assert!(selector_matches(None, &labels));
    assert!(selector_matches(Some(&json!({})), &labels));
    assert!(selector_matches(
        Some(&json!({"matchLabels": {"a": "1"}})),
        &labels
    ));
    assert!(!selector_matches(
        Some(&json!({"matchLabels": {"a": "1", "c": "3"}})),
        &labels
    ));
    let expression = |op: &str, values: Value| json!({"matchExpressions": [{"key": "a", "operator": op, "values": values}]});
    assert!(selector_matches(
        Some(&expression("In", json!(["1", "9"]))),
        &labels
    ));
    assert!(!selector_matches(
        Some(&expression("In", json!(["9"]))),
        &labels
    ));
    assert!(!selector_matches(
        Some(&expression("NotIn", json!(["1"]))),
        &labels
    ));
    assert!(selector_matches(
        Some(&expression("NotIn", json!(["9"]))),
        &labels
    ));
    // NotIn holds for a missing label; In does not.
    assert!(selector_matches(
        Some(&expression("NotIn", json!(["1"]))),
        &json!({})
    ));
    assert!(!selector_matches(
        Some(&expression("In", json!(["1"]))),
        &json!({})
    ));
    let exists = json!({"matchExpressions": [{"key": "a", "operator": "Exists"}]});
    let absent = json!({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]});
    assert!(selector_matches(Some(&exists), &labels));
    assert!(!selector_matches(Some(&absent), &labels));
    assert!(selector_matches(Some(&absent), &json!({})));
    // matchLabels and matchExpressions are ANDed.
    let both = json!({"matchLabels": {"b": "2"}, "matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]});
    assert!(!selector_matches(Some(&both), &labels));

    let pod = json!({"metadata": {"annotations": {"k": "v"}}});
    assert_eq!(cel("has(object.metadata.annotations)", &pod), Ok(true));
    assert_eq!(cel("has(object.metadata.labels)", &pod), Ok(false));
    assert_eq!(cel("'k' in object.metadata.annotations", &pod), Ok(true));
    assert_eq!(cel("'x' in object.metadata.annotations", &pod), Ok(false));
    assert_eq!(
        cel("object.metadata.annotations['k'] != 'v'", &pod),
        Ok(false)
    );
    assert_eq!(
        cel("object.metadata.annotations['k'] == 'v'", &pod),
        Ok(true)
    );
    // A missing key is an error in CEL, unless an earlier term short-circuits.
    assert!(cel("object.metadata.annotations['x'] == 'v'", &pod).is_err());
    assert_eq!(
        cel(
            "'x' in object.metadata.annotations && object.metadata.annotations['x'] == 'v'",
            &pod
        ),
        Ok(false)
    );
}
