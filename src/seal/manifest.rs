//! The sealed Secret as a manifest: the fields of the self-describing Secret, in their
//! order, and nothing else.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use serde::Serialize;

use crate::document::ManifestFormat;
use crate::fault::Fault;
use crate::kube::Secret;

/// The Secret as a manifest.
pub fn manifest(secret: &Secret, format: ManifestFormat) -> Result<String, Fault> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Manifest<'a> {
        api_version: &'static str,
        kind: &'static str,
        #[serde(rename = "type")]
        type_: &'a str,
        metadata: Meta<'a>,
        data: &'a BTreeMap<String, ByteString>,
    }
    #[derive(Serialize)]
    struct Meta<'a> {
        name: &'a str,
        namespace: &'a str,
        labels: &'a BTreeMap<String, String>,
        annotations: &'a BTreeMap<String, String>,
    }
    let empty_map = BTreeMap::new();
    let empty_data = BTreeMap::new();
    let m = Manifest {
        api_version: "v1",
        kind: "Secret",
        type_: secret.type_.as_deref().unwrap_or("Opaque"),
        metadata: Meta {
            name: secret.metadata.name.as_deref().unwrap_or_default(),
            namespace: secret.metadata.namespace.as_deref().unwrap_or_default(),
            labels: secret.metadata.labels.as_ref().unwrap_or(&empty_map),
            annotations: secret.metadata.annotations.as_ref().unwrap_or(&empty_map),
        },
        data: secret.data.as_ref().unwrap_or(&empty_data),
    };
    let text = match format {
        ManifestFormat::Yaml => {
            // Plain scalars: a ciphertext is one long token, and `>-` blocks only confuse readers.
            let mut options = serde_saphyr::SerializerOptions::default();
            options.prefer_block_scalars = false;
            serde_saphyr::to_string_with_options(&m, options)
                .map_err(|e| Fault::Internal(e.to_string()))?
        }
        ManifestFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&m).map_err(|e| Fault::Internal(e.to_string()))?;
            text.push('\n');
            text
        }
    };
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_format::{self, Transit};

    #[test]
    fn the_manifest_holds_only_the_secret() {
        let transit = Transit {
            mount: "transit".into(),
            key: "k".into(),
            context: None,
        };
        let ciphertext = format!("vault:v1:{}", "A".repeat(300));
        let secret = secret_format::build_secret(
            &super::super::target("shop", "app", "secrets.json").unwrap(),
            &transit,
            &ciphertext,
            "json",
        );
        let yaml = manifest(&secret, ManifestFormat::Yaml).unwrap();
        assert!(
            yaml.starts_with("apiVersion: v1\nkind: Secret\ntype: Opaque\n"),
            "{yaml}"
        );
        // The ciphertext as one plain scalar, as kubectl writes it.
        assert!(
            yaml.ends_with(&format!(
                "\ndata:\n  secrets.json: {}\n",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &ciphertext)
            )),
            "{yaml}"
        );
        let back: Secret = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back.data, secret.data);
        assert_eq!(back.metadata.annotations, secret.metadata.annotations);
        let json: Secret =
            serde_json::from_str(&manifest(&secret, ManifestFormat::Json).unwrap()).unwrap();
        assert_eq!(json.metadata.labels, secret.metadata.labels);
    }
}
