//! Adding the agent to one pod template: the native sidecar (or a legacy one), its
//! startup probe, the projected Vault token, the in-memory socket volume, and the
//! socket's address in the app containers.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::annotations::{Settings, Socket};
use super::{InjectError, Options, STATUS, STATUS_INJECTED};
use crate::env::{DEFAULT_SERVICEACCOUNT_DIR, SOCKET as SOCKET_ENV};

/// Name of the agent's container.
pub const AGENT_CONTAINER: &str = "secret-zero";
/// The memory-backed `emptyDir` holding the socket, shared with the app containers.
pub const SOCKET_VOLUME: &str = "secret-zero-socket";
/// The projected ServiceAccount token for Vault (audience `vault`), agent only.
pub const TOKEN_VOLUME: &str = "secret-zero-token";
/// The Kubernetes API credentials (what automount gives), projected into the agent
/// alone, always: see [`inject_template`] for why.
pub use crate::kube::KUBE_API_VOLUME;
/// Vault's CA bundle from a ConfigMap (`secret-zero.dev/vault-ca-configmap`).
pub const VAULT_CA_VOLUME: &str = "secret-zero-vault-ca";
/// Where the Vault token is mounted in the agent (the file is `token`).
pub const TOKEN_DIR: &str = "/var/run/secrets/secret-zero";
/// Where the Vault CA bundle is mounted in the agent.
pub const VAULT_CA_DIR: &str = "/etc/secret-zero/vault-ca";
/// The image's `USER` (distroless `nonroot`): the agent's uid only when the pod runs
/// as root at pod level, which the agent (`runAsNonRoot`) must not inherit.
pub const IMAGE_UID: u32 = 65532;
/// Lifetime of the projected Vault token: the shortest kubelet accepts.
pub const TOKEN_EXPIRATION_SECONDS: u32 = 600;

const OUR_VOLUMES: &[&str] = &[
    SOCKET_VOLUME,
    TOKEN_VOLUME,
    KUBE_API_VOLUME,
    VAULT_CA_VOLUME,
];

/// Facts about the object around the pod template.
#[derive(Debug, Clone)]
pub struct Context {
    /// For messages.
    pub place: String,
    /// The object's namespace, else the caller's default.
    pub namespace: Option<String>,
    /// Job or CronJob: the pod is meant to finish.
    pub run_to_completion: bool,
}

/// Inject into an opted-in pod template (`{metadata, spec}`); returns warnings.
pub fn inject_template(
    template: &mut Map<String, Value>,
    context: &Context,
    options: &Options,
) -> Result<Vec<String>, InjectError> {
    let place = context.place.as_str();
    let pod_err = |message: String, hint: &str| InjectError::Pod {
        place: place.to_string(),
        message,
        hint: hint.to_string(),
    };
    let malformed = |message: &str| InjectError::Malformed {
        place: place.to_string(),
        message: message.to_string(),
    };

    let no_annotations = Map::new();
    let annotations = template
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .unwrap_or(&no_annotations);
    let settings = Settings::parse(annotations, context.namespace.as_deref(), options, place)?;
    let ours = annotations.get(STATUS).and_then(Value::as_str) == Some(STATUS_INJECTED);

    let spec = template
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| malformed("the pod template has no spec"))?;
    for list in ["initContainers", "containers", "volumes"] {
        if spec
            .get(list)
            .is_some_and(|v| !v.is_array() && !v.is_null())
        {
            return Err(malformed(&format!("spec.{list} is not a list")));
        }
    }

    // What an earlier run added is recognised by name; without our status annotation
    // the same names belong to the user and are not ours to replace.
    let taken: Vec<String> = named(spec, "initContainers")
        .chain(named(spec, "containers"))
        .filter(|n| *n == AGENT_CONTAINER)
        .map(|n| format!("a container named {n}"))
        .chain(
            named(spec, "volumes")
                .filter(|n| OUR_VOLUMES.contains(n))
                .map(|n| format!("a volume named {n}")),
        )
        .collect();
    if !taken.is_empty() && !ours {
        return Err(pod_err(
            format!(
                "already has {} that secret-zero did not add (no {STATUS} annotation)",
                taken.join(" and ")
            ),
            "rename it: the injection owns the container secret-zero and the volumes secret-zero-*",
        ));
    }
    if ours {
        remove_previous(spec);
    }

    if let Socket::Abstract(_) = settings.socket
        && spec.get("hostNetwork").and_then(Value::as_bool) == Some(true)
    {
        return Err(InjectError::AbstractSocketOnHostNetwork {
            place: place.to_string(),
            socket: settings.socket.arg(),
        });
    }

    let app_names: Vec<String> = named(spec, "containers").map(str::to_string).collect();
    let init_names: Vec<String> = named(spec, "initContainers").map(str::to_string).collect();
    if app_names.is_empty() {
        return Err(malformed("the pod template has no containers"));
    }
    let readers: Vec<(&'static str, String)> = match &settings.containers {
        None => app_names
            .iter()
            .map(|n| ("containers", n.clone()))
            .collect(),
        Some(names) => {
            let mut out = Vec::new();
            for name in names {
                if app_names.contains(name) {
                    out.push(("containers", name.clone()));
                } else if init_names.contains(name) {
                    if options.legacy_sidecar {
                        return Err(pod_err(
                            format!(
                                "init container {name} cannot read from a legacy sidecar, which starts after the init containers"
                            ),
                            "drop --legacy-sidecar (Kubernetes >= 1.29), or list only app containers in secret-zero.dev/containers",
                        ));
                    }
                    out.push(("initContainers", name.clone()));
                } else {
                    return Err(InjectError::BadAnnotation {
                        place: place.to_string(),
                        name: super::annotations::CONTAINERS.into(),
                        message: format!("the pod has no container named {name:?}"),
                    });
                }
            }
            out
        }
    };

    // Conflicts in the readers: the socket directory already mounted, the variable
    // already set by the user.
    for (list, name) in &readers {
        let container = find(spec, list, name).expect("listed above");
        if let Socket::Path { dir, .. } = &settings.socket
            && container
                .get("volumeMounts")
                .and_then(Value::as_array)
                .is_some_and(|ms| {
                    ms.iter()
                        .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(dir))
                })
        {
            return Err(pod_err(
                format!(
                    "container {name} already mounts something at {dir}, the socket's directory"
                ),
                "choose another socket path with secret-zero.dev/socket",
            ));
        }
        if container
            .get("env")
            .and_then(Value::as_array)
            .is_some_and(|env| {
                env.iter()
                    .any(|e| e.get("name").and_then(Value::as_str) == Some(SOCKET_ENV))
            })
        {
            return Err(pod_err(
                format!("container {name} already sets {SOCKET_ENV}"),
                "remove it from the container: the injection sets it",
            ));
        }
    }

    // The agent's uid. By default it sets no runAsUser and so runs as the app does:
    // the pod's runAsUser, else what the platform assigns (OpenShift's restricted SCCs
    // give every container of the pod the same uid), else the image's USER. A pinned
    // uid (annotation or flag) is set as given; a pod-level root is not inherited.
    let pod_uid = uid_of(spec.get("securityContext"));
    let pinned = settings
        .agent_uid
        .or((pod_uid == Some(0)).then_some(IMAGE_UID));
    // Known here only when pinned or inherited from the pod; otherwise the same as a
    // reader's without a runAsUser, which the agent's own-uid rule then admits.
    let agent_uid = pinned.or(pod_uid);

    // Who may read: the annotation, else the readers' runAsUser where it is set.
    let mut warnings = Vec::new();
    let allowed: BTreeSet<u32> = match &settings.allow_uid {
        Some(uids) => uids.iter().copied().collect(),
        None => {
            let mut uids = BTreeSet::new();
            for (list, name) in &readers {
                let container = find(spec, list, name).expect("listed above");
                match uid_of(container.get("securityContext")).or(pod_uid) {
                    Some(uid) => {
                        uids.insert(uid);
                    }
                    None => {
                        if let Some(uid) = pinned {
                            warnings.push(format!(
                                "{place}: container {name} sets no runAsUser and the agent is pinned to uid {uid} ({} or --agent-uid), so the agent admits only uid {uid}; set runAsUser, or {}",
                                super::annotations::AGENT_UID,
                                super::annotations::ALLOW_UID
                            ));
                        }
                    }
                }
            }
            uids
        }
    };
    // The agent's own uid is always admitted: no flag for it.
    let others: Vec<u32> = allowed
        .into_iter()
        .filter(|u| Some(*u) != agent_uid)
        .collect();

    let agent = agent_container(&settings, pinned, &others, context, options);

    if options.legacy_sidecar {
        array(spec, "containers").push(agent);
    } else {
        array(spec, "initContainers").insert(0, agent);
    }

    let volumes = array(spec, "volumes");
    if let Socket::Path { .. } = settings.socket {
        volumes.push(json!({
            "name": SOCKET_VOLUME,
            "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"},
        }));
    }
    volumes.push(json!({
        "name": TOKEN_VOLUME,
        "projected": {"sources": [{"serviceAccountToken": {
            "audience": settings.audience,
            "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
            "path": "token",
        }}]},
    }));
    // The agent reads its Secret through the API, so it gets the API credentials of
    // its own, whatever the pod says: the pod spec cannot show whether they would be
    // mounted (the ServiceAccount's automountServiceAccountToken: false turns them off
    // too, and `inject` works offline, without the ServiceAccount), and a container
    // the webhook adds comes after the ServiceAccount admission plugin has mounted
    // them into the others. A mount at the usual path also keeps that plugin from
    // adding its own to the agent. Same ServiceAccount, same rights: nothing more.
    volumes.push(json!({
        "name": KUBE_API_VOLUME,
        "projected": {"sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]},
    }));
    if let Some((name, key)) = &settings.vault_ca {
        volumes.push(json!({
            "name": VAULT_CA_VOLUME,
            "configMap": {"name": name, "items": [{"key": key, "path": "ca.crt"}]},
        }));
    }

    for (list, name) in &readers {
        let container = find_mut(spec, list, name).expect("listed above");
        if let Socket::Path { dir, .. } = &settings.socket {
            array(container, "volumeMounts").push(json!({
                "name": SOCKET_VOLUME,
                "mountPath": dir,
            }));
        }
        array(container, "env").push(json!({"name": SOCKET_ENV, "value": settings.socket.arg()}));
    }

    let metadata = template
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| malformed("the pod template's metadata is not a mapping"))?;
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| malformed("metadata.annotations is not a mapping"))?;
    annotations.insert(STATUS.into(), json!(STATUS_INJECTED));
    Ok(warnings)
}

fn agent_container(
    s: &Settings,
    run_as_user: Option<u32>,
    others: &[u32],
    context: &Context,
    options: &Options,
) -> Value {
    let socket = s.socket.arg();
    let mut args = vec![
        "serve".to_string(),
        format!("--secret={}", s.secret),
        format!("--vault-addr={}", s.vault_addr),
        format!("--role={}", s.role),
        format!("--token-file={TOKEN_DIR}/token"),
        format!("--socket={socket}"),
    ];
    let mut optional = |flag: &str, value: &Option<String>| {
        if let Some(v) = value {
            args.push(format!("--{flag}={v}"));
        }
    };
    optional("auth-method", &s.auth_method);
    optional("auth-mount", &s.auth_mount);
    optional("transit-mount", &s.transit_mount);
    optional("transit-key", &s.transit_key);
    optional("vault-namespace", &s.vault_namespace);
    if s.vault_ca.is_some() {
        args.push(format!("--vault-cacert={VAULT_CA_DIR}/ca.crt"));
    }
    if let Some(n) = s.max_deliveries {
        args.push(format!("--max-deliveries={n}"));
    }
    for uid in others {
        args.push(format!("--allow-uid={uid}"));
    }
    // Another uid must be able to connect(2) to the file; SO_PEERCRED then decides.
    if !others.is_empty() && matches!(s.socket, Socket::Path { .. }) {
        args.push("--socket-mode=0666".to_string());
    }
    // A legacy sidecar that never exits would keep a Job's pod running for ever.
    if options.legacy_sidecar && context.run_to_completion {
        args.push("--exit-after-delivery".to_string());
    }

    let mut mounts = Vec::new();
    if let Socket::Path { dir, .. } = &s.socket {
        mounts.push(json!({"name": SOCKET_VOLUME, "mountPath": dir}));
    }
    mounts.push(json!({"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": true}));
    mounts.push(
        json!({"name": KUBE_API_VOLUME, "mountPath": DEFAULT_SERVICEACCOUNT_DIR, "readOnly": true}),
    );
    if s.vault_ca.is_some() {
        mounts.push(json!({"name": VAULT_CA_VOLUME, "mountPath": VAULT_CA_DIR, "readOnly": true}));
    }

    let mut agent = json!({
        "name": AGENT_CONTAINER,
        "image": s.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["secret-zero"],
        "args": args,
        "startupProbe": {
            "exec": {"command": ["secret-zero", "probe", format!("--socket={socket}")]},
            "periodSeconds": 1,
            "failureThreshold": 60,
        },
        "resources": {
            "requests": {"cpu": s.cpu_request, "memory": s.memory_request},
            "limits": {"cpu": s.cpu_limit, "memory": s.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
    });
    if let Some(uid) = run_as_user {
        agent["securityContext"]["runAsUser"] = json!(uid);
    }
    if !options.legacy_sidecar {
        agent["restartPolicy"] = json!("Always");
    }
    agent
}

/// Take out everything an earlier injection added, so that adding it again gives the
/// same pod.
fn remove_previous(spec: &mut Map<String, Value>) {
    for list in ["initContainers", "containers"] {
        if let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) {
            items.retain(|c| c.get("name").and_then(Value::as_str) != Some(AGENT_CONTAINER));
            for container in items.iter_mut().filter_map(Value::as_object_mut) {
                retain_named(container, "volumeMounts", |n| n != SOCKET_VOLUME);
                retain_named(container, "env", |n| n != SOCKET_ENV);
            }
        }
        drop_if_empty(spec, list);
    }
    retain_named(spec, "volumes", |n| !OUR_VOLUMES.contains(&n));
}

fn retain_named(map: &mut Map<String, Value>, key: &str, keep: impl Fn(&str) -> bool) {
    if let Some(items) = map.get_mut(key).and_then(Value::as_array_mut) {
        items.retain(|v| keep(v.get("name").and_then(Value::as_str).unwrap_or_default()));
    }
    drop_if_empty(map, key);
}

fn drop_if_empty(map: &mut Map<String, Value>, key: &str) {
    if map
        .get(key)
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        map.remove(key);
    }
}

/// The list at `key`, created when absent (or null).
fn array<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = map.entry(key).or_insert_with(|| json!([]));
    if !slot.is_array() {
        *slot = json!([]);
    }
    slot.as_array_mut().expect("made an array above")
}

fn named<'a>(spec: &'a Map<String, Value>, list: &str) -> impl Iterator<Item = &'a str> {
    spec.get(list)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
}

fn find<'a>(spec: &'a Map<String, Value>, list: &str, name: &str) -> Option<&'a Value> {
    spec.get(list)?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

fn find_mut<'a>(
    spec: &'a mut Map<String, Value>,
    list: &str,
    name: &str,
) -> Option<&'a mut Map<String, Value>> {
    spec.get_mut(list)?
        .as_array_mut()?
        .iter_mut()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))?
        .as_object_mut()
}

fn uid_of(security_context: Option<&Value>) -> Option<u32> {
    security_context?
        .get("runAsUser")?
        .as_u64()
        .and_then(|u| u32::try_from(u).ok())
}
