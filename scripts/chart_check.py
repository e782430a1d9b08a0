#!/usr/bin/env python3
"""Checks of the Helm chart charts/secret-zero, rendered by a real Helm (scripts/validate-chart.sh
runs this with HELM set):

  render   the chart for its default values and every charts/secret-zero/ci/*-values.yaml:
           `helm lint --strict`, `helm template`, then every object validated strictly
           against the Kubernetes schemas of kubernetes-validate, and every pod template
           held to Pod Security "restricted";
  refuse   values the chart must refuse (its schema or its own `fail`), with their message;
  drift    the default render against `kubectl kustomize manifests/webhook` and
           `manifests/rotate`, on what they deploy: images, commands, args, env, ports,
           security contexts, resources, probes, volumes, the webhook's rules and selectors,
           the certificates, the RBAC. A difference fails with a unified diff.

Usage: HELM=/path/to/helm scripts/chart_check.py [render|refuse|drift]...   (default: all)
"""
import copy
import difflib
import glob
import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "charts", "secret-zero")
HELM = os.environ.get("HELM", "helm")
KUBE_VERSIONS = os.environ.get("KUBE_VERSIONS", "1.29.0 1.37.0").split()
# Custom resources: no schema in kubernetes-validate (checked for shape by the drift test
# and by the operators' own tools, not here).
NO_SCHEMA = {
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
CLUSTER_SCOPED = {"MutatingWebhookConfiguration", "ClusterRole", "ClusterRoleBinding", "Namespace"}

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}", file=sys.stderr)


def run(cmd, check=True):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if check and p.returncode != 0:
        sys.exit(f"chart_check: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
    return p


def template(values_files=(), release="secret-zero", namespace="secret-zero", sets=(), check=True):
    cmd = [HELM, "template", release, CHART, "--namespace", namespace]
    for f in values_files:
        cmd += ["--values", f]
    for s in sets:
        cmd += ["--set", s]
    return run(cmd, check)


def objects(text):
    return [d for d in yaml.safe_load_all(text) if d]


# -- render -------------------------------------------------------------------------

def restricted(where, pod_spec):
    """Pod Security Standards, profile restricted (the parts a chart controls)."""
    psc = pod_spec.get("securityContext") or {}
    for c in (pod_spec.get("initContainers") or []) + pod_spec.get("containers", []):
        sc = c.get("securityContext") or {}
        name = f"{where} container {c['name']}"
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(f"{name}: allowPrivilegeEscalation is not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            fail(f"{name}: capabilities do not drop ALL")
        if sc.get("privileged"):
            fail(f"{name}: privileged")
        if not sc.get("runAsNonRoot", psc.get("runAsNonRoot")):
            fail(f"{name}: runAsNonRoot is not set (pod or container)")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            fail(f"{name}: runs as uid 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            fail(f"{name}: seccompProfile is {seccomp!r}, not RuntimeDefault")
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(f"{name}: readOnlyRootFilesystem is not true")


def check_render(label, values_files, namespace):
    import kubernetes_validate as kv

    lint = [HELM, "lint", "--strict", CHART, "--namespace", namespace]
    for f in values_files:
        lint += ["--values", f]
    p = run(lint, check=False)
    if p.returncode != 0:
        fail(f"{label}: helm lint --strict:\n{p.stdout}{p.stderr}")
    objs = objects(template(values_files, namespace=namespace).stdout)
    kinds = {}
    for obj in objs:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
        if obj["kind"] not in CLUSTER_SCOPED and obj["metadata"].get("namespace") != namespace:
            fail(f"{label}: {name} is not in the release namespace {namespace}")
        if (obj["apiVersion"], obj["kind"]) not in NO_SCHEMA:
            for version in KUBE_VERSIONS:
                try:
                    kv.validate(obj, version, strict=True)
                except kv.utils.SchemaNotFoundError:
                    fail(f"{label}: {name}: no schema for {obj['apiVersion']} in {version}")
                except kv.utils.ValidationError as e:
                    where = ".".join(str(x) for x in e.path)
                    fail(f"{label}: {name} against {version}: {where}: {e.message}")
        if obj["kind"] == "Deployment":
            restricted(f"{label}: {name}", obj["spec"]["template"]["spec"])
        if obj["kind"] == "CronJob":
            restricted(f"{label}: {name}", obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{label}: {len(objs)} objects ({summary}) valid against Kubernetes {', '.join(KUBE_VERSIONS)}")
    return objs


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def one(objs, kind):
    found = by_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def render():
    check_render("default values", [], "secret-zero")
    for f in sorted(glob.glob(os.path.join(CHART, "ci", "*-values.yaml"))):
        objs = check_render(os.path.relpath(f, ROOT), [f], "platform")
        # What each non-default set is there to show, checked on the render itself.
        name = os.path.basename(f)
        if name == "self-signed-metrics-values.yaml":
            self_signed(objs)
        elif name == "custom-values.yaml":
            custom(objs)


def self_signed(objs):
    import base64

    secret = one(objs, "Secret")
    mwc = one(objs, "MutatingWebhookConfiguration")
    hook = mwc["webhooks"][0]
    if hook["clientConfig"].get("caBundle") != secret["data"]["ca.crt"]:
        fail("self-signed: the caBundle is not the CA in the webhook's Secret")
    if "cert-manager.io/inject-ca-from" in (mwc["metadata"].get("annotations") or {}):
        fail("self-signed: the configuration still asks cert-manager for its caBundle")
    if by_kind(objs, "Certificate") or by_kind(objs, "Issuer"):
        fail("self-signed: cert-manager objects rendered")
    # The serving certificate verifies against the CA for the Service's DNS name.
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for k in ("ca.crt", "tls.crt"):
            with open(os.path.join(d, k), "wb") as out:
                out.write(base64.b64decode(secret["data"][k]))
        p = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(d, "ca.crt"),
                            "-verify_hostname", "secret-zero-webhook.platform.svc",
                            os.path.join(d, "tls.crt")], capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"self-signed: the serving certificate does not verify: {p.stdout}{p.stderr}")
    sm = one(objs, "ServiceMonitor")
    if sm["spec"]["endpoints"][0]["port"] != "metrics" or sm["metadata"]["labels"].get("release") != "prometheus":
        fail(f"self-signed: ServiceMonitor endpoints/labels: {sm['spec']['endpoints']}")
    svc_ports = {p["name"]: p["port"] for p in one(objs, "Service")["spec"]["ports"]}
    if svc_ports.get("metrics") != 9090:
        fail(f"self-signed: the Service has no metrics port 9090: {svc_ports}")
    jobs = {c["metadata"]["name"]: c for c in by_kind(objs, "CronJob")}
    if sorted(jobs) != ["secret-zero-rotate-billing", "secret-zero-rotate-shop-app"]:
        fail(f"self-signed: CronJobs {sorted(jobs)}")
    else:
        billing = jobs["secret-zero-rotate-billing"]
        args = billing["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
        if billing["spec"]["schedule"] != "30 4 * * 0" or "--trim" not in args or "--transit-key=billing" not in args:
            fail(f"self-signed: billing CronJob schedule/args: {billing['spec']['schedule']} {args}")
    args = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    if "--agent-uid=1000680000" not in args:
        fail(f"self-signed: agent.agentUid not passed as --agent-uid: {args}")


def custom(objs):
    dep = one(objs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    expect = {
        "image": c["image"] == "registry.example.com/platform/secret-zero:0.1.0-rc1",
        "agent image": env.get("SECRET_ZERO_INJECT_IMAGE") == "registry.example.com/platform/secret-zero-agent:0.1.0-rc1",
        "vault addr": env.get("SECRET_ZERO_INJECT_VAULT_ADDR") == "https://openbao.secrets.svc:8200",
        "resources": c["resources"]["requests"] == {"cpu": "50m", "memory": "32Mi"},
        "no uid pinned": "runAsUser" not in c["securityContext"] and "runAsUser" not in pod["securityContext"],
        "no agent uid flag": not any(a.startswith("--agent-uid") for a in c["args"]),
        "legacy sidecar": "--legacy-sidecar" in c["args"],
        "metrics off": "--metrics-listen=off" in c["args"] and all(p["name"] != "metrics" for p in c["ports"]),
        "replicas": dep["spec"]["replicas"] == 3,
        "pull secret": pod["imagePullSecrets"] == [{"name": "registry-credentials"}],
    }
    hook = one(objs, "MutatingWebhookConfiguration")["webhooks"][0]
    sel = hook["namespaceSelector"]
    expect["namespace label"] = sel["matchLabels"] == {"platform.example.com/secrets": "secret-zero"}
    expect["self-exclusion"] = {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                "values": ["platform", "kube-system", "kube-public", "kube-node-lease", "monitoring"]} in sel["matchExpressions"]
    expect["extra expression"] = any(e["key"] == "platform.example.com/tier" for e in sel["matchExpressions"])
    expect["objectSelector"] = hook["objectSelector"]["matchExpressions"][0]["operator"] == "DoesNotExist"
    expect["timeout"] = hook["timeoutSeconds"] == 10
    expect["namespaced rotator"] = (not by_kind(objs, "ClusterRole") and
                                    one(objs, "Role")["metadata"]["namespace"] == "platform")
    cj = one(objs, "CronJob")
    args = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    expect["rotate args"] = ("--all-namespaces" not in args and "--retire" not in args
                             and "--transit-key=payments" in args)
    for what, ok in expect.items():
        if not ok:
            fail(f"custom-values: {what} not as the values say")


# -- refuse -------------------------------------------------------------------------

REFUSED = [
    (["webhook.tls.mode=selfsigned"], "value must be one of 'cert-manager', 'self-signed'"),
    (["webhook.replcas=3"], "additional properties 'replcas' not allowed"),
    (["rotate.keys[0].schedule=@daily"], "missing property 'name'"),
    (["rotate.keys[0].name=shop-app", "rotate.keys[1].name=shop-app"], 'Transit key "shop-app" is listed twice'),
    (["rotate.allNamespaces=false"], "retire needs allNamespaces"),
    (["rotate.clusterWide=false"], "allNamespaces needs rotate.clusterWide"),
    (["agent.agentUid=root"], "/agent/agentUid"),
    (["vaultAddr=vault:8200"], "/vaultAddr"),
]


def refuse():
    for sets, message in REFUSED:
        p = template(sets=sets, check=False)
        if p.returncode == 0:
            fail(f"refuse: --set {' '.join(sets)} rendered; it must be refused")
        elif message not in p.stderr:
            fail(f"refuse: --set {' '.join(sets)}: expected {message!r} in:\n{p.stderr}")
    print(f"refuse: {len(REFUSED)} bad value sets refused with their message")


# -- drift --------------------------------------------------------------------------

notes = []


def drop_metrics(chart_c, kust_c, where):
    """Leave the metrics flag and port out while the kustomize side has neither."""
    if not any(a.startswith("--metrics-listen") for a in kust_c.get("args", [])):
        chart_c["args"] = [a for a in chart_c.get("args", []) if not a.startswith("--metrics-listen")]
        notes.append(f"{where}: --metrics-listen not compared (manifests/webhook has no such flag yet)")
    if not any(p.get("name") == "metrics" for p in kust_c.get("ports", [])):
        chart_c["ports"] = [p for p in chart_c.get("ports", []) if p.get("name") != "metrics"]
        notes.append(f"{where}: port metrics not compared (manifests/webhook has no metrics port yet)")


def strip_labels(pod_template):
    t = copy.deepcopy(pod_template)
    t.get("metadata", {}).pop("labels", None)
    t.get("metadata", {}).pop("annotations", None)
    if not t.get("metadata"):
        t.pop("metadata", None)
    for tsc in t["spec"].get("topologySpreadConstraints", []):
        tsc.pop("labelSelector", None)
    return t


def selects_same(where, chart_sel, kust_sel, chart_labels):
    """The chart's selector may add labels (app.kubernetes.io/instance) but must select
    its own pods."""
    if not set(chart_sel.items()) <= set(chart_labels.items()):
        fail(f"drift: {where}: selector {chart_sel} does not select the chart's pods {chart_labels}")
    if chart_sel.get("app.kubernetes.io/name") != kust_sel.get("app.kubernetes.io/name"):
        fail(f"drift: {where}: app.kubernetes.io/name {chart_sel} vs kustomize {kust_sel}")


def compare(where, chart, kust):
    a = yaml.safe_dump(kust, sort_keys=True, default_flow_style=False).splitlines()
    b = yaml.safe_dump(chart, sort_keys=True, default_flow_style=False).splitlines()
    if a != b:
        diff = "\n".join(difflib.unified_diff(a, b, f"kustomize: {where}", f"chart (default values): {where}", lineterm=""))
        fail(f"drift: {where} differs:\n{diff}")
    return a == b


def named(objs, kind, name):
    for o in objs:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    fail(f"drift: no {kind}/{name} in {'the chart' if objs is CHART_OBJS else 'kustomize'}")
    return None


CHART_OBJS = []


def drift():
    CHART_OBJS[:] = objects(template().stdout)
    chart = CHART_OBJS
    kust = objects(run(["kubectl", "kustomize", "manifests/webhook"]).stdout)
    kust += objects(run(["kubectl", "kustomize", "manifests/rotate"]).stdout)
    compared = 0

    # Every kustomize object has its counterpart in the chart (same kind and name; the
    # rotate CronJob is per key), except the Namespace: Helm installs into one.
    for k in kust:
        kind, name = k["kind"], k["metadata"]["name"]
        if kind == "Namespace":
            continue
        if kind == "CronJob":
            name = "secret-zero-rotate-shop-app"
        c = named(chart, kind, name)
        if c is None:
            continue
        compared += 1
        where = f"{kind}/{k['metadata']['name']}"
        if c["metadata"].get("namespace") != k["metadata"].get("namespace"):
            fail(f"drift: {where}: namespace {c['metadata'].get('namespace')} vs {k['metadata'].get('namespace')}")
        if kind == "Deployment":
            cs, ks = copy.deepcopy(c["spec"]), copy.deepcopy(k["spec"])
            selects_same(where, cs["selector"]["matchLabels"], ks["selector"]["matchLabels"],
                         cs["template"]["metadata"]["labels"])
            for s in (cs, ks):
                s.pop("selector")
            cs["template"], ks["template"] = strip_labels(cs["template"]), strip_labels(ks["template"])
            for cc, kc in zip(cs["template"]["spec"]["containers"], ks["template"]["spec"]["containers"]):
                drop_metrics(cc, kc, f"{where} container {kc['name']}")
            compare(where + " spec", cs, ks)
        elif kind == "Service":
            cs, ks = copy.deepcopy(c["spec"]), copy.deepcopy(k["spec"])
            selects_same(where, cs.pop("selector"), ks.pop("selector"), cs_labels(chart))
            if not any(p["name"] == "metrics" for p in ks["ports"]):
                cs["ports"] = [p for p in cs["ports"] if p["name"] != "metrics"]
                notes.append(f"{where}: port metrics not compared (manifests/webhook has none yet)")
            compare(where + " spec", cs, ks)
        elif kind == "PodDisruptionBudget":
            cs, ks = copy.deepcopy(c["spec"]), copy.deepcopy(k["spec"])
            selects_same(where, cs.pop("selector")["matchLabels"], ks.pop("selector")["matchLabels"], cs_labels(chart))
            compare(where + " spec", cs, ks)
        elif kind == "MutatingWebhookConfiguration":
            ann = "cert-manager.io/inject-ca-from"
            compare(where + f" annotation {ann}", (c["metadata"].get("annotations") or {}).get(ann),
                    (k["metadata"].get("annotations") or {}).get(ann))
            compare(where + " webhooks", c["webhooks"], k["webhooks"])
        elif kind == "CronJob":
            cs, ks = copy.deepcopy(c["spec"]), copy.deepcopy(k["spec"])
            cs["jobTemplate"]["spec"]["template"] = strip_labels(cs["jobTemplate"]["spec"]["template"])
            ks["jobTemplate"]["spec"]["template"] = strip_labels(ks["jobTemplate"]["spec"]["template"])
            compare(where + " spec (key shop-app)", cs, ks)
        elif kind == "ServiceAccount":
            compare(where + " automountServiceAccountToken",
                    c.get("automountServiceAccountToken"), k.get("automountServiceAccountToken"))
        elif kind in ("ClusterRole", "Role"):
            compare(where + " rules", c["rules"], k["rules"])
        elif kind in ("ClusterRoleBinding", "RoleBinding"):
            compare(where + " roleRef and subjects", [c["roleRef"], c["subjects"]], [k["roleRef"], k["subjects"]])
        else:  # cert-manager Issuer and Certificate
            compare(where + " spec", c["spec"], k["spec"])

    # And the other way: nothing in the default render that kustomize does not deploy.
    kust_names = {(k["kind"], k["metadata"]["name"]) for k in kust}
    for o in chart:
        key = (o["kind"], o["metadata"]["name"])
        if o["kind"] == "CronJob":
            key = ("CronJob", "secret-zero-rotate")
        if key not in kust_names:
            fail(f"drift: the chart's default render has {o['kind']}/{o['metadata']['name']}, kustomize has not")
    for n in dict.fromkeys(notes):
        print(f"note: {n}")
    print(f"drift: {compared} objects of manifests/webhook and manifests/rotate compared with the chart's default render")


def cs_labels(chart):
    return one(chart, "Deployment")["spec"]["template"]["metadata"]["labels"]


def main():
    sys.stdout.reconfigure(line_buffering=True)
    steps = sys.argv[1:] or ["render", "refuse", "drift"]
    for step in steps:
        {"render": render, "refuse": refuse, "drift": drift}[step]()
    if failures:
        print(f"chart: {len(failures)} failures", file=sys.stderr)
        sys.exit(1)
    print("chart: OK")


if __name__ == "__main__":
    main()
