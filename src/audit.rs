//! `audit`: find the pods the injection missed. Read only: it lists pods and writes
//! nothing.
//!
//! A pod is one of ours when it is annotated `secret-zero.dev/inject: "true"`, or when
//! it carries the agent with `secret-zero.dev/status: injected`. Of those, a pod is
//! - **fine**: it has the agent (a native sidecar in `initContainers` with
//!   `restartPolicy: Always`, or a legacy sidecar in `containers`) on the expected image;
//! - **no-agent**: annotated, but without the agent — created while the webhook was down
//!   or before it was installed (or the agent was taken out afterwards);
//! - **image-mismatch**: injected, with another agent image than expected. The expected
//!   image is the pod's own `secret-zero.dev/image` annotation when it has one (what
//!   inject and the webhook put there), else `--image`. Images are compared as strings.
//!
//! The pods are read a page at a time (`limit`/`continue`); each page is retried on
//! transient faults within the retry budget.

use std::fmt::Write as _;

use serde::Serialize;

use crate::failure::Hinted;
use crate::fault::Fault;
use crate::inject::{INJECT, STATUS, STATUS_INJECTED};
use crate::kube::{Container, KubeError, Pod, Pods};
use crate::retry::{Backoff, retry};

use crate::inject::{AGENT_CONTAINER, IMAGE_ANNOTATION};

/// Where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    AllNamespaces,
}

impl Scope {
    fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Namespace(ns) => Some(ns),
            Scope::AllNamespaces => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Scope::Namespace(ns) => format!("namespace {ns}"),
            Scope::AllNamespaces => "all namespaces".to_string(),
        }
    }
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scope: Scope,
    /// The agent image pods without `secret-zero.dev/image` should run.
    pub expected_image: String,
    /// Pods per list request.
    pub page_size: u32,
    pub backoff: Backoff,
}

/// Why an audit could not finish.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// RBAC does not let this identity list pods in the scope.
    #[error("audit: {source}")]
    Forbidden { scope: Scope, source: KubeError },

    /// Anything else: the API unreachable, credentials refused, bad configuration.
    #[error("audit: {0}")]
    Fault(#[from] Fault),
}

impl Hinted for AuditError {
    fn hint(&self) -> Option<String> {
        match self {
            AuditError::Forbidden {
                scope: Scope::AllNamespaces,
                ..
            } => Some(
                "audit --all-namespaces needs the verb list on the resource pods in every namespace: \
                 grant it with a ClusterRole bound by a ClusterRoleBinding, \
                 e.g. kubectl create clusterrole secret-zero-audit --verb=list --resource=pods"
                    .to_string(),
            ),
            AuditError::Forbidden {
                scope: Scope::Namespace(ns),
                ..
            } => Some(format!(
                "audit needs the verb list on the resource pods in namespace {ns}: grant it with a \
                 Role and RoleBinding there, or a ClusterRole bound by a RoleBinding, \
                 e.g. kubectl create role secret-zero-audit -n {ns} --verb=list --resource=pods"
            )),
            AuditError::Fault(e) => e.hint(),
        }
    }
}

/// What is wrong with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// Annotated for injection, without the agent.
    NoAgent,
    /// Injected, with another agent image than expected.
    ImageMismatch,
}

impl Problem {
    fn as_str(self) -> &'static str {
        match self {
            Problem::NoAgent => "no-agent",
            Problem::ImageMismatch => "image-mismatch",
        }
    }
}

/// One pod the injection missed or left behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stray {
    pub namespace: String,
    pub name: String,
    pub problem: Problem,
    /// `status.phase` (Pending, Running, Succeeded, Failed, Unknown).
    pub phase: Option<String>,
    /// The agent's image, for `image-mismatch`.
    pub image: Option<String>,
    /// The image it should run, for `image-mismatch`.
    pub expected_image: Option<String>,
    /// Why, in words.
    pub detail: String,
}

/// The result of a run, printed as a table or as one JSON object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The namespace audited; `null` with `all_namespaces`.
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    /// `--image`: what pods without `secret-zero.dev/image` should run.
    pub expected_image: String,
    /// Whether no stray pod was found (and the run finished).
    pub clean: bool,
    /// Every pod listed, ours or not.
    pub pods_scanned: u64,
    /// Injected pods on the expected image.
    pub fine: u64,
    /// Annotated pods without the agent.
    pub no_agent: u64,
    /// Injected pods on another agent image.
    pub image_mismatch: u64,
    /// The pods counted in `no_agent` and `image_mismatch`, in namespace/name order.
    pub strays: Vec<Stray>,
    /// Kubernetes API requests (list pages, retries included).
    pub kube_requests: u64,
    /// The error that stopped the run; the counts then cover only the pods read before.
    pub error: Option<String>,
}

impl Report {
    fn new(plan: &Plan) -> Report {
        Report {
            namespace: plan
                .scope
                .namespace()
                .filter(|ns| !ns.is_empty())
                .map(str::to_string),
            all_namespaces: plan.scope == Scope::AllNamespaces,
            expected_image: plan.expected_image.clone(),
            ..Report::default()
        }
    }

    fn add(&mut self, pod: &Pod, expected_image: &str) {
        self.pods_scanned += 1;
        match judge(pod, expected_image) {
            None => {}
            Some(Verdict::Fine) => self.fine += 1,
            Some(Verdict::Stray(stray)) => {
                match stray.problem {
                    Problem::NoAgent => self.no_agent += 1,
                    Problem::ImageMismatch => self.image_mismatch += 1,
                }
                self.strays.push(stray);
            }
        }
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }

    /// The report as a table of stray pods and a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if !self.strays.is_empty() {
            let headers = ["NAMESPACE", "NAME", "PROBLEM", "PHASE", "DETAIL"];
            let rows: Vec<[&str; 5]> = self
                .strays
                .iter()
                .map(|s| {
                    [
                        s.namespace.as_str(),
                        s.name.as_str(),
                        s.problem.as_str(),
                        s.phase.as_deref().unwrap_or("-"),
                        s.detail.as_str(),
                    ]
                })
                .collect();
            let mut widths = headers.map(str::len);
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            for row in std::iter::once(&headers).chain(&rows) {
                let mut line = String::new();
                for (i, cell) in row.iter().enumerate() {
                    if i + 1 == row.len() {
                        line.push_str(cell);
                    } else {
                        let _ = write!(line, "{cell:<w$}   ", w = widths[i]);
                    }
                }
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
        let scope = match &self.namespace {
            Some(ns) => format!("namespace {ns}"),
            None => "all namespaces".to_string(),
        };
        let fine = plural(self.fine, "injected pod", "injected pods");
        let scanned = plural(self.pods_scanned, "pod", "pods");
        if self.strays.is_empty() {
            let _ = writeln!(
                out,
                "no stray pods: {fine} fine, {scanned} scanned in {scope} (expected agent image {})",
                self.expected_image
            );
        } else {
            let _ = writeln!(
                out,
                "{}: {} without the agent, {} on another agent image; {fine} fine, {scanned} scanned in {scope} (expected agent image {})",
                plural(self.strays.len() as u64, "stray pod", "stray pods"),
                self.no_agent,
                self.image_mismatch,
                self.expected_image
            );
        }
        out
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How one pod fares; `None` when it is not ours at all.
enum Verdict {
    Fine,
    Stray(Stray),
}

/// Where the agent sits in a pod, if anywhere.
enum Agent<'a> {
    /// In `initContainers` with `restartPolicy: Always` (native sidecar) or in
    /// `containers` (legacy sidecar).
    Sidecar(&'a Container),
    /// In `initContainers` without `restartPolicy: Always`: it would hold the pod's
    /// start for ever rather than run beside the app.
    PlainInit,
    None,
}

fn find_agent(pod: &Pod) -> Agent<'_> {
    let Some(spec) = &pod.spec else {
        return Agent::None;
    };
    let named = |c: &&Container| c.name == AGENT_CONTAINER;
    if let Some(init) = spec.init_containers.iter().flatten().find(named) {
        return if init.restart_policy.as_deref() == Some("Always") {
            Agent::Sidecar(init)
        } else {
            Agent::PlainInit
        };
    }
    match spec.containers.iter().find(named) {
        Some(c) => Agent::Sidecar(c),
        None => Agent::None,
    }
}

fn judge(pod: &Pod, default_image: &str) -> Option<Verdict> {
    let annotation = |key: &str| {
        pod.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    };
    let opted_in = annotation(INJECT) == Some("true");
    let marked = annotation(STATUS) == Some(STATUS_INJECTED);
    let agent = find_agent(pod);
    let ours = opted_in || (marked && matches!(agent, Agent::Sidecar(_)));
    if !ours {
        return None;
    }
    let stray = |problem, detail: String, image: Option<String>, expected: Option<String>| {
        Verdict::Stray(Stray {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            problem,
            phase: pod.status.as_ref().and_then(|s| s.phase.clone()),
            image,
            expected_image: expected,
            detail,
        })
    };
    let no_agent = |detail: String| stray(Problem::NoAgent, detail, None, None);
    let container = match agent {
        Agent::Sidecar(container) if marked => container,
        Agent::Sidecar(_) => {
            return Some(no_agent(format!(
                "its container {AGENT_CONTAINER} was not added by the injection (no {STATUS}: {STATUS_INJECTED} annotation)"
            )));
        }
        Agent::PlainInit => {
            return Some(no_agent(format!(
                "its init container {AGENT_CONTAINER} has no restartPolicy: Always, so it is no sidecar"
            )));
        }
        Agent::None if marked => {
            return Some(no_agent(format!(
                "marked {STATUS}: {STATUS_INJECTED} but the agent container {AGENT_CONTAINER} is gone"
            )));
        }
        Agent::None => {
            return Some(no_agent(format!(
                "annotated {INJECT}: \"true\" but created without the agent (the webhook was down, not yet installed, or not called for this namespace)"
            )));
        }
    };
    let (expected, from) = match annotation(IMAGE_ANNOTATION).filter(|i| !i.trim().is_empty()) {
        Some(pinned) => (pinned, format!("its {IMAGE_ANNOTATION} annotation")),
        None => (default_image, "--image".to_string()),
    };
    let image = container.image.as_deref().unwrap_or("");
    if image == expected {
        return Some(Verdict::Fine);
    }
    Some(stray(
        Problem::ImageMismatch,
        format!("agent image {image}, expected {expected} (from {from})"),
        Some(image.to_string()),
        Some(expected.to_string()),
    ))
}

/// A finished run: the report (also when the run failed) and whether it failed.
pub struct Outcome {
    pub report: Report,
    pub result: Result<(), AuditError>,
}

/// The report a run that could not start prints.
pub fn empty_report(plan: &Plan) -> Report {
    Report::new(plan)
}

/// List every pod in the scope, page by page, and judge each.
pub async fn run(pods: &Pods, plan: &Plan) -> Outcome {
    let mut report = Report::new(plan);
    let result = scan(pods, plan, &mut report).await;
    report.kube_requests = pods.requests();
    report.clean = result.is_ok() && report.strays.is_empty();
    if let Err(e) = &result {
        report.error = Some(e.one_line());
    }
    Outcome { report, result }
}

async fn scan(pods: &Pods, plan: &Plan, report: &mut Report) -> Result<(), AuditError> {
    let namespace = plan.scope.namespace();
    let mut token: Option<String> = None;
    let mut page_number = 0u64;
    loop {
        page_number += 1;
        let page = retry("list pods", plan.backoff, || {
            pods.page(namespace, plan.page_size, token.as_deref())
        })
        .await
        .map_err(|e| match e {
            KubeError::Forbidden { .. } => AuditError::Forbidden {
                scope: plan.scope.clone(),
                source: e,
            },
            other => AuditError::Fault(Fault::from(other).context(format!(
                "listing pods in {} (page {page_number})",
                plan.scope.describe()
            ))),
        })?;
        for pod in &page.items {
            report.add(pod, &plan.expected_image);
        }
        tracing::debug!(
            page = page_number,
            pods = page.items.len(),
            scanned = report.pods_scanned,
            "listed pods"
        );
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const IMAGE: &str = "registry.example/secret-zero:1.2.3";

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).expect("a pod")
    }

    fn annotated(name: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "shop",
                "annotations": {
                    "secret-zero.dev/inject": "true",
                    "secret-zero.dev/secret": "app-secrets",
                    "secret-zero.dev/role": "app",
                    "secret-zero.dev/vault-addr": "https://vault:8200",
                },
            },
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        })
    }

    /// What the injection itself makes of `object`, as a pod.
    fn injected(object: Value, legacy: bool) -> Pod {
        pod(injected_value(object, legacy))
    }

    /// What the injection itself makes of `object`.
    fn injected_value(mut object: Value, legacy: bool) -> Value {
        let options = crate::inject::Options {
            legacy_sidecar: legacy,
            image: IMAGE.to_string(),
            ..crate::inject::Options::default()
        };
        let report = crate::inject::inject_object(&mut object, &options, "test").expect("inject");
        assert!(report.changed());
        object
    }

    /// `None`: not ours; `Some(None)`: fine; `Some(Some(stray))`.
    fn verdict(pod: &Pod) -> Option<Option<Stray>> {
        judge(pod, IMAGE).map(|v| match v {
            Verdict::Fine => None,
            Verdict::Stray(s) => Some(s),
        })
    }

    #[test]
    fn what_the_injection_makes_is_fine() {
        assert_eq!(verdict(&injected(annotated("native"), false)), Some(None));
        assert_eq!(verdict(&injected(annotated("legacy"), true)), Some(None));
    }

    #[test]
    fn a_pinned_image_is_expected_for_that_pod() {
        let mut object = annotated("pinned");
        object["metadata"]["annotations"][IMAGE_ANNOTATION] = json!("mirror.example/sz:9");
        let pinned = injected(object, false);
        assert_eq!(verdict(&pinned), Some(None));
        // The same pod judged against the default alone would be a mismatch: the
        // annotation is what makes it fine.
        let mut unpinned = pinned.clone();
        unpinned
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(IMAGE_ANNOTATION);
        let stray = verdict(&unpinned).unwrap().unwrap();
        assert_eq!(stray.problem, Problem::ImageMismatch);
        assert_eq!(stray.image.as_deref(), Some("mirror.example/sz:9"));
    }

    #[test]
    fn an_annotated_pod_without_the_agent_is_a_stray() {
        let stray = verdict(&pod(annotated("missed"))).unwrap().unwrap();
        assert_eq!(stray.problem, Problem::NoAgent);
        assert_eq!(
            (stray.namespace.as_str(), stray.name.as_str()),
            ("shop", "missed")
        );
        assert!(
            stray.detail.contains("created without the agent"),
            "{}",
            stray.detail
        );
    }

    #[test]
    fn another_agent_image_is_a_stray() {
        let old = injected(annotated("old"), false);
        let stray = judge(&old, "registry.example/secret-zero:2.0.0").map(|v| match v {
            Verdict::Stray(s) => s,
            Verdict::Fine => panic!("fine"),
        });
        let stray = stray.unwrap();
        assert_eq!(stray.problem, Problem::ImageMismatch);
        assert_eq!(stray.image.as_deref(), Some(IMAGE));
        assert_eq!(
            stray.expected_image.as_deref(),
            Some("registry.example/secret-zero:2.0.0")
        );
    }

    #[test]
    fn pods_that_are_not_ours_are_ignored() {
        let mut plain = annotated("plain");
        plain["metadata"]["annotations"] = json!({});
        assert!(verdict(&pod(plain)).is_none());
        let mut off = annotated("off");
        off["metadata"]["annotations"][INJECT] = json!("false");
        assert!(verdict(&pod(off)).is_none());
    }

    #[test]
    fn half_injected_pods_have_no_agent() {
        // The status annotation, but the container taken out.
        let mut gone = injected_value(annotated("gone"), false);
        gone["spec"]["initContainers"] = json!([]);
        let stray = verdict(&pod(gone)).unwrap().unwrap();
        assert_eq!(stray.problem, Problem::NoAgent);
        assert!(stray.detail.contains("is gone"), "{}", stray.detail);

        // A container of that name the injection did not add.
        let mut own = annotated("own");
        own["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": AGENT_CONTAINER, "image": IMAGE}));
        let stray = verdict(&pod(own)).unwrap().unwrap();
        assert_eq!(stray.problem, Problem::NoAgent);

        // An init container that is no sidecar.
        let mut plain = injected_value(annotated("plain-init"), false);
        plain["spec"]["initContainers"][0]
            .as_object_mut()
            .unwrap()
            .remove("restartPolicy");
        let stray = verdict(&pod(plain)).unwrap().unwrap();
        assert!(stray.detail.contains("restartPolicy"), "{}", stray.detail);
    }

    #[test]
    fn the_text_report_names_each_stray_and_sums_up() {
        let plan = Plan {
            scope: Scope::Namespace("shop".into()),
            expected_image: IMAGE.into(),
            page_size: 10,
            backoff: Backoff::default(),
        };
        let mut report = Report::new(&plan);
        report.add(&injected(annotated("good"), false), IMAGE);
        report.add(&pod(annotated("missed")), IMAGE);
        let text = report.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("NAMESPACE   NAME     PROBLEM"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("shop        missed   no-agent"),
            "{text}"
        );
        assert_eq!(
            lines[2],
            format!(
                "1 stray pod: 1 without the agent, 0 on another agent image; 1 injected pod fine, 2 pods scanned in namespace shop (expected agent image {IMAGE})"
            )
        );
    }
}
