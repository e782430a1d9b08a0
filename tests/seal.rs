//! `secret-zero seal` as a process, against a real OpenBao and the Kubernetes API
//! double: round trips through `serve` and `get` for both bindings (via kubectl and via
//! `--apply`), the old tool's layout, every input shape, concurrent writers,
//! verification and its put-back, Vault refusing or absent, and no plaintext in any
//! output.

#[path = "seal/bed.rs"]
mod bed;

use std::time::Duration;

use bed::{Bed, DERIVED, PLAIN, b64, ciphertext_of, json_of, without_version};
use secret_zero_testbed::assert_eventually;
use secret_zero_testbed::cmd::Run;
use secret_zero_testbed::faults::{FaultServer, closed_addr};
use secret_zero_testbed::text::{doc_with, logged_accessor, sentinel};
use secret_zero_testbed::wait::WAIT;
use serde_json::{Value, json};

/// `--transit-key KEY --namespace shop --name NAME --from-file INPUT`, then `extra`.
fn sealing<'a>(key: &'a str, name: &'a str, input: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--transit-key",
        key,
        "--namespace",
        "shop",
        "--name",
        name,
        "--from-file",
        input,
    ];
    args.extend_from_slice(extra);
    args
}

/// Neither the sentinel nor the base64 of the document that carries it.
fn assert_no_plaintext(text: &str, secret: &str, doc: &[u8]) {
    for forbidden in [secret.to_string(), b64(doc), b64(secret.as_bytes())] {
        assert!(
            !text.contains(&forbidden),
            "plaintext leaked ({forbidden}):\n{text}"
        );
    }
}

fn one_error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("secret-zero: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{stderr}");
    lines[0].to_string()
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

#[test]
fn an_identity_bound_manifest_goes_through_kubectl_apply_to_serve_and_get() {
    let bed = Bed::new();
    let secret = sentinel();
    let doc = doc_with(&secret);
    let input = bed.file("doc.json", &doc);
    let run = bed
        .seal(
            &bed.sealer(),
            &sealing(DERIVED, "app-secrets", &input, &[]),
            None,
        )
        .ok();
    // The default is YAML, and identity because the key is derived.
    assert!(
        run.stdout.starts_with("apiVersion: v1\nkind: Secret\n"),
        "{}",
        run.stdout
    );
    assert_no_plaintext(&run.all(), &secret, &doc);
    assert!(
        bed.double.secret("shop", "app-secrets").is_none(),
        "seal without --apply wrote to the cluster"
    );

    // Client-side `kubectl apply` works against the double (strategic merge patch).
    let manifest = bed.file("app-secrets.yaml", run.stdout.as_bytes());
    let applied = bed.kubectl(&["apply", "-f", &manifest]);
    assert_eq!(applied.trim(), "secret/app-secrets created");

    let stored = bed.stored("shop", "app-secrets");
    assert_eq!(stored["type"], "Opaque");
    assert_eq!(
        stored["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "secret-zero"
    );
    let annotations = &stored["metadata"]["annotations"];
    assert_eq!(annotations["secret-zero.dev/binding"], "identity");
    assert_eq!(annotations["secret-zero.dev/transit-key"], DERIVED);
    assert_eq!(annotations["secret-zero.dev/transit-mount"], "transit");
    assert_eq!(annotations["secret-zero.dev/format"], "json");

    let delivered = bed.serve_and_get("shop/app-secrets", &[]);
    assert_eq!(json_of(&delivered), json_of(&doc));

    // Bound: the same ciphertext does not decrypt for another Secret's identity.
    let ct = bed.stored_ciphertext("shop", "app-secrets", "ciphertext");
    assert!(bed.try_decrypt(DERIVED, &ct, Some("shop/other")).is_err());
    assert_eq!(bed.decrypt(DERIVED, &ct, Some("shop/app-secrets")), doc);
}

#[test]
fn an_unbound_json_manifest_goes_through_kubectl_create_to_serve_and_get() {
    let bed = Bed::new();
    let doc = doc_with("unbound-value");
    let input = bed.file("doc.json", &doc);
    let run = bed
        .seal(
            &bed.sealer(),
            &sealing(PLAIN, "plain-secrets", &input, &["-o", "json"]),
            None,
        )
        .ok();
    let manifest: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        manifest["metadata"]["annotations"]["secret-zero.dev/binding"],
        "none"
    );
    // Nothing but the Secret format of ARCHITECTURE.md: no status, no stringData, no token.
    let keys: Vec<&str> = manifest
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["apiVersion", "data", "kind", "metadata", "type"]);

    let file = bed.file("plain.json", run.stdout.as_bytes());
    assert_eq!(
        bed.kubectl(&["create", "-f", &file]).trim(),
        "secret/plain-secrets created"
    );
    let delivered = bed.serve_and_get("shop/plain-secrets", &[]);
    assert_eq!(json_of(&delivered), json_of(&doc));
    let ct = bed.stored_ciphertext("shop", "plain-secrets", "ciphertext");
    assert_eq!(bed.decrypt(PLAIN, &ct, None), doc);
}

#[test]
fn apply_creates_secrets_that_serve_delivers_for_both_bindings() {
    let bed = Bed::new();
    let sealer = bed.sealer();
    for (key, name, binding) in [(DERIVED, "bound", "identity"), (PLAIN, "unbound", "none")] {
        let doc = doc_with(&format!("value-for-{name}"));
        let input = bed.file(&format!("{name}.json"), &doc);
        let run = bed
            .seal_apply(
                &sealer,
                &sealing(key, name, &input, &["--binding", binding]),
            )
            .ok();
        assert_eq!(run.stdout, format!("secret/{name} created\n"));
        assert!(run.stderr.contains("verified=true"), "{}", run.stderr);
        let stored = bed.stored("shop", name);
        assert_eq!(
            stored["metadata"]["annotations"]["secret-zero.dev/binding"],
            binding
        );
        let delivered = bed.serve_and_get(&format!("shop/{name}"), &[]);
        assert_eq!(json_of(&delivered), json_of(&doc));
    }
}

#[test]
fn the_old_layout_is_served_with_flags_alone_and_decrypts_directly() {
    let bed = Bed::new();
    let doc = br#"{"OPENWEATHER_KEY": "ow-123", "TIMEOUT": 30}"#.to_vec();
    let input = bed.file("weather.json", &doc);
    bed.seal_apply(
        &bed.sealer(),
        &sealing(
            PLAIN,
            "weather-api-keys",
            &input,
            &["--data-key", "secrets.json", "--binding", "none"],
        ),
    )
    .ok();
    let stored = bed.stored("shop", "weather-api-keys");
    let data_keys: Vec<&String> = stored["data"].as_object().unwrap().keys().collect();
    assert_eq!(data_keys, ["secrets.json"]);

    // What the old tool's readers did: base64-decode the data, decrypt with no context.
    let ct = ciphertext_of(&stored, "secrets.json");
    assert!(ct.starts_with("vault:v1:"), "{ct}");
    assert_eq!(bed.decrypt(PLAIN, &ct, None), doc);

    // The same Secret stripped to the old tool's shape (no labels, no annotations):
    // serve needs only flags.
    bed.double.put_secret(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "shop", "name": "weather-api-keys"},
        "data": {"secrets.json": stored["data"]["secrets.json"]},
    }));
    let delivered = bed.serve_and_get(
        "shop/weather-api-keys#secrets.json",
        &["--transit-key", PLAIN],
    );
    assert_eq!(json_of(&delivered), json_of(&doc));
}

// ---------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------

#[test]
fn yaml_input_is_sealed_as_json() {
    let bed = Bed::new();
    let secret = sentinel();
    let yaml = format!(
        "# the shop's settings\ndb:\n  password: {secret}\n  port: 5432\nfeatures: [a, b]\nenabled: true\nempty: null\n"
    );
    let input = bed.file("doc.yaml", yaml.as_bytes());
    let run = bed
        .seal(
            &bed.sealer(),
            &sealing(
                DERIVED,
                "from-yaml",
                &input,
                &["--input-format", "yaml", "-o", "json"],
            ),
            None,
        )
        .ok();
    assert!(!run.all().contains(&secret), "{}", run.all());
    let manifest: Value = serde_json::from_str(&run.stdout).unwrap();
    let ct = ciphertext_of(&manifest, "ciphertext");
    let plaintext = bed.decrypt(DERIVED, &ct, Some("shop/from-yaml"));
    assert_eq!(
        json_of(&plaintext),
        json!({"db": {"password": secret, "port": 5432}, "features": ["a", "b"], "enabled": true, "empty": null})
    );
}

#[test]
fn stdin_input_is_read_with_from_file_dash() {
    let bed = Bed::new();
    let doc = doc_with("from-stdin");
    let run = bed
        .seal(
            &bed.sealer(),
            &sealing(PLAIN, "piped", "-", &["-o", "json"]),
            Some(&doc),
        )
        .ok();
    let manifest: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        bed.decrypt(PLAIN, &ciphertext_of(&manifest, "ciphertext"), None),
        doc
    );
}

/// A Vault that counts requests: a refused document must cost no Vault call.
fn counting_vault() -> FaultServer {
    FaultServer::start(500, "application/json", r#"{"errors":["not expected"]}"#)
}

fn seal_against(
    vault: &FaultServer,
    bed: &Bed,
    from_file: &str,
    extra: &[&str],
    stdin: Option<&[u8]>,
) -> Run {
    let token = bed.file("token", b"s.not-used");
    let mut args = vec![
        "seal",
        "--vault-addr",
        vault.addr(),
        "--vault-token-file",
        &token,
    ];
    args.extend(sealing(DERIVED, "app-secrets", from_file, extra));
    bed.run_seal(&args, &[], stdin)
}

#[test]
fn empty_input_is_refused_before_any_vault_call() {
    let bed = Bed::new();
    let vault = counting_vault();
    let empty = bed.file("empty.json", b"");
    let blank = bed.file("blank.yaml", b" \n\n\t\n");
    for (from, extra, stdin) in [
        (empty.as_str(), &[][..], None),
        (blank.as_str(), &["--input-format", "yaml"][..], None),
        ("-", &[][..], Some(&b""[..])),
    ] {
        let run = seal_against(&vault, &bed, from, extra, stdin);
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        let line = one_error_line(&run.stderr);
        assert!(line.contains("is empty"), "{line}");
    }
    assert_eq!(vault.hits(), 0, "a refused document reached Vault");
}

#[test]
fn invalid_json_is_refused_with_line_and_column_and_no_content() {
    let bed = Bed::new();
    let vault = counting_vault();
    let secret = sentinel();
    let text = format!("{{\n  \"db_password\": \"{secret}\",\n  \"port\": 54{secret}\n}}\n");
    let input = bed.file("bad.json", text.as_bytes());
    let run = seal_against(&vault, &bed, &input, &[], None);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let line = one_error_line(&run.stderr);
    assert!(
        line.contains("not valid JSON") && line.contains("line 3, column 13"),
        "{line}"
    );
    assert!(!run.all().contains(&secret), "{}", run.all());
    assert!(!run.all().contains("sz-sentinel"), "{}", run.all());

    // Duplicate keys: parsers disagree on which wins, so seal refuses them.
    let dup = format!("{{\"db_password\": \"{secret}\",\n \"db_password\": \"other\"}}");
    let input = bed.file("dup.json", dup.as_bytes());
    let run = seal_against(&vault, &bed, &input, &[], None);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let line = one_error_line(&run.stderr);
    assert!(
        line.contains("duplicate key in an object (line 2"),
        "{line}"
    );
    assert!(
        !run.all().contains(&secret) && !line.contains("db_password"),
        "{line}"
    );

    // The same through stdin and as YAML.
    let run = seal_against(&vault, &bed, "-", &[], Some(text.as_bytes()));
    assert!(
        one_error_line(&run.stderr).contains("line 3, column 13"),
        "{}",
        run.stderr
    );
    let yaml = format!("password: {secret}\nlist: [a, b\n");
    let input = bed.file("bad.yaml", yaml.as_bytes());
    let run = seal_against(&vault, &bed, &input, &["--input-format", "yaml"], None);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let line = one_error_line(&run.stderr);
    assert!(line.contains("line "), "{line}");
    assert!(!run.all().contains(&secret), "{}", run.all());
    assert_eq!(vault.hits(), 0);
}

#[test]
fn a_json_array_or_a_yaml_list_is_not_an_object() {
    let bed = Bed::new();
    let vault = counting_vault();
    let secret = sentinel();
    let input = bed.file("array.json", format!("\n  [\"{secret}\", 1]\n").as_bytes());
    let run = seal_against(&vault, &bed, &input, &[], None);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let line = one_error_line(&run.stderr);
    assert!(
        line.contains("JSON an array, not an object (line 2, column 3)"),
        "{line}"
    );
    assert!(!run.all().contains(&secret));

    let input = bed.file("list.yaml", format!("# list\n- {secret}\n").as_bytes());
    let run = seal_against(&vault, &bed, &input, &["--input-format", "yaml"], None);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let line = one_error_line(&run.stderr);
    assert!(
        line.contains("not a YAML mapping (line 2, column 1)"),
        "{line}"
    );
    assert!(!run.all().contains(&secret));

    // A JSON object given as YAML is fine (JSON is YAML); YAML given as JSON is not.
    let input = bed.file("yaml-as-json", b"a: 1\n");
    let run = seal_against(&vault, &bed, &input, &[], None);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("--input-format yaml"), "{}", run.stderr);
    assert_eq!(vault.hits(), 0);
}

/// A JSON object of exactly `size` bytes, with a sentinel in it.
fn big_doc(size: usize, secret: &str) -> Vec<u8> {
    let mut doc = format!("{{\"sentinel\":\"{secret}\"");
    let filler = "x".repeat(1000);
    let mut i = 0;
    while doc.len() + 1100 < size {
        doc.push_str(&format!(",\"key-{i:05}\":\"{filler}\""));
        i += 1;
    }
    // ,"pad":"…"} is 10 bytes around the padding.
    let pad = size - doc.len() - 10;
    doc.push_str(&format!(",\"pad\":\"{}\"}}", "y".repeat(pad)));
    assert_eq!(doc.len(), size);
    json_of(doc.as_bytes());
    doc.into_bytes()
}

#[test]
fn a_large_document_round_trips_and_a_1_mib_document_is_refused() {
    let bed = Bed::new();
    let sealer = bed.sealer();
    let secret = sentinel();

    // About the largest that fits a Secret's 1 MiB once encrypted (4/3 + nonce and tag).
    let doc = big_doc(760 * 1024, &secret);
    let input = bed.file("large.json", &doc);
    let run = bed
        .seal_apply(&sealer, &sealing(DERIVED, "large", &input, &[]))
        .ok();
    assert_no_plaintext(&run.all(), &secret, &doc);
    let delivered = bed.serve_and_get("shop/large", &[]);
    assert_eq!(json_of(&delivered), json_of(&doc));

    // 1 MiB cannot fit: refused before anything is encrypted or written, printed or applied.
    let doc = big_doc(1024 * 1024, &secret);
    let input = bed.file("huge.json", &doc);
    let writes = bed.secret_writes().len();
    for apply in [false, true] {
        let args = sealing(DERIVED, "huge", &input, &[]);
        let run = if apply {
            bed.seal_apply(&sealer, &args)
        } else {
            // Also through stdin, the pipeline's way.
            bed.seal(&sealer, &sealing(DERIVED, "huge", "-", &[]), Some(&doc))
        };
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(run.stdout.is_empty());
        let line = one_error_line(&run.stderr);
        assert!(
            line.contains("too large") && line.contains("1 MiB"),
            "{line}"
        );
        assert_no_plaintext(&run.all(), &secret, &doc);
    }
    assert!(bed.double.secret("shop", "huge").is_none());
    assert_eq!(bed.secret_writes().len(), writes);
}

// ---------------------------------------------------------------------------
// --apply over existing Secrets
// ---------------------------------------------------------------------------

/// A Secret secret-zero already manages, which others have added to since.
fn existing_secret(bed: &Bed, name: &str) -> Value {
    bed.double.put_secret(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "namespace": "shop", "name": name,
            "labels": {"team": "payments", "app.kubernetes.io/managed-by": "secret-zero"},
            "annotations": {"owner": "alice@example.com", "secret-zero.dev/binding": "none"},
        },
        "data": {"ciphertext": b64(b"vault:v1:old"), "README": b64(b"do not delete")},
    }))
}

#[test]
fn apply_over_an_existing_secret_keeps_foreign_labels_annotations_and_data() {
    let bed = Bed::new();
    let before = existing_secret(&bed, "app-secrets");
    let doc = doc_with("updated");
    let input = bed.file("doc.json", &doc);
    let run = bed
        .seal_apply(&bed.sealer(), &sealing(DERIVED, "app-secrets", &input, &[]))
        .ok();
    assert_eq!(run.stdout, "secret/app-secrets updated\n");

    let after = bed.stored("shop", "app-secrets");
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(after["metadata"]["labels"]["team"], "payments");
    assert_eq!(
        after["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "secret-zero"
    );
    assert_eq!(
        after["metadata"]["annotations"]["owner"],
        "alice@example.com"
    );
    assert_eq!(
        after["metadata"]["annotations"]["secret-zero.dev/binding"],
        "identity"
    );
    assert_eq!(after["data"]["README"], b64(b"do not delete"));
    // Updated with the resourceVersion read: an update (PUT), never a blind create.
    let writes = bed.secret_writes();
    assert_eq!(
        writes,
        ["PUT /api/v1/namespaces/shop/secrets/app-secrets"],
        "{writes:?}"
    );

    let delivered = bed.serve_and_get("shop/app-secrets", &[]);
    assert_eq!(json_of(&delivered), json_of(&doc));
}

/// A plain Secret someone else owns: plaintext keys, an old-tool ciphertext, and
/// `managed_by` as its label (`None`: no such label).
fn foreign_secret(bed: &Bed, name: &str, managed_by: Option<&str>) -> Value {
    let mut labels = json!({"team": "payments"});
    if let Some(manager) = managed_by {
        labels["app.kubernetes.io/managed-by"] = json!(manager);
    }
    bed.double.put_secret(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"namespace": "shop", "name": name, "labels": labels},
        "data": {
            "password": b64(b"hunter2-in-clear"),
            "username": b64(b"shop"),
            "secrets.json": b64(b"vault:v1:old-tool-ciphertext"),
        },
    }))
}

#[test]
fn apply_over_a_secret_secret_zero_does_not_manage_is_refused_without_adopt() {
    let bed = Bed::new();
    let doc = doc_with("not-yours");
    let input = bed.file("doc.json", &doc);
    for (name, manager) in [("unlabelled", None), ("helm-owned", Some("Helm"))] {
        let before = foreign_secret(&bed, name, manager);
        let run = bed.seal_apply(&bed.sealer(), &sealing(DERIVED, name, &input, &[]));
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert_eq!(
            one_error_line(&run.stderr),
            format!(
                "secret-zero: error: Secret shop/{name} exists and is not managed by secret-zero (no label app.kubernetes.io/managed-by=secret-zero); nothing was written (hint: seal into another --name, or pass --adopt to take it over (its data keys that are not Transit ciphertexts are removed))"
            )
        );
        assert_eq!(bed.stored("shop", name), before);
        // Refused before any Vault work: no key read, no encryption.
        for vault_work in ["Transit key read", "document encrypted"] {
            assert!(!run.stderr.contains(vault_work), "{}", run.stderr);
        }
    }
    assert!(bed.secret_writes().is_empty(), "{:?}", bed.secret_writes());
    // --adopt goes with --apply only.
    let run = bed.seal(
        &bed.sealer(),
        &sealing(DERIVED, "x", &input, &["--adopt"]),
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn adopt_takes_a_secret_over_and_leaves_no_plaintext_beside_the_ciphertext() {
    let bed = Bed::new();
    foreign_secret(&bed, "app-secrets", None);
    let doc = doc_with("adopted");
    let input = bed.file("doc.json", &doc);
    let run = bed
        .seal_apply(
            &bed.sealer(),
            &sealing(DERIVED, "app-secrets", &input, &["--adopt"]),
        )
        .ok();
    assert_eq!(
        run.stdout,
        "secret/app-secrets adopted (removed data keys that were not sealed: password, username)\n"
    );
    assert!(
        run.stderr.contains("removed=password,username"),
        "{}",
        run.stderr
    );
    assert!(!run.all().contains("hunter2"), "{}", run.all());

    let after = bed.stored("shop", "app-secrets");
    let keys: Vec<&String> = after["data"].as_object().unwrap().keys().collect();
    // The old tool's ciphertext holds no plaintext: it stays for agents still reading it.
    assert_eq!(keys, ["ciphertext", "secrets.json"], "{after}");
    assert_eq!(after["metadata"]["labels"]["team"], "payments");
    assert_eq!(
        after["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "secret-zero"
    );
    let delivered = bed.serve_and_get("shop/app-secrets", &[]);
    assert_eq!(json_of(&delivered), json_of(&doc));

    // Now it is ours: sealing again needs no --adopt and is a plain update.
    let run = bed
        .seal_apply(&bed.sealer(), &sealing(DERIVED, "app-secrets", &input, &[]))
        .ok();
    assert_eq!(run.stdout, "secret/app-secrets updated\n");
}

#[test]
fn a_concurrent_update_between_read_and_write_is_retried_and_kept() {
    let bed = Bed::new();
    existing_secret(&bed, "app-secrets");
    let doc = doc_with("raced");
    let input = bed.file("doc.json", &doc);
    let token = bed.sealer();
    let child = bed
        .seal_apply_cmd(&token, &sealing(DERIVED, "app-secrets", &input, &[]))
        .spawn();

    // Another writer: as soon as seal has read the Secret (and is busy with Vault),
    // it adds a label, as a controller or a colleague might.
    // Looked for often: the window between that read and seal's write is short.
    const GET: &str = "GET /api/v1/namespaces/shop/secrets/app-secrets";
    assert_eventually!(
        WAIT.every(Duration::from_micros(200));
        bed.double.requests().iter().any(|r| r == GET),
        "seal never read the Secret"
    );
    let mut bumped = bed.stored("shop", "app-secrets");
    bumped["metadata"]["labels"]["bumped-by"] = json!("other-writer");
    bumped["metadata"]["annotations"]["other-note"] = json!("kept");
    bed.double.put_secret(bumped);

    let run = child.finish().ok();
    assert!(
        run.stderr
            .contains("the Secret changed while sealing; re-reading it and trying again"),
        "{}",
        run.stderr
    );
    let puts = bed
        .secret_writes()
        .iter()
        .filter(|w| w.starts_with("PUT "))
        .count();
    assert_eq!(
        puts,
        2,
        "one conflict, one retry: {:?}",
        bed.secret_writes()
    );

    let after = bed.stored("shop", "app-secrets");
    assert_eq!(after["metadata"]["labels"]["bumped-by"], "other-writer");
    assert_eq!(after["metadata"]["annotations"]["other-note"], "kept");
    assert_eq!(
        after["metadata"]["annotations"]["owner"],
        "alice@example.com"
    );
    let ct = ciphertext_of(&after, "ciphertext");
    assert_eq!(bed.decrypt(DERIVED, &ct, Some("shop/app-secrets")), doc);
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

#[test]
fn a_sealer_that_cannot_decrypt_fails_verification_and_changes_nothing() {
    let bed = Bed::new();
    let token = bed.vault_token_file(&["encrypt-only"], 0);
    let before = existing_secret(&bed, "existing");
    let doc = doc_with("unverifiable");
    let input = bed.file("doc.json", &doc);

    for name in ["existing", "absent"] {
        let run = bed.seal_apply(&token, &sealing(DERIVED, name, &input, &[]));
        assert_eq!(run.code, 5, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        let line = one_error_line(&run.stderr);
        assert!(
            line.contains("permission denied on transit/decrypt/shop-app")
                && line.contains("verification")
                && line.contains("nothing was written")
                && line.contains("--no-verify"),
            "{line}"
        );
    }
    // Exactly as before, resourceVersion included: nothing was written at all.
    assert_eq!(bed.stored("shop", "existing"), before);
    assert!(bed.double.secret("shop", "absent").is_none());
    assert!(bed.secret_writes().is_empty(), "{:?}", bed.secret_writes());

    // The same without a manifest: nothing printed.
    let run = bed.seal(&token, &sealing(DERIVED, "x", &input, &[]), None);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);

    // The documented way for such a sealer: --no-verify.
    let run = bed
        .seal_apply(
            &token,
            &sealing(DERIVED, "absent", &input, &["--no-verify"]),
        )
        .ok();
    assert!(run.stderr.contains("verified=false"), "{}", run.stderr);
    let ct = bed.stored_ciphertext("shop", "absent", "ciphertext");
    assert_eq!(bed.decrypt(DERIVED, &ct, Some("shop/absent")), doc);
}

#[test]
fn a_failed_read_back_verification_puts_the_cluster_back_as_it_was() {
    let bed = Bed::new();
    let doc = doc_with("put-back");
    let input = bed.file("doc.json", &doc);
    let before = existing_secret(&bed, "existing");

    // A token good for three uses: read the key, encrypt, verify before writing. The
    // fourth, decrypting the Secret read back from the cluster, is refused.
    for name in ["existing", "absent"] {
        let token = bed.vault_token_file(&["sealer"], 3);
        let run = bed.seal_apply(&token, &sealing(DERIVED, name, &input, &[]));
        assert_eq!(run.code, 5, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        let line = one_error_line(&run.stderr);
        assert!(line.contains("transit/decrypt/shop-app"), "{line}");
        let outcome = if name == "existing" {
            "it was put back as it was"
        } else {
            "it was deleted again, as it did not exist before"
        };
        assert!(
            line.contains(&format!(
                "verifying Secret shop/{name} as written failed, and {outcome}"
            )),
            "{line}"
        );
    }
    assert_eq!(
        without_version(bed.stored("shop", "existing")),
        without_version(before)
    );
    assert!(bed.double.secret("shop", "absent").is_none());
    assert_eq!(
        bed.secret_writes(),
        [
            "PUT /api/v1/namespaces/shop/secrets/existing",
            "PUT /api/v1/namespaces/shop/secrets/existing",
            "POST /api/v1/namespaces/shop/secrets",
            "DELETE /api/v1/namespaces/shop/secrets/absent",
        ]
    );
}

// ---------------------------------------------------------------------------
// Vault refusing or absent
// ---------------------------------------------------------------------------

#[test]
fn permission_denied_on_encrypt_is_clear_and_writes_nothing() {
    let bed = Bed::new();
    let token = bed.vault_token_file(&["no-encrypt"], 0);
    let doc = doc_with("denied");
    let input = bed.file("doc.json", &doc);
    for apply in [false, true] {
        let args = sealing(DERIVED, "app-secrets", &input, &[]);
        let run = if apply {
            bed.seal_apply(&token, &args)
        } else {
            bed.seal(&token, &args, None)
        };
        assert_eq!(run.code, 5, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        let line = one_error_line(&run.stderr);
        assert!(
            line.contains("permission denied on transit/encrypt/shop-app")
                && line.contains("hint: check that the token's policy grants this operation on transit/encrypt/shop-app"),
            "{line}"
        );
    }
    assert!(bed.double.secret("shop", "app-secrets").is_none());
    assert!(bed.secret_writes().is_empty());
}

#[test]
fn a_key_that_does_not_exist_is_clear_and_is_not_created() {
    let bed = Bed::new();
    // Root could upsert a key through encrypt: seal must not.
    let root = bed.file("root-token", bed.bao.root_token().as_bytes());
    let input = bed.file("doc.json", doc_with("no-key"));
    for apply in [false, true] {
        let args = sealing("no-such-key", "app-secrets", &input, &[]);
        let run = if apply {
            bed.seal_apply(&root, &args)
        } else {
            bed.seal(&root, &args, None)
        };
        assert_eq!(run.code, 5, "{}", run.stderr);
        assert!(run.stdout.is_empty());
        let line = one_error_line(&run.stderr);
        assert!(
            line.contains("Transit key \"no-such-key\" does not exist on mount \"transit\"")
                && line.contains("vault write -f transit/keys/no-such-key derived=true"),
            "{line}"
        );
        assert!(!line.contains(bed.bao.root_token()), "{line}");
    }
    assert!(
        bed.bao
            .api("GET", "transit/keys/no-such-key", None)
            .is_err(),
        "seal created the key"
    );
    assert!(bed.secret_writes().is_empty());
}

#[test]
fn vault_unreachable_is_clear_and_writes_nothing() {
    let bed = Bed::new();
    let token = bed.sealer();
    let input = bed.file("doc.json", doc_with("offline"));
    let kubeconfig = bed.admin_kubeconfig.display().to_string();
    let addr = closed_addr();
    let started = std::time::Instant::now();
    let mut args = vec![
        "seal",
        "--vault-addr",
        &addr,
        "--vault-token-file",
        &token,
        "--retry-timeout",
        "1s",
        "--apply",
        "--kubeconfig",
        &kubeconfig,
    ];
    args.extend(sealing(DERIVED, "app-secrets", &input, &[]));
    let run = bed.run_seal(&args, &[], None);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "retries are bounded"
    );
    let line = one_error_line(&run.stderr);
    assert!(
        line.contains(&format!("cannot connect to {addr}"))
            && line.contains("hint: check VAULT_ADDR"),
        "{line}"
    );
    assert!(
        run.stderr.contains("transient failure, retrying"),
        "{}",
        run.stderr
    );
    assert!(bed.double.secret("shop", "app-secrets").is_none());
    assert!(bed.secret_writes().is_empty());
}

#[test]
fn a_binding_the_key_cannot_give_is_refused_with_how_to_fix_it() {
    let bed = Bed::new();
    let token = bed.sealer();
    let input = bed.file("doc.json", doc_with("binding"));
    let run = bed.seal(
        &token,
        &sealing(PLAIN, "x", &input, &["--binding", "identity"]),
        None,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let line = one_error_line(&run.stderr);
    assert!(
        line.contains("transit/keys/plain-key is not derived")
            && line.contains("vault write -f transit/keys/NEW_KEY derived=true"),
        "{line}"
    );
    let run = bed.seal(
        &token,
        &sealing(DERIVED, "x", &input, &["--binding", "none"]),
        None,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        one_error_line(&run.stderr).contains("derived key"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------
// Pipelines and secrecy
// ---------------------------------------------------------------------------

#[test]
fn a_pipeline_logs_in_with_its_service_account_configured_by_environment() {
    let bed = Bed::new();
    let doc = doc_with("from-a-pipeline");
    let input = bed.file("doc.json", &doc);
    let token = bed.sa_token_file("shop", "sealer");
    // The sealer's own API identity, allowed get/create/update/delete on Secrets in shop.
    let kubeconfig = bed.sa_kubeconfig("sealer");
    let run = bed
        .run_seal(
            &["seal"],
            &[
                ("VAULT_ADDR", bed.bao.addr()),
                ("SECRET_ZERO_ROLE", "sealer"),
                ("SECRET_ZERO_TOKEN_FILE", &token),
                ("SECRET_ZERO_KUBECONFIG", &kubeconfig),
                ("SECRET_ZERO_APPLY", "true"),
                ("SECRET_ZERO_TRANSIT_KEY", DERIVED),
                ("SECRET_ZERO_NAMESPACE", "shop"),
                ("SECRET_ZERO_NAME", "app-secrets"),
                ("SECRET_ZERO_FROM_FILE", &input),
            ],
            None,
        )
        .ok();
    assert_eq!(run.stdout, "secret/app-secrets created\n");
    let accessor = logged_accessor(&run.stderr);
    assert!(run.stderr.contains("Vault token revoked"), "{}", run.stderr);
    assert!(
        bed.bao
            .api(
                "POST",
                "auth/token/lookup-accessor",
                Some(json!({"accessor": accessor}))
            )
            .is_err(),
        "the pipeline's login token outlived the run"
    );
    let jwt = std::fs::read_to_string(&token).unwrap();
    assert!(!run.all().contains(jwt.trim()));
    let delivered = bed.serve_and_get("shop/app-secrets", &[]);
    assert_eq!(json_of(&delivered), json_of(&doc));
}

#[test]
fn no_plaintext_or_token_in_any_output_or_log() {
    let bed = Bed::new();
    let secret = sentinel();
    let doc = doc_with(&secret);
    let input = bed.file("doc.json", &doc);
    let yaml = bed.file("doc.yaml", format!("db_password: {secret}\n").as_bytes());
    let token_file = bed.sealer();
    let token = std::fs::read_to_string(&token_file).unwrap();
    let kubeconfig = bed.admin_kubeconfig.display().to_string();
    let debug = ["--log-level", "debug"];
    let json = ["--log-format", "json"];
    let apply = ["--apply", "--kubeconfig", &kubeconfig];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (&input, debug.to_vec()),
        (&input, [&debug[..], &json, &["-o", "json"]].concat()),
        (&yaml, [&debug[..], &["--input-format", "yaml"]].concat()),
        (&input, [&debug[..], &apply].concat()),
        (&input, [&debug[..], &json, &apply].concat()),
        ("-", debug.to_vec()),
    ];
    for (from_file, extra) in cases {
        let args = sealing(DERIVED, "app-secrets", from_file, &extra);
        let stdin = (from_file == "-").then_some(&doc[..]);
        let run = bed.seal(&token_file, &args, stdin).ok();
        assert_no_plaintext(&run.all(), &secret, &doc);
        assert!(
            !run.all().contains(token.trim()),
            "the Vault token leaked:\n{}",
            run.all()
        );
        assert!(!run.all().contains(bed.bao.root_token()));
        assert!(
            run.stderr.contains("sealed"),
            "no log of what happened:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("key_version") && run.stderr.contains("verified"),
            "{}",
            run.stderr
        );
    }
    // And not in the cluster either, anywhere in the Secret.
    let stored = bed.stored("shop", "app-secrets").to_string();
    assert_no_plaintext(&stored, &secret, &doc);
}
