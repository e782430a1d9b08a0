//! Sealing (issue 4): a plaintext JSON document becomes a Transit ciphertext in the
//! self-describing Secret of DESIGN §1, printed as a manifest or applied to the
//! cluster, then verified by decrypting what was written.
//!
//! The document is read only from a file or stdin, held in [`Plaintext`] or wiped
//! buffers, and never logged or echoed, not even in a parse error (which gives a line
//! and column instead). Short-lived parsed copies (a YAML tree, the trees compared by
//! verification) are freed at once; the binary's zero-on-free allocator wipes them.
//!
//! With `--apply` the Secret is read before any Vault work (a cluster we cannot reach
//! costs no encryption), written with `resourceVersion` (a concurrent change is a 409:
//! re-read, merge, retry, bounded), and verified twice: the fresh ciphertext before
//! anything is written (so a sealer that cannot decrypt changes nothing), and the
//! Secret read back from the cluster after. When the read-back check fails the Secret
//! is put back as it was, or deleted if seal created it; both writes are conditional
//! on our own `resourceVersion`, so a change someone made since is never undone.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use k8s_openapi::ByteString;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::kube::{KubeError, Secret, Secrets};
use crate::plaintext::Plaintext;
use crate::retry::{Backoff, retry};
use crate::sealed::{self, Binding, SecretRef, Transit, TransitFlags};
use crate::vault::{self, KeyInfo, VaultError, VaultToken};

/// How the plaintext document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// A JSON object, sealed byte for byte as given.
    Json,
    /// A YAML mapping, converted to compact JSON before sealing.
    Yaml,
}

/// How the Secret manifest is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}

/// Kubernetes refuses a Secret whose data (keys plus values) exceeds 1 MiB.
pub const MAX_SECRET_BYTES: usize = 1024 * 1024;

/// How many times a write that lost a race (409) is re-read and tried again.
pub const WRITE_ATTEMPTS: u32 = 5;

/// The most we read from a file or stdin; anything near it cannot fit a Secret anyway.
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// What `secret-zero.dev/format` says: seal only takes JSON objects.
const FORMAT_JSON: &str = "json";

/// The Secret a document is sealed for: namespace, name and data key, checked as the
/// API server would check them.
pub fn target(namespace: &str, name: &str, data_key: &str) -> Result<SecretRef, Error> {
    SecretRef::parse(&format!("{namespace}/{name}#{data_key}")).map_err(|_| {
        Error::input(
            format!("invalid Secret --namespace {namespace:?} --name {name:?} --data-key {data_key:?}"),
            "the namespace is a DNS label, the name a DNS subdomain (lower case, digits, '-', '.'), the data key letters, digits, '-', '_' or '.'",
        )
    })
}

/// Read the document from `path` (`-` is stdin) and check it is a JSON object, or with
/// `format` YAML a mapping, converted to JSON. The raw bytes are wiped on return.
pub fn read_document(path: &Path, format: InputFormat) -> Result<Plaintext, Error> {
    let stdin = path == Path::new("-");
    let source = if stdin {
        "the document on stdin".to_string()
    } else {
        path.display().to_string()
    };
    let bytes = read_input(path, stdin, &source)?;
    parse_document(&bytes, format, &source)
}

fn read_input(path: &Path, stdin: bool, source: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let cannot = |e: std::io::Error| {
        Error::input(
            format!("cannot read {source}: {e}"),
            "give the document with --from-file PATH, or --from-file - and pipe it in",
        )
    };
    let mut bytes = Zeroizing::new(Vec::new());
    let read = if stdin {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            eprintln!("secret-zero: reading the document from the terminal; end it with Ctrl-D");
        }
        bytes.reserve(64 * 1024);
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        let file = std::fs::File::open(path).map_err(cannot)?;
        // One allocation of the right size: no stale partial copies from regrowth.
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        bytes.reserve(size.min(MAX_INPUT_BYTES) as usize + 1);
        file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)
    };
    read.map_err(cannot)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Error::input(
            format!("{source} is larger than {} MiB", MAX_INPUT_BYTES >> 20),
            "a Kubernetes Secret holds at most 1 MiB: seal a document under about 768 KiB",
        ));
    }
    Ok(bytes)
}

/// Check `bytes` and return the JSON to seal. Errors name the position, never the content.
pub fn parse_document(bytes: &[u8], format: InputFormat, source: &str) -> Result<Plaintext, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::input(
            format!("{source} is empty"),
            "seal a JSON object such as {\"password\": \"...\"}",
        ));
    }
    match format {
        InputFormat::Json => json_object(bytes, source),
        InputFormat::Yaml => yaml_mapping(bytes, source),
    }
}

const CONTENT_HIDDEN: &str = "fix the document; its content is not shown here on purpose";

fn json_object(bytes: &[u8], source: &str) -> Result<Plaintext, Error> {
    if let Err(e) = serde_json::from_slice::<NoDuplicateKeys>(bytes) {
        use serde_json::error::Category;
        // Syntax and EOF messages are fixed texts ("expected `,` or `}`"), and so is our
        // duplicate-key message; anything else could quote the document.
        let text = e.to_string();
        let fixed = matches!(e.classify(), Category::Syntax | Category::Eof)
            || text.starts_with(DUPLICATE_KEY);
        let reason = match text.rsplit_once(" at line ") {
            Some((reason, _)) if fixed => reason,
            _ => "invalid JSON",
        };
        return Err(Error::input(
            format!(
                "{source} is not valid JSON: {reason} (line {}, column {})",
                e.line(),
                e.column()
            ),
            format!("{CONTENT_HIDDEN}; pass --input-format yaml for a YAML document"),
        ));
    }
    let (at, line, column) = first_significant(bytes);
    if bytes[at] != b'{' {
        let kind = match bytes[at] {
            b'[' => "an array",
            b'"' => "a string",
            b't' | b'f' => "a boolean",
            b'n' => "null",
            _ => "a number",
        };
        return Err(Error::input(
            format!("{source} is JSON {kind}, not an object (line {line}, column {column})"),
            "seal a JSON object: {\"key\": value, ...}",
        ));
    }
    Ok(Plaintext::new(bytes.to_vec()))
}

const DUPLICATE_KEY: &str = "duplicate key in an object";

/// Validates a JSON document and refuses duplicate object keys: parsers disagree on
/// which one wins, so the application could see another value than the one sealed.
/// Nothing is kept but the keys of the object being read.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut result = Ok(());
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                result = Err(serde::de::Error::custom(DUPLICATE_KEY));
                break;
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        // Key names can be telling too: wipe them rather than leave them to the allocator.
        for mut key in seen.drain() {
            zeroize::Zeroize::zeroize(&mut key);
        }
        result.map(|()| self)
    }
}

/// A YAML mapping converted to JSON. Errors give the position, never the content.
pub(crate) fn yaml_mapping(bytes: &[u8], source: &str) -> Result<Plaintext, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(bytes, e.valid_up_to());
        Error::input(
            format!("{source} is not UTF-8 text (line {line}, column {column})"),
            "save the document as UTF-8",
        )
    })?;
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| {
        // serde-saphyr's own messages can quote the document: only the position is kept.
        let at = e
            .location()
            .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
            .unwrap_or_default();
        Error::input(
            format!("{source} is not valid YAML, or has no JSON equivalent{at}"),
            CONTENT_HIDDEN,
        )
    })?;
    if !value.is_object() {
        let (line, column) = first_yaml_node(text);
        return Err(Error::input(
            format!("{source} is not a YAML mapping (line {line}, column {column})"),
            "seal a mapping of keys to values",
        ));
    }
    let mut json = Zeroizing::new(Vec::with_capacity(bytes.len()));
    serde_json::to_writer(&mut *json, &value).map_err(|e| Error::Internal(e.to_string()))?;
    drop(value);
    Ok(Plaintext::new(std::mem::take(&mut *json)))
}

/// Index, line and column (1-based) of the first byte that is not whitespace.
fn first_significant(bytes: &[u8]) -> (usize, usize, usize) {
    let at = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let (line, column) = position(bytes, at);
    (at, line, column)
}

/// Line and column (1-based, columns in characters) of byte `at`.
fn position(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = before[line_start..]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count()
        + 1;
    (line, column)
}

/// Where the first YAML node starts: past blank lines, comments, directives and `---`.
fn first_yaml_node(text: &str) -> (usize, usize) {
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let skip = trimmed.is_empty()
            || trimmed.starts_with('#')
            || trimmed.starts_with('%')
            || trimmed.trim_end() == "---";
        if !skip {
            let indent = line.chars().count() - trimmed.chars().count();
            let column = match trimmed.strip_prefix("--- ") {
                Some(rest) => indent + 4 + (rest.len() - rest.trim_start().len()),
                None => indent,
            };
            return (index + 1, column + 1);
        }
    }
    (1, 1)
}

/// Whether two documents are the same JSON value (object key order, whitespace and
/// number spelling aside). The parsed trees live only inside this call.
pub fn same_document(a: &Plaintext, b: &Plaintext) -> bool {
    let parse = |p: &Plaintext| serde_json::from_slice::<serde_json::Value>(p.expose()).ok();
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The binding to seal with: the one asked for, else identity for a derived key and
/// none for a plain one. `key` is `None` when the key could not be read.
pub fn choose_binding(
    requested: Option<Binding>,
    key: Option<&KeyInfo>,
    mount: &str,
    key_name: &str,
) -> Result<Binding, Error> {
    let Some(key) = key else {
        return requested.ok_or_else(|| {
            Error::input(
                format!("cannot tell whether Transit key {mount}/keys/{key_name} is derived"),
                format!(
                    "grant the sealer `read` on {mount}/keys/{key_name}, or choose with --binding identity|none"
                ),
            )
        });
    };
    match (requested, key.derived) {
        (None | Some(Binding::Identity), true) => Ok(Binding::Identity),
        (None | Some(Binding::None), false) => Ok(Binding::None),
        (Some(Binding::Identity), false) => Err(Error::input(
            format!(
                "--binding identity needs a derived Transit key, and {mount}/keys/{key_name} is not derived"
            ),
            format!(
                "create a derived key with `vault write -f {mount}/keys/NEW_KEY derived=true` and seal with --transit-key NEW_KEY (an existing key cannot become derived), or seal with --binding none"
            ),
        )),
        (Some(Binding::None), true) => Err(Error::input(
            format!(
                "--binding none cannot be used with {mount}/keys/{key_name}: it is a derived key, which needs a context"
            ),
            "drop --binding (a derived key seals with identity), or seal with a key created without derived=true",
        )),
    }
}

/// The number of bytes Kubernetes counts against a Secret's 1 MiB: data keys plus values.
pub fn data_size(secret: &Secret) -> usize {
    let data = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.0.len());
    let string_data = secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len());
    data.chain(string_data).sum()
}

fn check_size(secret: &Secret, object: &str) -> Result<(), Error> {
    let size = data_size(secret);
    if size <= MAX_SECRET_BYTES {
        return Ok(());
    }
    Err(Error::input(
        format!(
            "Secret {object} would hold {size} bytes of data, more than the {MAX_SECRET_BYTES} (1 MiB) Kubernetes allows"
        ),
        "Transit ciphertext is about 4/3 of the document: seal a document under about 768 KiB (less what other data keys of the Secret take)",
    ))
}

/// Refuse before any Vault work a document whose ciphertext cannot fit: base64 alone
/// makes it 4/3 of the document.
pub fn check_document_size(document: &Plaintext, secret: &SecretRef) -> Result<(), Error> {
    let key = secret.data_key.as_deref().unwrap_or(sealed::DATA_KEY);
    let least = document.len().div_ceil(3) * 4 + key.len();
    if least <= MAX_SECRET_BYTES {
        return Ok(());
    }
    Err(Error::input(
        format!(
            "the document ({} bytes) is too large: its ciphertext would take at least {least} bytes of Secret {}/{}, more than the {MAX_SECRET_BYTES} (1 MiB) Kubernetes allows",
            document.len(),
            secret.namespace,
            secret.name
        ),
        "Transit ciphertext is about 4/3 of the document: seal a document under about 768 KiB",
    ))
}

/// The Secret as a manifest: the fields DESIGN §1 shows, in its order, and nothing else.
pub fn manifest(secret: &Secret, format: OutputFormat) -> Result<String, Error> {
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
        OutputFormat::Yaml => {
            // Plain scalars: a ciphertext is one long token, and `>-` blocks only confuse readers.
            let mut options = serde_saphyr::SerializerOptions::default();
            options.prefer_block_scalars = false;
            serde_saphyr::to_string_with_options(&m, options)
                .map_err(|e| Error::Internal(e.to_string()))?
        }
        OutputFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&m).map_err(|e| Error::Internal(e.to_string()))?;
            text.push('\n');
            text
        }
    };
    Ok(text)
}

/// `existing` with our label, annotations and ciphertext from `fresh`; every other
/// label, annotation, data key and field is kept as it is.
pub fn merge(existing: &Secret, fresh: &Secret) -> Secret {
    let mut merged = existing.clone();
    for (ours, theirs) in [
        (&fresh.metadata.labels, &mut merged.metadata.labels),
        (
            &fresh.metadata.annotations,
            &mut merged.metadata.annotations,
        ),
    ] {
        let theirs = theirs.get_or_insert_with(Default::default);
        for (k, v) in ours.iter().flatten() {
            theirs.insert(k.clone(), v.clone());
        }
    }
    let data = merged.data.get_or_insert_with(Default::default);
    for (k, v) in fresh.data.iter().flatten() {
        data.insert(k.clone(), v.clone());
    }
    merged
}

/// Whether `secret` holds `ciphertext` under `data_key`.
fn carries(secret: &Secret, data_key: &str, ciphertext: &str) -> bool {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(data_key))
        .is_some_and(|v| sealed::parse_ciphertext(&v.0).is_ok_and(|c| c == ciphertext))
}

/// What to seal with and how.
#[derive(Debug, Clone)]
pub struct Request {
    /// The Secret, with its data key set.
    pub secret: SecretRef,
    pub mount: String,
    pub key: String,
    /// `None`: identity for a derived key, none otherwise.
    pub binding: Option<Binding>,
    pub verify: bool,
    pub backoff: Backoff,
}

impl Request {
    fn object(&self) -> String {
        format!("{}/{}", self.secret.namespace, self.secret.name)
    }

    fn data_key(&self) -> &str {
        self.secret.data_key.as_deref().unwrap_or(sealed::DATA_KEY)
    }
}

/// Encrypts and verifies with one Vault token.
pub struct Sealer<'a> {
    pub vault: &'a vault::Client,
    pub token: &'a VaultToken,
    pub request: &'a Request,
}

/// A sealed document: the fresh Secret and what it was sealed with.
pub struct Sealed {
    pub secret: Secret,
    pub ciphertext: String,
    pub binding: Binding,
    pub key_version: Option<u64>,
}

impl Sealer<'_> {
    /// Choose the binding (reading the key), encrypt, and build the Secret.
    pub async fn seal(&self, document: &Plaintext) -> Result<Sealed, Error> {
        let r = self.request;
        let binding = self.binding().await?;
        let transit = Transit {
            mount: r.mount.clone(),
            key: r.key.clone(),
            context: match binding {
                Binding::Identity => Some(r.secret.context()),
                Binding::None => None,
            },
        };
        let ciphertext = retry("vault encrypt", r.backoff, || {
            self.vault.encrypt(
                self.token,
                &r.mount,
                &r.key,
                document,
                transit.context.as_deref(),
            )
        })
        .await?;
        let key_version = vault::ciphertext_version(&ciphertext);
        tracing::info!(
            secret = %r.object(),
            mount = %r.mount,
            key = %r.key,
            key_version,
            binding = %binding.as_str(),
            bytes = document.len(),
            "document encrypted"
        );
        let secret = sealed::build_secret(&r.secret, &transit, &ciphertext, FORMAT_JSON);
        check_size(&secret, &r.object())?;
        Ok(Sealed {
            secret,
            ciphertext,
            binding,
            key_version,
        })
    }

    async fn binding(&self) -> Result<Binding, Error> {
        let r = self.request;
        let key = match retry("vault read key", r.backoff, || {
            self.vault.read_key(self.token, &r.mount, &r.key)
        })
        .await
        {
            Ok(key) => {
                tracing::info!(
                    mount = %r.mount,
                    key = %r.key,
                    derived = key.derived,
                    latest_version = key.latest_version,
                    "Transit key read"
                );
                Some(key)
            }
            Err(VaultError::NotFound { path, message }) => {
                return Err(Error::Vault(VaultError::NotFound {
                    path,
                    message: join(
                        &message,
                        &format!(
                            "Transit key {:?} does not exist on mount {:?}; create it with `vault write -f {}/keys/{} derived=true`, or fix --transit-key/--transit-mount",
                            r.key, r.mount, r.mount, r.key
                        ),
                    ),
                }));
            }
            // The check only picks the default and explains a mismatch early; with an
            // explicit --binding, encrypting tells the same.
            Err(VaultError::PermissionDenied { path, .. }) if r.binding.is_some() => {
                tracing::warn!(%path, "cannot read the Transit key (permission denied); using --binding as given");
                None
            }
            Err(VaultError::PermissionDenied { path, message }) => {
                return Err(Error::Vault(VaultError::PermissionDenied {
                    path,
                    message: join(
                        &message,
                        "seal reads the key to choose the binding: grant `read` on it, or pass --binding identity|none",
                    ),
                }));
            }
            Err(e) => return Err(e.into()),
        };
        choose_binding(r.binding, key.as_ref(), &r.mount, &r.key)
    }

    /// Decrypt the ciphertext in `secret` as `serve` would (data key and annotations,
    /// reconciled with our flags) and compare it with `document`.
    pub async fn verify(&self, secret: &Secret, document: &Plaintext) -> Result<(), Error> {
        let r = self.request;
        let found = sealed::read(secret, Some(r.data_key()))?;
        let flags = TransitFlags {
            mount: Some(r.mount.clone()),
            key: Some(r.key.clone()),
            binding: None,
        };
        let transit = sealed::resolve(&found, &flags)?;
        let decrypted = retry("vault decrypt", r.backoff, || {
            self.vault.decrypt(
                self.token,
                &transit.mount,
                &transit.key,
                &found.ciphertext,
                transit.context.as_deref(),
            )
        })
        .await?;
        if !same_document(&decrypted, document) {
            return Err(Error::Internal(format!(
                "the ciphertext in Secret {} decrypts to a different document",
                r.object()
            )));
        }
        Ok(())
    }
}

/// Seal `document` and render the Secret manifest; verified first unless asked not to.
pub async fn to_manifest(
    sealer: &Sealer<'_>,
    document: &Plaintext,
    format: OutputFormat,
) -> Result<String, Error> {
    let sealed = sealer.seal(document).await?;
    if sealer.request.verify {
        sealer
            .verify(&sealed.secret, document)
            .await
            .map_err(|e| annotate(e, &verify_note("nothing was printed")))?;
    }
    log_done(sealer.request, &sealed, "printed");
    manifest(&sealed.secret, format)
}

/// The Secrets API that seal reads and writes through.
pub struct Cluster {
    pub secrets: Secrets,
}

impl Cluster {
    pub fn new(client: kube::Client) -> Cluster {
        Cluster {
            secrets: Secrets::new(client),
        }
    }

    /// Read the Secret as it is now (`None`: it does not exist). Called before anything
    /// is sealed, so an unreachable or forbidden cluster fails before any Vault work.
    pub async fn read(&self, r: &Request) -> Result<Option<Secret>, Error> {
        let (ns, name) = (&r.secret.namespace, &r.secret.name);
        match retry("kubernetes get", r.backoff, || self.secrets.get(ns, name)).await {
            Ok(secret) => Ok(Some(secret)),
            Err(KubeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// What `--apply` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Created => "created",
            Applied::Updated => "updated",
        }
    }
}

/// Seal `document` into the cluster's Secret. `current` is the Secret as read by
/// [`Cluster::read`] (`None`: it does not exist).
pub async fn apply(
    sealer: &Sealer<'_>,
    cluster: &Cluster,
    current: Option<Secret>,
    document: &Plaintext,
) -> Result<Applied, Error> {
    let r = sealer.request;
    let sealed = sealer.seal(document).await?;
    if r.verify {
        // Before any write: a sealer that cannot decrypt leaves the cluster untouched.
        sealer
            .verify(&sealed.secret, document)
            .await
            .map_err(|e| annotate(e, &verify_note("nothing was written")))?;
    }
    let (prior, written) = write(cluster, r, current, &sealed).await?;
    let applied = if prior.is_some() {
        Applied::Updated
    } else {
        Applied::Created
    };
    tracing::info!(
        secret = %r.object(),
        resource_version = written.metadata.resource_version.as_deref().unwrap_or(""),
        "Secret {}",
        applied.as_str()
    );
    if r.verify {
        let checked = match cluster.read(r).await {
            Ok(Some(back)) if carries(&back, r.data_key(), &sealed.ciphertext) => {
                sealer.verify(&back, document).await
            }
            Ok(Some(_)) => Err(Error::Kube(KubeError::Conflict {
                object: r.object(),
                message: "someone changed the Secret right after seal wrote it".into(),
            })),
            Ok(None) => Err(Error::Kube(KubeError::Conflict {
                object: r.object(),
                message: "someone deleted the Secret right after seal wrote it".into(),
            })),
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            let outcome = match restore(cluster, r, prior.as_ref(), &written).await {
                Ok(done) => done.to_string(),
                Err(why) => format!("it could NOT be put back: {}", why.one_line()),
            };
            tracing::error!(secret = %r.object(), "verification of the written Secret failed; {outcome}");
            return Err(annotate(
                e,
                &format!(
                    "verifying Secret {} as written failed, and {outcome}",
                    r.object()
                ),
            ));
        }
    }
    log_done(r, &sealed, applied.as_str());
    Ok(applied)
}

/// Create or update the Secret, retrying lost races. Returns the object the write was
/// based on (`None`: created) and the object as written.
async fn write(
    cluster: &Cluster,
    r: &Request,
    mut current: Option<Secret>,
    sealed: &Sealed,
) -> Result<(Option<Secret>, Secret), Error> {
    let mut attempt = 1;
    loop {
        let result = match &current {
            None => {
                let fresh = &sealed.secret;
                retry("kubernetes create", r.backoff, || {
                    cluster.secrets.create(fresh)
                })
                .await
            }
            Some(existing) => {
                let desired = merge(existing, &sealed.secret);
                check_size(&desired, &r.object())?;
                retry("kubernetes replace", r.backoff, || {
                    cluster.secrets.replace(&desired)
                })
                .await
            }
        };
        let error = match result {
            Ok(written) => return Ok((current, written)),
            Err(
                e @ (KubeError::Conflict { .. }
                | KubeError::AlreadyExists { .. }
                | KubeError::NotFound { .. }),
            ) => e,
            Err(e) => return Err(e.into()),
        };
        if attempt >= WRITE_ATTEMPTS {
            return Err(annotate(
                Error::Kube(error),
                &format!("gave up after {WRITE_ATTEMPTS} attempts"),
            ));
        }
        tracing::warn!(
            secret = %r.object(),
            attempt,
            error = %error,
            "the Secret changed while sealing; re-reading it and trying again"
        );
        attempt += 1;
        let now = cluster.read(r).await?;
        // A write that timed out may have landed: our ciphertext (unique to this run)
        // is there, so the write is done and `current` is still what it was based on.
        if let Some(now) = now
            .as_ref()
            .filter(|s| carries(s, r.data_key(), &sealed.ciphertext))
        {
            return Ok((current, now.clone()));
        }
        current = now;
    }
}

/// Undo our write: put `prior` back, or delete what we created. Both are conditional on
/// the `resourceVersion` we wrote, so a change made since by someone else is kept.
async fn restore(
    cluster: &Cluster,
    r: &Request,
    prior: Option<&Secret>,
    written: &Secret,
) -> Result<&'static str, Error> {
    let rv = written.metadata.resource_version.clone();
    match prior {
        Some(prior) => {
            let mut back = prior.clone();
            back.metadata.resource_version = rv;
            back.metadata.managed_fields = None;
            retry("kubernetes replace", r.backoff, || {
                cluster.secrets.replace(&back)
            })
            .await?;
            tracing::warn!(secret = %r.object(), "Secret put back as it was before seal");
            Ok("it was put back as it was")
        }
        None => {
            retry("kubernetes delete", r.backoff, || {
                cluster.secrets.delete_exact(written)
            })
            .await?;
            tracing::warn!(secret = %r.object(), "Secret deleted: it did not exist before seal");
            Ok("it was deleted again, as it did not exist before")
        }
    }
}

fn log_done(r: &Request, sealed: &Sealed, action: &str) {
    tracing::info!(
        secret = %r.object(),
        data_key = %r.data_key(),
        mount = %r.mount,
        key = %r.key,
        key_version = sealed.key_version,
        binding = %sealed.binding.as_str(),
        verified = r.verify,
        action = %action,
        "sealed"
    );
}

fn verify_note(outcome: &str) -> String {
    format!(
        "verification (decrypting what was sealed) failed, so {outcome}; a sealer without decrypt permission can skip it with --no-verify"
    )
}

fn join(message: &str, note: &str) -> String {
    // The Vault client's stand-in for an answer without `errors`.
    if message.trim().is_empty() || message == "no error message" {
        note.to_string()
    } else {
        format!("{message}; {note}")
    }
}

/// Add `note` to an error's message, keeping its kind (and so its exit code and hint).
pub fn annotate(error: Error, note: &str) -> Error {
    match error {
        Error::Vault(e) => Error::Vault(match e {
            VaultError::PermissionDenied { path, message } => VaultError::PermissionDenied {
                path,
                message: join(&message, note),
            },
            VaultError::InvalidRequest {
                path,
                status,
                message,
            } => VaultError::InvalidRequest {
                path,
                status,
                message: join(&message, note),
            },
            VaultError::NotFound { path, message } => VaultError::NotFound {
                path,
                message: join(&message, note),
            },
            VaultError::Unavailable { path, message } => VaultError::Unavailable {
                path,
                message: join(&message, note),
            },
            VaultError::Transient { path, detail } => VaultError::Transient {
                path,
                detail: join(&detail, note),
            },
            VaultError::Tls { addr, detail } => VaultError::Tls {
                addr,
                detail: join(&detail, note),
            },
            VaultError::BadResponse { path, detail } => VaultError::BadResponse {
                path,
                detail: join(&detail, note),
            },
            VaultError::Config(message) => VaultError::Config(join(&message, note)),
        }),
        Error::Kube(e) => Error::Kube(match e {
            KubeError::Unauthorized { object, message } => KubeError::Unauthorized {
                object,
                message: join(&message, note),
            },
            KubeError::Forbidden { object, message } => KubeError::Forbidden {
                object,
                message: join(&message, note),
            },
            KubeError::Conflict { object, message } => KubeError::Conflict {
                object,
                message: join(&message, note),
            },
            KubeError::Transient { object, detail } => KubeError::Transient {
                object,
                detail: join(&detail, note),
            },
            KubeError::Refused {
                object,
                code,
                message,
            } => KubeError::Refused {
                object,
                code,
                message: join(&message, note),
            },
            KubeError::Config(message) => KubeError::Config(join(&message, note)),
            // A race the retries did not settle: both end as a conflict.
            KubeError::NotFound { object } => KubeError::Conflict {
                message: join(&format!("secret {object} not found"), note),
                object,
            },
            KubeError::AlreadyExists { object } => KubeError::Conflict {
                message: join(&format!("{object} already exists"), note),
                object,
            },
        }),
        Error::Input { message, hint } => Error::Input {
            message: join(&message, note),
            hint,
        },
        Error::Internal(message) => Error::Internal(join(&message, note)),
        other => Error::Input {
            message: join(&other.to_string(), note),
            hint: other.hint(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, format: InputFormat) -> Result<Plaintext, String> {
        parse_document(text.as_bytes(), format, "doc").map_err(|e| e.one_line())
    }

    #[test]
    fn json_objects_are_sealed_as_given() {
        let doc = "{\"b\": 1,\n \"a\": [true, null]}\n";
        assert_eq!(
            parse(doc, InputFormat::Json).unwrap().expose(),
            doc.as_bytes()
        );
    }

    #[test]
    fn bad_json_gives_the_position_never_the_content() {
        let err = parse("{\"password\": \"hunter2\",\n  oops}", InputFormat::Json)
            .err()
            .unwrap();
        assert!(err.contains("line 2, column 3"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("oops"), "{err}");

        let err = parse("\n  [\"hunter2\"]", InputFormat::Json).err().unwrap();
        assert!(
            err.contains("array") && err.contains("line 2, column 3"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");

        let err = parse("{\"a\": 1} trailing-hunter2", InputFormat::Json)
            .err()
            .unwrap();
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse(
            "{\"a\": {\"hunter2\": 1,\n \"hunter2\": 2}}",
            InputFormat::Json,
        )
        .err()
        .unwrap();
        assert!(
            err.contains("duplicate key in an object (line 2, column"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        assert!(
            parse(" \n\t", InputFormat::Json)
                .err()
                .unwrap()
                .contains("empty")
        );
    }

    #[test]
    fn yaml_becomes_json() {
        let doc = "# comment\nuser: alice\nport: 5432\nnested:\n  - on: true\n";
        let json = parse(doc, InputFormat::Yaml).unwrap();
        let value: serde_json::Value = serde_json::from_slice(json.expose()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"user": "alice", "port": 5432, "nested": [{"on": true}]})
        );
        let err = parse("# c\n\n- hunter2\n", InputFormat::Yaml)
            .err()
            .unwrap();
        assert!(err.contains("line 3, column 1"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse("a: [hunter2\n", InputFormat::Yaml).err().unwrap();
        assert!(!err.contains("hunter2") && err.contains("line"), "{err}");
    }

    #[test]
    fn canonical_comparison_ignores_layout() {
        let a = Plaintext::new(br#"{"a": 1, "b": {"c": [1, 2]}}"#.to_vec());
        let b = Plaintext::new(b"{\"b\":{\"c\":[1,2]},\"a\":1}".to_vec());
        let c = Plaintext::new(br#"{"a": 2, "b": {"c": [1, 2]}}"#.to_vec());
        assert!(same_document(&a, &b));
        assert!(!same_document(&a, &c));
    }

    fn key(derived: bool) -> KeyInfo {
        serde_json::from_value(serde_json::json!({
            "name": "k", "type": "aes256-gcm96", "derived": derived,
            "latest_version": 1, "min_decryption_version": 1,
        }))
        .unwrap()
    }

    #[test]
    fn the_binding_follows_the_key() {
        let choose = |b, k: Option<&KeyInfo>| choose_binding(b, k, "transit", "k");
        assert_eq!(choose(None, Some(&key(true))).unwrap(), Binding::Identity);
        assert_eq!(choose(None, Some(&key(false))).unwrap(), Binding::None);
        let err = choose(Some(Binding::Identity), Some(&key(false)))
            .unwrap_err()
            .one_line();
        assert!(
            err.contains("vault write -f transit/keys/") && err.contains("derived=true"),
            "{err}"
        );
        assert!(choose(Some(Binding::None), Some(&key(true))).is_err());
        assert!(choose(None, None).is_err());
        assert_eq!(choose(Some(Binding::None), None).unwrap(), Binding::None);
    }

    #[test]
    fn merging_keeps_what_is_not_ours() {
        let mut existing = Secret::default();
        existing.metadata.namespace = Some("shop".into());
        existing.metadata.name = Some("app".into());
        existing.metadata.resource_version = Some("7".into());
        existing.metadata.labels = Some([("team".to_string(), "blue".to_string())].into());
        existing.metadata.annotations = Some(
            [
                ("note".to_string(), "keep".to_string()),
                (sealed::ANN_BINDING.to_string(), "none".to_string()),
            ]
            .into(),
        );
        existing.data = Some([("other".to_string(), ByteString(b"x".to_vec()))].into());
        let transit = Transit {
            mount: "transit".into(),
            key: "k".into(),
            context: Some("shop/app".into()),
        };
        let fresh = sealed::build_secret(
            &target("shop", "app", "ciphertext").unwrap(),
            &transit,
            "vault:v1:abc",
            "json",
        );
        let merged = merge(&existing, &fresh);
        assert_eq!(merged.metadata.resource_version.as_deref(), Some("7"));
        let labels = merged.metadata.labels.unwrap();
        assert_eq!(labels["team"], "blue");
        assert_eq!(labels[sealed::MANAGED_BY_LABEL], sealed::MANAGED_BY_VALUE);
        let annotations = merged.metadata.annotations.unwrap();
        assert_eq!(annotations["note"], "keep");
        assert_eq!(annotations[sealed::ANN_BINDING], "identity");
        let data = merged.data.unwrap();
        assert_eq!(data["other"].0, b"x");
        assert_eq!(data["ciphertext"].0, b"vault:v1:abc");
    }

    #[test]
    fn the_manifest_holds_only_the_secret() {
        let transit = Transit {
            mount: "transit".into(),
            key: "k".into(),
            context: None,
        };
        let ciphertext = format!("vault:v1:{}", "A".repeat(300));
        let secret = sealed::build_secret(
            &target("shop", "app", "secrets.json").unwrap(),
            &transit,
            &ciphertext,
            "json",
        );
        let yaml = manifest(&secret, OutputFormat::Yaml).unwrap();
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
            serde_json::from_str(&manifest(&secret, OutputFormat::Json).unwrap()).unwrap();
        assert_eq!(json.metadata.labels, secret.metadata.labels);
    }

    #[test]
    fn oversized_documents_are_refused_before_vault() {
        let secret = target("shop", "app", "ciphertext").unwrap();
        assert!(check_document_size(&Plaintext::new(vec![b' '; 700 * 1024]), &secret).is_ok());
        let err = check_document_size(&Plaintext::new(vec![b' '; 1024 * 1024]), &secret)
            .unwrap_err()
            .one_line();
        assert!(err.contains("1 MiB"), "{err}");
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(position("ab\ncé d".as_bytes(), "ab\ncé ".len()), (2, 4));
        assert_eq!(first_yaml_node("%YAML 1.2\n---\n  - x"), (3, 3));
        assert_eq!(first_yaml_node("--- [x]"), (1, 5));
    }
}
