//! Command-line definitions only. Every flag also reads a `SECRET_ZERO_*` variable;
//! the Vault flags read the usual `VAULT_*` variables. Flags win over the environment.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::env;

use crate::agent::{DocFormat, SocketSpec};
use crate::format::FetchFormat;
use crate::secret_format::Binding;
use crate::vault::AuthMethod;

mod audit;
mod inject;
mod rotate;
mod seal;
mod webhook;

pub use audit::{AuditArgs, AuditOutput};
pub use inject::{InjectArgs, InjectDefaults};
pub use rotate::RotateArgs;
pub use seal::SealArgs;
pub use webhook::WebhookArgs;

/// Secret Zero for Kubernetes: decrypt a Vault Transit ciphertext with the pod's
/// ServiceAccount identity and hand it to the application once, over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "secret-zero", version, about, long_about = None, after_help = EXIT_CODES, args_override_self = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = env::LOG_FORMAT, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level (error, warn, info, debug, trace), or levels per target such as
    /// `warn,secret_zero::audit=info`.
    #[arg(
        long,
        global = true,
        env = env::LOG_LEVEL,
        default_value = env::DEFAULT_LOG_LEVEL
    )]
    pub log_level: String,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// [`Parser::parse`], with one rule more: a usage error of `rotate` first prints
    /// its JSON report line (with `error` set) on stdout, so a CronJob's log always
    /// ends with one. Every usage error exits with [`exit::USAGE`](crate::exit::USAGE).
    pub fn parse_or_exit() -> Cli {
        match Cli::try_parse() {
            Ok(cli) => cli,
            Err(e) => usage_error(e),
        }
    }
}

fn usage_error(e: clap::Error) -> ! {
    // --help and --version are not errors: clap prints them on stdout and exits 0.
    if !e.use_stderr() {
        e.exit();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if subcommand(&args) == Some("rotate") {
        let rendered = e.render().to_string();
        let message = rendered.split("\n\nUsage:").next().unwrap_or(&rendered);
        let message = message.trim().trim_start_matches("error:");
        let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
        let report = crate::rotate::Report::usage_error(
            flag_value(&args, "--transit-mount", env::TRANSIT_MOUNT)
                .unwrap_or_else(|| env::DEFAULT_TRANSIT_MOUNT.to_string()),
            flag_value(&args, "--transit-key", env::TRANSIT_KEY).unwrap_or_default(),
            line,
        );
        println!("{}", report.to_line());
    }
    let _ = e.print();
    std::process::exit(crate::exit::USAGE)
}

/// The first word of the command line that is not a global flag or its value.
fn subcommand(args: &[String]) -> Option<&str> {
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--log-format" | "--log-level" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            a => return Some(a),
        }
    }
    None
}

/// `--flag VALUE` or `--flag=VALUE` (the last one wins), else the variable: for a
/// report line when the command line could not be parsed.
fn flag_value(args: &[String], flag: &str, variable: &str) -> Option<String> {
    let mut found = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == flag {
            found = args.next().cloned();
        } else if let Some(value) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = Some(value.to_string());
        }
    }
    found.or_else(|| std::env::var(variable).ok().filter(|v| !v.is_empty()))
}

/// Exit codes, shown under `--help` and documented in docs/exit-codes.md.
pub const EXIT_CODES: &str = "\
Exit codes:
   0  success
   1  internal error (a bug)
   2  usage error: an unknown or missing flag, a malformed flag or variable value, flags that do not go together
   3  bad input: a missing or malformed file, document or setting, a flag that contradicts the Secret's annotations
   4  Vault refused the login (role, audience, expired or foreign token)
   5  Vault refused an operation (permission denied, bad ciphertext, no such key)
   6  Vault unreachable, sealed, TLS failure, or still failing after retries
   7  Kubernetes API refused (unauthorized, forbidden, not found)
   8  Kubernetes write conflict that retries did not settle
   9  Kubernetes API unreachable
  10  get: this process is not allowed by the agent (403)
  11  get: no delivery left (410)
  12  get/probe: no agent on the socket, or not ready
  13  serve: the socket cannot be bound; webhook: the listen or metrics address cannot be bound
  14  rotate: some Secrets failed (each named in the log); nothing retired
  15  rotate --retire: refused, some Secrets still lag (listed in the log)
  16  audit: stray pods found (annotated without the agent, or another agent image)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: log in, decrypt (the token used up or revoked), serve the document once.
    Serve(Box<ServeArgs>),
    /// Read the document from the agent's socket and print it.
    Get(GetArgs),
    /// Exit 0 when the agent is ready or has delivered; never consumes a delivery.
    Probe(ProbeArgs),
    /// Encrypt a JSON document with Transit into a self-describing Secret.
    Seal(Box<SealArgs>),
    /// Rotate a Transit key and rewrap every Secret under it, inside Vault.
    Rotate(Box<RotateArgs>),
    /// Add the secret-zero sidecar to annotated pod templates in YAML.
    Inject(Box<InjectArgs>),
    /// Serve the same injection as a mutating admission webhook.
    Webhook(Box<WebhookArgs>),
    /// List pods the injection missed: annotated without the agent, or another agent image.
    Audit(Box<AuditArgs>),
}

/// Where Vault is. Shared by every command that talks to Vault.
#[derive(Debug, Clone, Args)]
pub struct VaultArgs {
    /// Vault or OpenBao address.
    #[arg(long, env = "VAULT_ADDR", default_value = env::DEFAULT_VAULT_ADDR)]
    pub vault_addr: String,

    /// PEM bundle of the CAs to trust for Vault's certificate (replaces the system roots).
    #[arg(long, env = "VAULT_CACERT")]
    pub vault_cacert: Option<PathBuf>,

    /// Vault namespace, sent as X-Vault-Namespace.
    #[arg(long, env = "VAULT_NAMESPACE")]
    pub vault_namespace: Option<String>,

    /// Timeout of each Vault request.
    #[arg(long, env = env::VAULT_TIMEOUT, value_parser = duration, default_value = env::DEFAULT_VAULT_TIMEOUT)]
    pub vault_timeout: Duration,
}

impl VaultArgs {
    /// The client configuration these flags describe.
    pub fn config(&self, keep_alive: bool) -> crate::vault::VaultConfig {
        crate::vault::VaultConfig {
            addr: self.vault_addr.clone(),
            ca_cert: self.vault_cacert.clone(),
            namespace: self.vault_namespace.clone(),
            timeout: self.vault_timeout,
            keep_alive,
        }
    }
}

/// How an operator or a pipeline authenticates to Vault: a token, or (with `--role`)
/// the same ServiceAccount login as the agent.
#[derive(Debug, Clone, Args)]
pub struct OperatorAuthArgs {
    /// File holding a Vault token [default: VAULT_TOKEN, then ~/.vault-token]. Ignored with --role.
    #[arg(long, env = env::VAULT_TOKEN_FILE)]
    pub vault_token_file: Option<PathBuf>,

    #[command(flatten)]
    pub login: LoginArgs,
}

/// How the agent logs into Vault with its ServiceAccount token.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Vault auth method.
    #[arg(long, env = env::AUTH_METHOD, value_enum, default_value_t = AuthMethod::Kubernetes)]
    pub auth_method: AuthMethod,

    /// Mount path of the auth method [default: the method's name].
    #[arg(long, env = env::AUTH_MOUNT)]
    pub auth_mount: Option<String>,

    /// Vault role to log in as.
    #[arg(long, env = env::ROLE)]
    pub role: Option<String>,

    /// ServiceAccount token file, re-read at every login (kubelet rotates it).
    #[arg(
        long,
        env = env::TOKEN_FILE,
        default_value = env::DEFAULT_TOKEN_FILE
    )]
    pub token_file: PathBuf,
}

impl LoginArgs {
    /// `--auth-mount`, else the method's usual mount.
    pub fn mount(&self) -> String {
        self.auth_mount
            .clone()
            .unwrap_or_else(|| self.auth_method.default_mount().to_string())
    }

    /// The login these flags describe; `None` without `--role`.
    pub fn spec(&self) -> Option<crate::vault::LoginSpec> {
        Some(crate::vault::LoginSpec {
            method: self.auth_method,
            mount: self.mount(),
            role: self.role.clone()?,
            token_file: self.token_file.clone(),
        })
    }
}

/// How to reach the Kubernetes API.
#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// kubeconfig file; without it, in-cluster configuration when in a pod, else
    /// KUBECONFIG or ~/.kube/config.
    #[arg(long, env = env::KUBECONFIG)]
    pub kubeconfig: Option<PathBuf>,

    /// Directory of the in-cluster ServiceAccount files (token, ca.crt, namespace).
    #[arg(long, env = env::SERVICEACCOUNT_DIR, default_value = env::DEFAULT_SERVICEACCOUNT_DIR)]
    pub serviceaccount_dir: PathBuf,
}

/// Which Transit key decrypts, and the binding context.
#[derive(Debug, Clone, Args)]
pub struct TransitArgs {
    /// Transit mount [default: the Secret's annotation, else "transit"].
    #[arg(long, env = env::TRANSIT_MOUNT)]
    pub transit_mount: Option<String>,

    /// Transit key [default: the Secret's annotation].
    #[arg(long, env = env::TRANSIT_KEY)]
    pub transit_key: Option<String>,

    /// Binding: "identity" uses NAMESPACE/NAME of the Secret as Transit context; "none" uses none
    /// [default: the Secret's annotation, else none].
    #[arg(long, env = env::BINDING, value_enum)]
    pub binding: Option<Binding>,

    /// The binding context NAMESPACE/NAME for --ciphertext-file, whose mounted volume has no annotations.
    #[arg(long, env = env::BINDING_CONTEXT)]
    pub binding_context: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The Secret holding the ciphertext: NAMESPACE/NAME[#DATAKEY] (data key "ciphertext"
    /// by default, "secrets.json" for the old tool's Secrets).
    #[arg(long, env = env::SECRET, group = "source")]
    pub secret: Option<String>,

    /// A file holding the raw "vault:vN:..." ciphertext (a mounted Secret volume).
    #[arg(long, env = env::CIPHERTEXT_FILE, group = "source")]
    pub ciphertext_file: Option<PathBuf>,

    /// DEVELOPMENT ONLY, not Secret Zero: serve this plaintext JSON or YAML file, no Vault.
    #[arg(long, env = env::PLAINTEXT_FILE, group = "source")]
    pub plaintext_file: Option<PathBuf>,

    /// DEVELOPMENT/MIGRATION ONLY, not Secret Zero: a JSON or YAML file mapping document keys to
    /// environment variable names (the old ENVIRONMENT source); values from the agent's environment.
    #[arg(long, env = env::PLAINTEXT_ENV, group = "source")]
    pub plaintext_env: Option<PathBuf>,

    /// With --plaintext-env: a dotenv file for the variables the environment does not set
    /// (the environment wins, as with the old tool).
    #[arg(long, env = env::ENV_FILE)]
    pub env_file: Option<PathBuf>,

    /// DEVELOPMENT/MIGRATION ONLY, not Secret Zero: serve every key of this plain Secret,
    /// NAMESPACE/NAME (or NAMESPACE/NAME#KEY: that key's JSON/YAML value as the document).
    #[arg(long, env = env::PLAINTEXT_SECRET, group = "source")]
    pub plaintext_secret: Option<String>,

    /// DEVELOPMENT/MIGRATION ONLY, not Secret Zero: serve every key of this ConfigMap,
    /// NAMESPACE/NAME (or NAMESPACE/NAME#KEY: that key's JSON/YAML value as the document).
    #[arg(long, env = env::PLAINTEXT_CONFIGMAP, group = "source")]
    pub plaintext_configmap: Option<String>,

    #[command(flatten)]
    pub transit: TransitArgs,

    /// What the plaintext must be [default: json]. It must agree with the Secret's
    /// secret-zero.dev/format annotation: the socket is bound before the Secret is read,
    /// so the annotation cannot change it.
    #[arg(long, env = env::FORMAT, value_enum)]
    pub format: Option<DocFormat>,

    /// Socket: a path (in a memory-backed emptyDir) or @NAME for the Linux abstract namespace.
    #[arg(long, env = env::SOCKET, value_parser = socket, default_value = env::DEFAULT_SOCKET)]
    pub socket: SocketSpec,

    /// Permissions of the socket file (octal).
    #[arg(long, env = env::SOCKET_MODE, value_parser = octal_mode, default_value = env::DEFAULT_SOCKET_MODE)]
    pub socket_mode: u32,

    /// A uid allowed to read from the socket (repeatable). Default: the agent's own uid.
    #[arg(
        long = "allow-uid",
        env = env::ALLOW_UID,
        value_delimiter = ','
    )]
    pub allow_uid: Vec<u32>,

    /// A gid allowed to read from the socket (repeatable).
    #[arg(
        long = "allow-gid",
        env = env::ALLOW_GID,
        value_delimiter = ','
    )]
    pub allow_gid: Vec<u32>,

    /// How many deliveries in all; each after the first is a fresh login and decrypt.
    #[arg(long, env = env::MAX_DELIVERIES, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_deliveries: u32,

    /// Connections of allowed peers open at once; a new one closes the oldest that has
    /// not sent its request yet (lowered to fit the open-file limit).
    #[arg(long, env = env::MAX_CONNECTIONS, default_value_t = env::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// How long a connection may take to send its request head before it is closed.
    #[arg(long, env = env::HEADER_READ_TIMEOUT, value_parser = duration, default_value = env::DEFAULT_HEADER_READ_TIMEOUT)]
    pub header_read_timeout: Duration,

    /// Exit 0 once the last delivery is made, instead of staying up answering 410.
    #[arg(long, env = env::EXIT_AFTER_DELIVERY, value_parser = EnvBool)]
    pub exit_after_delivery: bool,

    /// How long to retry transient Vault and Kubernetes faults (the start-up fetch, and a
    /// revoke, which also stops at the token's TTL).
    #[arg(long, env = env::RETRY_TIMEOUT, value_parser = duration, default_value = env::DEFAULT_RETRY_TIMEOUT)]
    pub retry_timeout: Duration,

    #[command(flatten)]
    pub vault: VaultArgs,

    #[command(flatten)]
    pub login: LoginArgs,

    #[command(flatten)]
    pub kube: KubeArgs,
}

impl ServeArgs {
    /// What the agent serves: `--format`, else JSON.
    pub fn format(&self) -> DocFormat {
        self.format.unwrap_or_default()
    }
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The agent's socket (path or @NAME).
    #[arg(long, env = env::SOCKET, value_parser = socket, default_value = env::DEFAULT_SOCKET)]
    pub socket: SocketSpec,

    /// Output format.
    #[arg(long, env = env::GET_FORMAT, value_enum, default_value_t = FetchFormat::Json)]
    pub format: FetchFormat,

    /// Print only this top-level key's value (strings without quotes). The agent checks
    /// the key first: a missing key consumes no delivery.
    #[arg(long, env = env::KEY)]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The agent's socket (path or @NAME).
    #[arg(long, env = env::SOCKET, value_parser = socket, default_value = env::DEFAULT_SOCKET)]
    pub socket: SocketSpec,
}

/// The value parser of every on/off flag's variable: what Kubernetes manifests write
/// (`"true"`, `"1"`, `"yes"`, `"on"` and their opposites, any case; empty is off). A
/// flag itself takes no value, so a bad value always comes from the variable, and the
/// error names it.
#[derive(Debug, Clone, Copy)]
pub struct EnvBool;

impl clap::builder::TypedValueParser for EnvBool {
    type Value = bool;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<bool, clap::Error> {
        let text = value.to_string_lossy();
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Ok(false);
        }
        // clap's own table (true/false, 1/0, yes/no, y/n, on/off, any case); only the
        // error is ours, to name the variable.
        match clap::builder::BoolishValueParser::new().parse_ref(
            cmd,
            arg,
            std::ffi::OsStr::new(trimmed),
        ) {
            Ok(on) => Ok(on),
            Err(_) => {
                let variable = arg
                    .and_then(|a| a.get_env())
                    .map(|v| v.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "the variable".into());
                let flag = arg
                    .and_then(|a| a.get_long())
                    .map(|l| format!(" (--{l})"))
                    .unwrap_or_default();
                Err(clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    format!(
                        "{variable}={text:?}{flag} is not on or off: write true or false (also 1/0, yes/no, on/off)\n"
                    ),
                )
                .with_cmd(cmd))
            }
        }
    }
}

/// "30s", "500ms", "2m".
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (use e.g. 500ms, 30s, 2m)"))
}

/// A socket path, or @NAME for the abstract namespace.
pub fn socket(text: &str) -> Result<SocketSpec, String> {
    <SocketSpec as std::str::FromStr>::from_str(text)
        .map_err(|e| crate::failure::Hinted::one_line(&e))
}

/// "0600", "600", "0o660".
pub fn octal_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim_start_matches("0o");
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("{text:?} is not an octal mode such as 0600"))?;
    if mode > 0o777 {
        return Err(format!("{text:?} is not a permission mode (at most 0777)"));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn modes_and_durations_parse() {
        assert_eq!(octal_mode("0600").unwrap(), 0o600);
        assert_eq!(octal_mode("660").unwrap(), 0o660);
        assert!(octal_mode("0800").is_err());
        assert!(octal_mode("7777").is_err());
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(duration("soon").is_err());
    }
}
