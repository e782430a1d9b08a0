//! The ciphertext Secret's reader (`secret_format.rs`): a Secret as the API server sends
//! it (JSON), its data key and annotations read into an `Envelope`, then reconciled
//! with flags; and `NAMESPACE/NAME[#KEY]` references.
//!
//! Input: one control byte, then a Secret in JSON (or, in reference mode, the text of a
//! reference). A marker is appended to every data value: it stands for the ciphertext,
//! which no error may show.
//!
//! Properties:
//! - an accepted Envelope holds the data value trimmed, a `vault:vN:` ciphertext without
//!   whitespace, under the data key asked for, else `ciphertext`, else `secrets.json`;
//! - a refusal never shows a data value;
//! - `resolve` takes a flag or an annotation, refuses the two when they differ, and
//!   binds to `namespace/name` exactly when the binding is identity;
//! - a reference that parses prints back as the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secret_zero::fuzzing::secret::{Binding, Secret, SecretRef, TransitFlags, read, resolve};
use secret_zero::fuzzing::vault::ciphertext_version;

const MARKER: &str = "Zq7MarkerVv3Kp9";
const ANN_MOUNT: &str = "secret-zero.dev/transit-mount";
const ANN_KEY: &str = "secret-zero.dev/transit-key";
const ANN_BINDING: &str = "secret-zero.dev/binding";

fuzz_target!(|data: &[u8]| {
    let [control, rest @ ..] = data else {
        return;
    };
    if control & 0x80 != 0 {
        reference(rest);
        return;
    }
    let Ok(mut secret) = serde_json::from_slice::<Secret>(rest) else {
        return;
    };
    for value in secret.data.iter_mut().flat_map(|d| d.values_mut()) {
        value.0.extend_from_slice(MARKER.as_bytes());
    }
    let asked = (control & 1 != 0).then_some("ciphertext");
    match read(&secret, asked) {
        Ok(envelope) => {
            let data = secret.data.as_ref().expect("read found a data key");
            let key = envelope
                .secret
                .data_key
                .clone()
                .expect("the key read is named");
            let expected_key = match asked {
                Some(k) => k,
                None if data.contains_key("ciphertext") => "ciphertext",
                None if data.contains_key("secrets.json") => "secrets.json",
                None => "ciphertext",
            };
            assert_eq!(key, expected_key);
            let text = std::str::from_utf8(&data[&key].0).expect("an accepted value is text");
            assert_eq!(envelope.ciphertext, text.trim());
            assert!(ciphertext_version(&envelope.ciphertext).is_some());
            assert!(!envelope.ciphertext.contains(char::is_whitespace));
            reconcile(&secret, &envelope, *control);
        }
        Err(e) => {
            // The message names the Secret as the API server gave it (a newline in a
            // name is folded away when the error is printed, by `Hinted::one_line`).
            let line = format!("{e} {}", e.hint);
            assert!(!line.contains(MARKER), "a data value in an error: {line}");
        }
    }
});

fn reconcile(secret: &Secret, envelope: &secret_zero::fuzzing::secret::Envelope, control: u8) {
    let flags = TransitFlags {
        mount: (control & 2 != 0).then(|| "transit".to_string()),
        key: (control & 4 != 0).then(|| "app".to_string()),
        binding: match control & 0x18 {
            0x08 => Some(Binding::Identity),
            0x10 => Some(Binding::None),
            _ => None,
        },
        // The format check (`serve --format` against the annotation) is not what this
        // target reconciles.
        format: None,
    };
    let annotation = |name: &str| {
        secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(name))
            .cloned()
    };
    let differ = |flag: Option<&str>, ann: Option<String>| match (flag, ann) {
        (Some(f), Some(a)) => f != a,
        _ => false,
    };
    let binding_text = flags.binding.map(Binding::as_str);
    let contradicts = differ(flags.mount.as_deref(), annotation(ANN_MOUNT))
        || differ(flags.key.as_deref(), annotation(ANN_KEY))
        || differ(binding_text, annotation(ANN_BINDING));
    let no_key = flags.key.is_none() && annotation(ANN_KEY).is_none();
    match resolve(envelope, &flags) {
        Ok(transit) => {
            assert!(
                !contradicts && !no_key,
                "a contradiction or no key was accepted"
            );
            let mount = flags
                .mount
                .clone()
                .or(annotation(ANN_MOUNT))
                .unwrap_or_else(|| "transit".into());
            assert_eq!(transit.mount, mount);
            assert_eq!(Some(transit.key), flags.key.clone().or(annotation(ANN_KEY)));
            let identity = binding_text
                .map(str::to_string)
                .or(annotation(ANN_BINDING))
                .as_deref()
                == Some("identity");
            let context = format!("{}/{}", envelope.secret.namespace, envelope.secret.name);
            assert_eq!(transit.context, identity.then_some(context));
        }
        Err(e) => {
            assert!(contradicts || no_key, "refused for nothing: {e}");
        }
    }
}

fn reference(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Ok(parsed) = SecretRef::parse(text) {
        assert_eq!(
            parsed.to_string(),
            text,
            "a reference prints back as written"
        );
        assert_eq!(SecretRef::parse(&parsed.to_string()).ok(), Some(parsed));
        assert!(!text.contains(char::is_whitespace));
    }
}
