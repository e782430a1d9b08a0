//! The Secret that holds a ciphertext (ARCHITECTURE.md, "The data path"): reading its ciphertext and
//! annotations, and reconciling them with flags.
//!
//! A Secret describes itself: its annotations name the Transit mount, key and binding,
//! so `serve` and `rotate` need few flags. A flag may fill in what an annotation leaves
//! out; a flag that contradicts an annotation is an error, never a silent choice.
//! Secrets of the old Python tool (`data["secrets.json"]`, no annotations) work with
//! flags alone.

use std::fmt;

use secret_zero_client::DocFormat;

use crate::failure::InputError;
use crate::kube::Secret;

/// `app.kubernetes.io/managed-by: secret-zero` marks the Secrets we own.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "secret-zero";
pub const ANN_TRANSIT_MOUNT: &str = "secret-zero.dev/transit-mount";
pub const ANN_TRANSIT_KEY: &str = "secret-zero.dev/transit-key";
pub const ANN_BINDING: &str = "secret-zero.dev/binding";
pub const ANN_FORMAT: &str = "secret-zero.dev/format";
/// Where secret-zero keeps the ciphertext.
pub const DATA_KEY: &str = "ciphertext";
/// Where the old Python tool kept it.
pub const LEGACY_DATA_KEY: &str = "secrets.json";

/// Whether a ciphertext is bound to its Secret's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Binding {
    /// Transit context = base64("namespace/name"), with a derived key.
    Identity,
    /// No context: what the old tool produced.
    None,
}

impl Binding {
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Identity => "identity",
            Binding::None => "none",
        }
    }

    fn parse(text: &str) -> Option<Binding> {
        match text {
            "identity" => Some(Binding::Identity),
            "none" => Some(Binding::None),
            _ => None,
        }
    }
}

/// `NAMESPACE/NAME[#DATAKEY]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub namespace: String,
    pub name: String,
    pub data_key: Option<String>,
}

impl SecretRef {
    /// Parse `NAMESPACE/NAME[#DATAKEY]`.
    pub fn parse(text: &str) -> Result<SecretRef, InputError> {
        let (object, data_key) = match text.split_once('#') {
            Some((object, key)) => (object, Some(key)),
            None => (text, None),
        };
        let bad = || {
            InputError::new(
                format!("invalid Secret reference {text:?}"),
                "write it as NAMESPACE/NAME or NAMESPACE/NAME#DATAKEY",
            )
        };
        let (namespace, name) = object.split_once('/').ok_or_else(bad)?;
        if !is_dns_label(namespace) || !is_dns_subdomain(name) {
            return Err(bad());
        }
        if let Some(key) = data_key
            && (key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(bad());
        }
        Ok(SecretRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
            data_key: data_key.map(str::to_string),
        })
    }

    /// The binding context this Secret gives a ciphertext: `namespace/name`.
    pub fn context(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if let Some(key) = &self.data_key {
            write!(f, "#{key}")?;
        }
        Ok(())
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// What a Secret says about its ciphertext.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub secret: SecretRef,
    pub ciphertext: String,
    pub transit_mount: Option<String>,
    pub transit_key: Option<String>,
    pub binding: Option<Binding>,
    /// What the plaintext is (`secret-zero.dev/format`: json or raw).
    pub format: Option<DocFormat>,
}

/// Read the ciphertext and annotations of `secret`. The data key is the one asked
/// for, else `ciphertext`, else the old tool's `secrets.json`.
pub fn read(secret: &Secret, data_key: Option<&str>) -> Result<Envelope, InputError> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let name = secret.metadata.name.clone().unwrap_or_default();
    let object = format!("{namespace}/{name}");
    let data = secret.data.as_ref();
    let has = |key: &str| data.is_some_and(|d| d.contains_key(key));
    let key = match data_key {
        Some(key) => key.to_string(),
        None if has(DATA_KEY) => DATA_KEY.to_string(),
        None if has(LEGACY_DATA_KEY) => LEGACY_DATA_KEY.to_string(),
        None => DATA_KEY.to_string(),
    };
    let bytes = data.and_then(|d| d.get(&key)).ok_or_else(|| {
        InputError::new(
            format!("Secret {object} has no data key {key:?}"),
            "name the data key with --secret NAMESPACE/NAME#KEY, or seal the document again",
        )
    })?;
    let ciphertext = parse_ciphertext(&bytes.0).map_err(|why| {
        InputError::new(
            format!("Secret {object} data key {key:?} {why}"),
            "seal the document again with `secret-zero seal`",
        )
    })?;

    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    let binding = match annotations.get(ANN_BINDING) {
        Some(text) => Some(Binding::parse(text).ok_or_else(|| {
            InputError::new(
                format!("Secret {object} has {ANN_BINDING}={text:?}"),
                "the binding annotation must be \"identity\" or \"none\"",
            )
        })?),
        None => None,
    };
    let format = match annotations.get(ANN_FORMAT) {
        Some(text) => Some(parse_format(text).ok_or_else(|| {
            InputError::new(
                format!("Secret {object} has {ANN_FORMAT}={text:?}"),
                "the format annotation must be \"json\" or \"raw\"",
            )
        })?),
        None => None,
    };
    Ok(Envelope {
        secret: SecretRef {
            namespace,
            name,
            data_key: Some(key),
        },
        ciphertext,
        transit_mount: annotations.get(ANN_TRANSIT_MOUNT).cloned(),
        transit_key: annotations.get(ANN_TRANSIT_KEY).cloned(),
        binding,
        format,
    })
}

fn parse_format(text: &str) -> Option<DocFormat> {
    match text {
        "json" => Some(DocFormat::Json),
        "raw" => Some(DocFormat::Raw),
        _ => None,
    }
}

/// A new Secret holding `ciphertext`, labelled and annotated as `seal` writes it.
/// Nothing else goes in: no plaintext, no token.
pub fn build_secret(
    secret: &SecretRef,
    transit: &Transit,
    ciphertext: &str,
    format: &str,
) -> Secret {
    let mut object = Secret {
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    object.metadata.namespace = Some(secret.namespace.clone());
    object.metadata.name = Some(secret.name.clone());
    object.metadata.labels =
        Some([(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string())].into());
    let binding = if transit.context.is_some() {
        Binding::Identity
    } else {
        Binding::None
    };
    object.metadata.annotations = Some(
        [
            (ANN_TRANSIT_MOUNT, transit.mount.as_str()),
            (ANN_TRANSIT_KEY, transit.key.as_str()),
            (ANN_BINDING, binding.as_str()),
            (ANN_FORMAT, format),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    );
    set_ciphertext(
        &mut object,
        secret.data_key.as_deref().unwrap_or(DATA_KEY),
        ciphertext,
    );
    object
}

/// Put `ciphertext` under `data_key`, leaving every other field as it is.
pub fn set_ciphertext(secret: &mut Secret, data_key: &str, ciphertext: &str) {
    secret.data.get_or_insert_with(Default::default).insert(
        data_key.to_string(),
        k8s_openapi::ByteString(ciphertext.as_bytes().to_vec()),
    );
}

/// Check that `bytes` hold one `vault:vN:...` ciphertext and return it trimmed.
pub fn parse_ciphertext(bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "is not text".to_string())?;
    let text = text.trim();
    if text.is_empty() {
        return Err("is empty".into());
    }
    if crate::vault::ciphertext_version(text).is_none() || text.contains(char::is_whitespace) {
        return Err("is not a Vault Transit ciphertext (vault:vN:...)".into());
    }
    Ok(text.to_string())
}

/// Transit settings from flags.
#[derive(Debug, Clone, Default)]
pub struct TransitFlags {
    pub mount: Option<String>,
    pub key: Option<String>,
    pub binding: Option<Binding>,
    /// `serve --format`, checked against the format annotation; `None` where the
    /// command serves no document.
    pub format: Option<FormatFlag>,
}

/// What `serve` will serve, and whether `--format` said so or it is the default. The
/// agent's format is fixed before the Secret is read (the socket is bound first), so
/// the annotation can only be checked against it, not fill it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatFlag {
    pub format: DocFormat,
    pub explicit: bool,
}

/// The settings a decrypt or rewrap uses, after reconciling flags and annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transit {
    pub mount: String,
    pub key: String,
    /// The binding text (`namespace/name`) when bound.
    pub context: Option<String>,
}

/// Reconcile a Secret's annotations with flags. `object` names the Secret in errors.
pub fn resolve(sealed: &Envelope, flags: &TransitFlags) -> Result<Transit, InputError> {
    let object = format!("{}/{}", sealed.secret.namespace, sealed.secret.name);
    let mount = pick(
        &object,
        "--transit-mount",
        ANN_TRANSIT_MOUNT,
        flags.mount.as_deref(),
        sealed.transit_mount.as_deref(),
    )?
    .unwrap_or_else(|| crate::env::DEFAULT_TRANSIT_MOUNT.to_string());
    let key = pick(
        &object,
        "--transit-key",
        ANN_TRANSIT_KEY,
        flags.key.as_deref(),
        sealed.transit_key.as_deref(),
    )?
    .ok_or_else(|| {
        InputError::new(
            format!("no Transit key for Secret {object}"),
            format!("pass --transit-key, or annotate the Secret with {ANN_TRANSIT_KEY}"),
        )
    })?;
    let binding = pick(
        &object,
        "--binding",
        ANN_BINDING,
        flags.binding.map(Binding::as_str),
        sealed.binding.map(Binding::as_str),
    )?
    .and_then(|b| Binding::parse(&b))
    .unwrap_or(Binding::None);
    let context = match binding {
        Binding::Identity => Some(sealed.secret.context()),
        Binding::None => None,
    };
    if let (Some(flag), Some(annotated)) = (flags.format, sealed.format) {
        check_format(&object, flag, annotated)?;
    }
    Ok(Transit {
        mount,
        key,
        context,
    })
}

/// The format the agent serves must be the one the Secret was sealed as.
fn check_format(object: &str, flag: FormatFlag, annotated: DocFormat) -> Result<(), InputError> {
    if flag.format == annotated {
        return Ok(());
    }
    let (serves, annotated) = (flag.format.as_str(), annotated.as_str());
    Err(if flag.explicit {
        InputError::new(
            format!(
                "--format {serves:?} contradicts Secret {object}'s annotation {ANN_FORMAT}={annotated:?}"
            ),
            "drop --format or fix the annotation",
        )
    } else {
        InputError::new(
            format!(
                "Secret {object} has {ANN_FORMAT}={annotated:?} but the agent serves {serves} (the default of --format)"
            ),
            format!("pass --format {annotated}"),
        )
    })
}

/// The flag's value, else the annotation's; both set and different is an error.
fn pick(
    object: &str,
    flag: &str,
    annotation: &str,
    from_flag: Option<&str>,
    from_annotation: Option<&str>,
) -> Result<Option<String>, InputError> {
    match (from_flag, from_annotation) {
        (Some(f), Some(a)) if f != a => Err(InputError::new(
            format!("{flag} {f:?} contradicts Secret {object}'s annotation {annotation}={a:?}"),
            format!("drop {flag} or fix the annotation"),
        )),
        (Some(f), _) => Ok(Some(f.to_string())),
        (None, Some(a)) => Ok(Some(a.to_string())),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(data_key: &str, value: &str, annotations: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.namespace = Some("shop".into());
        s.metadata.name = Some("app-secrets".into());
        s.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        s.data = Some(BTreeMap::from([(
            data_key.to_string(),
            ByteString(value.as_bytes().to_vec()),
        )]));
        s
    }

    #[test]
    fn refs_parse() {
        let r = SecretRef::parse("shop/app-secrets#secrets.json").unwrap();
        assert_eq!(
            (r.namespace.as_str(), r.name.as_str()),
            ("shop", "app-secrets")
        );
        assert_eq!(r.data_key.as_deref(), Some("secrets.json"));
        assert_eq!(r.to_string(), "shop/app-secrets#secrets.json");
        for bad in [
            "shop",
            "/x",
            "shop/",
            "Shop/x",
            "shop/x#",
            "shop/x#a/b",
            "a/b/c",
        ] {
            assert!(SecretRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn annotations_describe_the_ciphertext() {
        let s = secret(
            "ciphertext",
            "vault:v3:abc\n",
            &[(ANN_TRANSIT_KEY, "shop-app"), (ANN_BINDING, "identity")],
        );
        let sealed = read(&s, None).unwrap();
        assert_eq!(sealed.ciphertext, "vault:v3:abc");
        let t = resolve(&sealed, &TransitFlags::default()).unwrap();
        assert_eq!(t.mount, "transit");
        assert_eq!(t.key, "shop-app");
        assert_eq!(t.context.as_deref(), Some("shop/app-secrets"));
    }

    #[test]
    fn the_old_layout_works_with_flags_alone() {
        let s = secret("secrets.json", "vault:v1:abc", &[]);
        let sealed = read(&s, None).unwrap();
        let flags = TransitFlags {
            key: Some("env-data-key".into()),
            ..Default::default()
        };
        let t = resolve(&sealed, &flags).unwrap();
        assert_eq!((t.key.as_str(), t.context.as_ref()), ("env-data-key", None));
        assert!(resolve(&sealed, &TransitFlags::default()).is_err());
    }

    #[test]
    fn a_contradicting_flag_is_an_error() {
        let s = secret("ciphertext", "vault:v1:abc", &[(ANN_TRANSIT_KEY, "a")]);
        let sealed = read(&s, None).unwrap();
        let flags = TransitFlags {
            key: Some("b".into()),
            ..Default::default()
        };
        let err = resolve(&sealed, &flags).unwrap_err();
        assert!(err.to_string().contains("contradicts"), "{err}");
        let same = TransitFlags {
            key: Some("a".into()),
            ..Default::default()
        };
        assert!(resolve(&sealed, &same).is_ok());
    }

    #[test]
    fn the_format_flag_must_agree_with_the_annotation() {
        let s = secret(
            "ciphertext",
            "vault:v1:abc",
            &[(ANN_TRANSIT_KEY, "k"), (ANN_FORMAT, "json")],
        );
        let sealed = read(&s, None).unwrap();
        assert_eq!(sealed.format, Some(DocFormat::Json));
        let with = |format, explicit| TransitFlags {
            format: Some(FormatFlag { format, explicit }),
            ..Default::default()
        };
        assert!(resolve(&sealed, &with(DocFormat::Json, true)).is_ok());
        assert!(resolve(&sealed, &with(DocFormat::Json, false)).is_ok());
        let err = resolve(&sealed, &with(DocFormat::Raw, true)).unwrap_err();
        assert!(
            err.to_string().contains("--format \"raw\" contradicts"),
            "{err}"
        );
        // No annotation (the old tool's Secrets): the flag alone decides.
        let old = read(
            &secret("secrets.json", "vault:v1:abc", &[(ANN_TRANSIT_KEY, "k")]),
            None,
        )
        .unwrap();
        assert!(resolve(&old, &with(DocFormat::Raw, true)).is_ok());
        let bad = secret("ciphertext", "vault:v1:x", &[(ANN_FORMAT, "yaml")]);
        assert!(read(&bad, None).is_err());
    }

    #[test]
    fn junk_is_refused() {
        assert!(read(&secret("ciphertext", "hello", &[]), None).is_err());
        assert!(read(&secret("ciphertext", "", &[]), None).is_err());
        assert!(read(&secret("other", "vault:v1:x", &[]), None).is_err());
        assert!(
            read(
                &secret("ciphertext", "vault:v1:x", &[(ANN_BINDING, "maybe")]),
                None
            )
            .is_err()
        );
    }
}
