//! Server-side printing: the `meta.k8s.io/v1` Table kubectl asks for on `get`
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), with the columns the real
//! printers use for the kinds the double serves.

use serde_json::{Value, json};

use super::clock;

/// The columns of one kind, and how to fill a row from an object.
pub(crate) struct Printer {
    columns: &'static [(&'static str, &'static str, &'static str)],
    cells: fn(&Value) -> Vec<Value>,
}

pub(crate) const SECRETS: Printer = Printer {
    columns: &[
        ("Name", "string", "name"),
        ("Type", "string", ""),
        ("Data", "string", ""),
        ("Age", "string", ""),
    ],
    cells: |s| {
        let data = s["data"].as_object().map_or(0, |d| d.len());
        vec![name(s), s["type"].clone(), json!(data), age(s)]
    },
};

pub(crate) const SERVICE_ACCOUNTS: Printer = Printer {
    columns: &[
        ("Name", "string", "name"),
        ("Secrets", "string", ""),
        ("Age", "string", ""),
    ],
    cells: |sa| {
        let secrets = sa["secrets"].as_array().map_or(0, |s| s.len());
        vec![name(sa), json!(secrets), age(sa)]
    },
};

/// kubectl's pod columns (the wide ones, priority 1, left out): ready counts the
/// containers and the sidecars (init containers with `restartPolicy: Always`).
pub(crate) const PODS: Printer = Printer {
    columns: &[
        ("Name", "string", "name"),
        ("Ready", "string", ""),
        ("Status", "string", ""),
        ("Restarts", "string", ""),
        ("Age", "string", ""),
    ],
    cells: |pod| {
        let sidecars: Vec<&str> = pod["spec"]["initContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["restartPolicy"] == "Always")
            .filter_map(|c| c["name"].as_str())
            .collect();
        let total = pod["spec"]["containers"].as_array().map_or(0, Vec::len) + sidecars.len();
        let statuses = |key: &str| pod["status"][key].as_array().cloned().unwrap_or_default();
        let containers = statuses("containerStatuses");
        let init = statuses("initContainerStatuses");
        let sidecar_statuses = init
            .iter()
            .filter(|s| sidecars.contains(&s["name"].as_str().unwrap_or("")));
        let all: Vec<&Value> = containers.iter().chain(sidecar_statuses).collect();
        let ready = all.iter().filter(|s| s["ready"] == true).count();
        let restarts: u64 = all.iter().filter_map(|s| s["restartCount"].as_u64()).sum();
        let phase = match pod["status"]["reason"].as_str() {
            Some(reason) => json!(reason),
            None => pod["status"]["phase"].clone(),
        };
        vec![
            name(pod),
            json!(format!("{ready}/{total}")),
            phase,
            json!(restarts.to_string()),
            age(pod),
        ]
    },
};

pub(crate) const NAMESPACES: Printer = Printer {
    columns: &[
        ("Name", "string", "name"),
        ("Status", "string", ""),
        ("Age", "string", ""),
    ],
    cells: |ns| vec![name(ns), ns["status"]["phase"].clone(), age(ns)],
};

fn name(object: &Value) -> Value {
    object["metadata"]["name"].clone()
}

fn age(object: &Value) -> Value {
    let created = object["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(clock::parse_rfc3339);
    match created {
        Some(created) => json!(clock::human_duration(clock::now() - created)),
        None => json!("<unknown>"),
    }
}

/// A Table of `objects`; `include_object` is the `includeObject` query parameter
/// (`None`, `Metadata` — the default — or `Object`).
pub(crate) fn render(
    printer: &Printer,
    objects: &[&Value],
    resource_version: &str,
    include_object: Option<&str>,
) -> Value {
    let columns: Vec<Value> = printer
        .columns
        .iter()
        .map(|(name, kind, format)| {
            json!({"name": name, "type": kind, "format": format, "description": "", "priority": 0})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut row = json!({ "cells": (printer.cells)(object) });
            match include_object.unwrap_or("Metadata") {
                "None" => {}
                "Object" => row["object"] = (*object).clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": object["metadata"],
                    })
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": resource_version },
        "columnDefinitions": columns,
        "rows": rows,
    })
}
