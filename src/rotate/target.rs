//! Which Secrets hold a ciphertext under the key being rotated, and what rewrapping
//! each needs: its ciphertext, key version and binding context.

use crate::fault::Fault;
use crate::kube::Secret;
use crate::secret_format::{self, SecretRef, TransitFlags};

/// How a Secret came into the run, which decides how it is recognised again after a
/// conflict (and in the cluster-wide check before retiring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Found by the `managed-by` label; its annotations name mount and key.
    Labelled,
    /// Named with `--secret` (old layout: no annotations needed), with its data key.
    Named(Option<String>),
}

/// One Secret to bring to the latest key version.
#[derive(Debug, Clone)]
pub struct Target {
    /// The object as read (its resourceVersion guards the write back).
    pub object: Secret,
    pub origin: Origin,
    /// `namespace/name`, for logs and reports.
    pub name: String,
    pub data_key: String,
    pub ciphertext: String,
    /// The key version of `ciphertext`.
    pub version: u64,
    /// The binding text (`namespace/name`) for identity-bound ciphertexts.
    pub context: Option<String>,
}

/// `namespace/name` of a Secret object.
pub fn name_of(secret: &Secret) -> String {
    format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or(""),
        secret.metadata.name.as_deref().unwrap_or("")
    )
}

/// Whether a labelled Secret's annotations put it under `mount`/`key` (a missing mount
/// annotation means the default mount, as `serve` reads it).
pub fn annotated_under(secret: &Secret, mount: &str, key: &str) -> bool {
    let labelled = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(secret_format::MANAGED_BY_LABEL))
        .is_some_and(|v| v == secret_format::MANAGED_BY_VALUE);
    let Some(annotations) = secret.metadata.annotations.as_ref() else {
        return false;
    };
    let annotated_mount = annotations
        .get(secret_format::ANN_TRANSIT_MOUNT)
        .map(|m| m.trim_matches('/'))
        .unwrap_or(crate::env::DEFAULT_TRANSIT_MOUNT);
    labelled
        && annotations
            .get(secret_format::ANN_TRANSIT_KEY)
            .is_some_and(|k| k == key)
        && annotated_mount == mount.trim_matches('/')
}

/// What the run makes of `secret`: `Ok(None)` when it is not under `mount`/`key`
/// (a labelled Secret of another key, or one relabelled since it was listed), an error
/// when it is but its ciphertext or annotations are unusable.
pub fn target_of(
    secret: Secret,
    origin: &Origin,
    mount: &str,
    key: &str,
) -> Result<Option<Target>, Fault> {
    let data_key = match origin {
        Origin::Labelled => {
            if !annotated_under(&secret, mount, key) {
                return Ok(None);
            }
            None
        }
        Origin::Named(data_key) => data_key.as_deref(),
    };
    let mut sealed = secret_format::read(&secret, data_key)?;
    // "transit/" and "transit" are the same mount: not a contradiction.
    if sealed
        .transit_mount
        .as_deref()
        .is_some_and(|m| m.trim_matches('/') == mount.trim_matches('/'))
    {
        sealed.transit_mount = Some(mount.to_string());
    }
    let flags = TransitFlags {
        mount: Some(mount.to_string()),
        key: Some(key.to_string()),
        binding: None,
        format: None,
    };
    let transit = secret_format::resolve(&sealed, &flags)?;
    let version = crate::vault::ciphertext_version(&sealed.ciphertext)
        .ok_or_else(|| Fault::Internal("a parsed ciphertext has no key version".to_string()))?;
    Ok(Some(Target {
        name: name_of(&secret),
        data_key: sealed
            .secret
            .data_key
            .clone()
            .unwrap_or_else(|| secret_format::DATA_KEY.to_string()),
        ciphertext: sealed.ciphertext,
        version,
        context: transit.context,
        origin: origin.clone(),
        object: secret,
    }))
}

/// The origin of a `--secret` reference.
pub fn named(reference: &SecretRef) -> Origin {
    Origin::Named(reference.data_key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn secret(labelled: bool, annotations: &[(&str, &str)], data: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.namespace = Some("shop".into());
        s.metadata.name = Some("app".into());
        if labelled {
            s.metadata.labels = Some(BTreeMap::from([(
                secret_format::MANAGED_BY_LABEL.to_string(),
                secret_format::MANAGED_BY_VALUE.to_string(),
            )]));
        }
        s.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        s.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        );
        s
    }

    #[test]
    fn labelled_secrets_are_ours_only_under_the_same_mount_and_key() {
        let ours = secret(
            true,
            &[
                (secret_format::ANN_TRANSIT_KEY, "k"),
                (secret_format::ANN_BINDING, "identity"),
            ],
            &[("ciphertext", "vault:v3:abc")],
        );
        assert!(annotated_under(&ours, "transit", "k"));
        assert!(annotated_under(&ours, "transit/", "k"));
        assert!(!annotated_under(&ours, "other", "k"));
        assert!(!annotated_under(&ours, "transit", "k2"));
        let target = target_of(ours, &Origin::Labelled, "transit", "k")
            .unwrap()
            .unwrap();
        assert_eq!(target.version, 3);
        assert_eq!(target.context.as_deref(), Some("shop/app"));
        assert_eq!(target.data_key, "ciphertext");

        let unlabelled = secret(
            false,
            &[(secret_format::ANN_TRANSIT_KEY, "k")],
            &[("ciphertext", "vault:v1:abc")],
        );
        assert!(!annotated_under(&unlabelled, "transit", "k"));
        let mounted = secret(
            true,
            &[
                (secret_format::ANN_TRANSIT_KEY, "k"),
                (secret_format::ANN_TRANSIT_MOUNT, "team/transit/"),
            ],
            &[("ciphertext", "vault:v1:abc")],
        );
        assert!(annotated_under(&mounted, "team/transit", "k"));
        assert!(
            target_of(mounted, &Origin::Labelled, "team/transit", "k")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn named_old_layout_secrets_need_no_annotations() {
        let old = secret(false, &[], &[("secrets.json", "vault:v2:xyz")]);
        let target = target_of(old.clone(), &Origin::Named(None), "transit", "k")
            .unwrap()
            .unwrap();
        assert_eq!(
            (target.data_key.as_str(), target.version, target.context),
            ("secrets.json", 2, None)
        );
        // A labelled-only lookup does not claim it.
        assert!(
            target_of(old, &Origin::Labelled, "transit", "k")
                .unwrap()
                .is_none()
        );
        // Named, but annotated for another key: a contradiction, not a silent choice.
        let foreign = secret(
            false,
            &[(secret_format::ANN_TRANSIT_KEY, "other")],
            &[("ciphertext", "vault:v1:abc")],
        );
        assert!(target_of(foreign, &Origin::Named(None), "transit", "k").is_err());
    }
}
