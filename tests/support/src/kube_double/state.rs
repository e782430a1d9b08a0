//! Everything the double remembers: the objects (one global `resourceVersion` counter,
//! as etcd has), ServiceAccounts and their grants, and the request log. One mutex
//! around all of it: requests are tiny and the tests want a consistent picture.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

use super::clock;
use super::ids;
use super::list_faults::ListFaults;
use super::rule::Rule;
use super::signing::Signer;

/// The immutable identity of one double plus its mutable cluster.
pub(crate) struct Double {
    /// `https://127.0.0.1:PORT`: the service-account issuer and the API audience.
    pub issuer: String,
    pub admin_token: String,
    pub signer: Signer,
    cluster: Mutex<Cluster>,
}

impl Double {
    pub(crate) fn new(issuer: String) -> Double {
        Double {
            issuer,
            admin_token: ids::new_token(),
            signer: Signer::generate(),
            cluster: Mutex::new(Cluster::new()),
        }
    }

    /// The API server's own audiences (`--api-audiences`, defaulting to the issuer).
    pub(crate) fn api_audiences(&self) -> Vec<String> {
        vec![self.issuer.clone()]
    }

    pub(crate) fn cluster(&self) -> MutexGuard<'_, Cluster> {
        // A panicking test thread must not wedge every later request.
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Objects keyed by `(namespace, name)`, iterated in etcd key order.
pub(crate) type Objects = BTreeMap<(String, String), Value>;

pub(crate) struct Grant {
    pub namespace: String,
    pub service_account: String,
    pub rule: Rule,
}

pub(crate) struct Cluster {
    resource_version: u64,
    pub namespaces: BTreeMap<String, Value>,
    pub secrets: Objects,
    pub configmaps: Objects,
    pub pods: Objects,
    pub service_accounts: Objects,
    pub grants: Vec<Grant>,
    /// `"VERB PATH"` of every API request served.
    pub log: Vec<String>,
    /// Expired continue tokens and throttled lists, when a test asks for them.
    pub list_faults: ListFaults,
}

impl Cluster {
    pub(crate) fn new() -> Cluster {
        let mut cluster = Cluster {
            resource_version: 0,
            namespaces: BTreeMap::new(),
            secrets: Objects::new(),
            configmaps: Objects::new(),
            pods: Objects::new(),
            service_accounts: Objects::new(),
            grants: Vec::new(),
            log: Vec::new(),
            list_faults: ListFaults::default(),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            cluster.ensure_namespace(ns);
        }
        cluster
    }

    pub(crate) fn next_resource_version(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// What a list reports as `metadata.resourceVersion`.
    pub(crate) fn current_resource_version(&self) -> String {
        self.resource_version.to_string()
    }

    /// Namespaces spring into existence on first use, so tests need not create them.
    pub(crate) fn ensure_namespace(&mut self, name: &str) {
        if self.namespaces.contains_key(name) {
            return;
        }
        let mut namespace = json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "labels": { "kubernetes.io/metadata.name": name },
            },
            "spec": { "finalizers": ["kubernetes"] },
            "status": { "phase": "Active" },
        });
        self.stamp_new(&mut namespace);
        self.namespaces.insert(name.to_string(), namespace);
    }

    /// Server-owned metadata of a freshly created object.
    pub(crate) fn stamp_new(&mut self, object: &mut Value) {
        let resource_version = self.next_resource_version();
        let metadata = &mut object["metadata"];
        metadata["uid"] = json!(ids::new_uid());
        metadata["creationTimestamp"] = json!(clock::rfc3339(clock::now()));
        metadata["resourceVersion"] = json!(resource_version);
    }

    /// Stores `new` as `ns/name` in the map `objects` picks (a create, or a
    /// replacement of what is there) through [`commit`](Self::commit); the namespace
    /// appears on first use. Returns the stored object.
    pub(crate) fn store(
        &mut self,
        objects: fn(&mut Cluster) -> &mut Objects,
        ns: &str,
        name: &str,
        new: Value,
    ) -> Value {
        self.ensure_namespace(ns);
        let key = (ns.to_string(), name.to_string());
        let old = objects(self).get(&key).cloned();
        let stored = self.commit(old.as_ref(), new);
        objects(self).insert(key, stored.clone());
        stored
    }

    /// Stamps server metadata on `new`, which replaces `old` if there is one. An update
    /// that changes nothing keeps the stored object and its resourceVersion, as the
    /// real storage layer does.
    pub(crate) fn commit(&mut self, old: Option<&Value>, mut new: Value) -> Value {
        let Some(old) = old else {
            self.stamp_new(&mut new);
            return new;
        };
        for key in ["uid", "creationTimestamp"] {
            new["metadata"][key] = old["metadata"][key].clone();
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if &new == old {
            return new;
        }
        new["metadata"]["resourceVersion"] = json!(self.next_resource_version());
        new
    }

    /// Creates (or returns the existing) ServiceAccount; its uid is bound into tokens.
    pub(crate) fn create_service_account(&mut self, namespace: &str, name: &str) -> String {
        if let Some(uid) = self.service_account_uid(namespace, name) {
            return uid;
        }
        self.ensure_namespace(namespace);
        let mut account = json!({
            "kind": "ServiceAccount",
            "apiVersion": "v1",
            "metadata": { "name": name, "namespace": namespace },
        });
        self.stamp_new(&mut account);
        let uid = account["metadata"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        self.service_accounts
            .insert((namespace.to_string(), name.to_string()), account);
        uid
    }

    pub(crate) fn service_account_uid(&self, namespace: &str, name: &str) -> Option<String> {
        self.service_accounts
            .get(&(namespace.to_string(), name.to_string()))
            .and_then(|sa| sa["metadata"]["uid"].as_str())
            .map(str::to_string)
    }
}

/// `metadata.resourceVersion` of a stored object.
pub(crate) fn resource_version_of(object: &Value) -> &str {
    object["metadata"]["resourceVersion"].as_str().unwrap_or("")
}
