//! The AdmissionReview decoder and the inject mutation behind it (`src/webhook/review.rs`,
//! `src/inject/`), and `inject`'s YAML stream.
//!
//! Input: one control byte, then an AdmissionReview (JSON) or, with control bit 0, a
//! YAML stream for `inject`.
//!
//! Properties:
//! - a review is answered as an `admission.k8s.io/v1` AdmissionReview whose response
//!   carries the request's uid; allowed unless denied; a patch only when patched;
//! - the mutation is idempotent on its own output: the pod the patch makes, reviewed
//!   again, needs no patch (and is not denied);
//! - `inject` is idempotent on its own output: injecting what it printed prints the
//!   same text, with as many pod templates injected; its JSON output is JSON.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use secret_zero::fuzzing::document::ManifestFormat;
use secret_zero::fuzzing::inject::{Decision, Options, inject_yaml, review};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let [control, rest @ ..] = data else {
        return;
    };
    let options = Options {
        vault_addr: (control & 2 != 0).then(|| "https://vault:8200".to_string()),
        legacy_sidecar: control & 4 != 0,
        agent_uid: (control & 8 != 0).then_some(65532),
        ..Options::default()
    };
    if control & 1 == 0 {
        admission(rest, &options);
    } else if let Ok(text) = std::str::from_utf8(rest) {
        stream(text, &options);
    }
});

fn admission(body: &[u8], options: &Options) {
    let Ok(verdict) = review(body, options) else {
        return;
    };
    let request: Value = serde_json::from_slice(body).expect("an answered review is JSON");
    let response = &verdict.review["response"];
    assert_eq!(verdict.review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(verdict.review["kind"], "AdmissionReview");
    assert_eq!(response["uid"], request["request"]["uid"]);
    assert_eq!(response["uid"], Value::from(verdict.uid.as_str()));
    let allowed = response["allowed"].as_bool().expect("allowed is a boolean");
    assert_eq!(allowed, verdict.outcome != Decision::Denied);
    let patch = response.get("patch");
    assert_eq!(
        patch.is_some(),
        matches!(verdict.outcome, Decision::Patched(_))
    );
    let Some(patch) = patch else {
        return;
    };
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch.as_str().expect("the patch is a string"))
        .expect("the patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSON Patch");

    // The pod as the API server would store it after the patch.
    let mut pod = request["request"]["object"].clone();
    for (field, value) in [("apiVersion", "v1"), ("kind", "Pod")] {
        if let Some(map) = pod.as_object_mut() {
            map.entry(field).or_insert_with(|| value.into());
        }
    }
    json_patch::patch(&mut pod, &patch).expect("the patch applies to the pod it was made for");

    let mut again = request.clone();
    again["request"]["object"] = pod;
    let body = serde_json::to_vec(&again).expect("writes");
    let second = review(&body, options).expect("the patched pod is a review again");
    assert_eq!(
        second.outcome,
        Decision::Unchanged,
        "the mutation is not idempotent: {:?}",
        second.review
    );
}

fn stream(text: &str, options: &Options) {
    let inputs = [("-".to_string(), text.to_string())];
    let Ok(once) = inject_yaml(&inputs, options, ManifestFormat::Yaml) else {
        return;
    };
    let again = [("-".to_string(), once.text.clone())];
    let twice = inject_yaml(&again, options, ManifestFormat::Yaml)
        .unwrap_or_else(|e| panic!("inject cannot read its own output: {e}\n{}", once.text));
    assert_eq!(
        twice.text, once.text,
        "inject is not idempotent on its own output"
    );
    assert_eq!(twice.injected, once.injected);

    let json = inject_yaml(&inputs, options, ManifestFormat::Json).expect("the same input as JSON");
    let _: Value = serde_json::from_str(&json.text).expect("inject's JSON output is JSON");
}
