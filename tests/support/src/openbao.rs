//! A real OpenBao dev server per test.
//!
//! Each [`OpenBao`] runs its own `bao server -dev` on a free port with a random root
//! token and a private `HOME`, so tests running in parallel never share a token file
//! or any server state. The process is killed on drop, even when the test panics, and
//! its log is printed when the test fails.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cmd::{Cmd, Process};
use crate::tools;
use crate::wait::Poll;

/// A running OpenBao dev server.
pub struct OpenBao {
    process: Process,
    addr: String,
    tls_addr: Option<String>,
    root_token: String,
    dir: tempfile::TempDir,
    agent: ureq::Agent,
}

/// Files for an extra HTTPS listener whose certificate the test made itself.
pub struct TlsListener<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

/// What a failed API call returned.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub body: String,
}

impl OpenBao {
    /// Start a plain-HTTP dev server.
    pub fn start() -> OpenBao {
        Self::start_with(None)
    }

    /// Start a dev server that also serves HTTPS with the given certificate; the
    /// HTTP listener stays for set-up.
    pub fn start_tls(tls: TlsListener<'_>) -> OpenBao {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<TlsListener<'_>>) -> OpenBao {
        // A free port can be taken by another test between our probe and bao's bind;
        // try a few times rather than fail on a race nobody can fix.
        let mut last_log = String::new();
        for _ in 0..5 {
            match Self::try_start(tls.as_ref()) {
                Ok(bao) => return bao,
                Err(log) => last_log = log,
            }
        }
        panic!("OpenBao dev server did not start; its log:\n{last_log}");
    }

    fn try_start(tls: Option<&TlsListener<'_>>) -> Result<OpenBao, String> {
        let dir = tempfile::tempdir().expect("temp dir for OpenBao");
        let port = free_port();
        let addr = format!("http://127.0.0.1:{port}");
        let root_token = format!("root-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));

        let mut args = vec![
            "server".to_string(),
            "-dev".to_string(),
            "-dev-no-store-token".to_string(),
            format!("-dev-root-token-id={root_token}"),
            format!("-dev-listen-address=127.0.0.1:{port}"),
        ];
        let mut tls_addr = None;
        if let Some(tls) = tls {
            let tls_port = free_port();
            let cert = dir.path().join("tls-cert.pem");
            let key = dir.path().join("tls-key.pem");
            std::fs::write(&cert, tls.cert_pem).unwrap();
            std::fs::write(&key, tls.key_pem).unwrap();
            let config = dir.path().join("tls.hcl");
            std::fs::write(
                &config,
                format!(
                    "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  tls_cert_file = \"{}\"\n  tls_key_file = \"{}\"\n}}\n",
                    cert.display(),
                    key.display()
                ),
            )
            .unwrap();
            args.push(format!("-config={}", config.display()));
            tls_addr = Some(format!("https://127.0.0.1:{tls_port}"));
        }

        let process = Cmd::new(tools::bao())
            .args(&args)
            .home(dir.path())
            .log_to(dir.path().join("bao.log"))
            .spawn();

        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut bao = OpenBao {
            process,
            addr,
            tls_addr,
            root_token,
            dir,
            agent,
        };
        let started = Poll::within(Duration::from_secs(15)).until(|| {
            if bao.process.exited().is_some() {
                return Some(false);
            }
            let healthy = bao
                .agent
                .get(format!("{}/v1/sys/health", bao.addr))
                .call()
                .is_ok_and(|r| r.status() == 200);
            healthy.then_some(true)
        });
        match started {
            Some(true) => Ok(bao),
            Some(false) => Err(bao.log()),
            None => Err(format!("not healthy after 15 s\n{}", bao.log())),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `https://127.0.0.1:PORT` of the TLS listener, for servers started with [`start_tls`](Self::start_tls).
    pub fn tls_addr(&self) -> &str {
        self.tls_addr
            .as_deref()
            .expect("server was started without TLS")
    }

    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// A private directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("bao.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Call the HTTP API as root. `body` None sends no body.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ApiError> {
        self.api_as(&self.root_token, method, path, body)
    }

    /// Call the HTTP API with a given token.
    pub fn api_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        let url = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("X-Vault-Token", token).call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("X-Vault-Token", token)
                .call(),
            ("LIST", _) => self
                .agent
                .get(format!("{url}?list=true"))
                .header("X-Vault-Token", token)
                .call(),
            ("POST", body) | ("PUT", body) => self
                .agent
                .post(&url)
                .header("X-Vault-Token", token)
                .send_json(body.unwrap_or_else(|| json!({}))),
            (other, _) => panic!("unsupported method {other}"),
        };
        let mut resp = result.map_err(|e| ApiError {
            status: 0,
            body: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(ApiError { status, body: text });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Like [`api`](Self::api) but panics with the server's answer on failure.
    pub fn write(&self, path: &str, body: Value) -> Value {
        self.api("POST", path, Some(body))
            .unwrap_or_else(|e| panic!("POST {path} failed: {} {}", e.status, e.body))
    }

    /// GET as root, panicking on failure.
    pub fn read(&self, path: &str) -> Value {
        self.api("GET", path, None)
            .unwrap_or_else(|e| panic!("GET {path} failed: {} {}", e.status, e.body))
    }

    /// Mount the transit engine at `mount`.
    pub fn enable_transit(&self, mount: &str) {
        self.write(&format!("sys/mounts/{mount}"), json!({"type": "transit"}));
    }

    /// Create a transit key (aes256-gcm96); `derived` makes it need a `context`.
    pub fn create_key(&self, mount: &str, name: &str, derived: bool) {
        self.write(
            &format!("{mount}/keys/{name}"),
            json!({"derived": derived, "type": "aes256-gcm96"}),
        );
    }

    /// Enable an auth method of `kind` at `path`.
    pub fn enable_auth(&self, path: &str, kind: &str) {
        self.write(&format!("sys/auth/{path}"), json!({"type": kind}));
    }

    /// Write an ACL policy.
    pub fn write_policy(&self, name: &str, hcl: &str) {
        self.write(&format!("sys/policies/acl/{name}"), json!({"policy": hcl}));
    }

    /// A child token with the given policies; returns the client token.
    pub fn create_token(&self, policies: &[&str], ttl: &str, num_uses: u32) -> String {
        let resp = self.write(
            "auth/token/create",
            json!({"policies": policies, "ttl": ttl, "num_uses": num_uses, "no_default_policy": false}),
        );
        resp["auth"]["client_token"].as_str().unwrap().to_string()
    }

    /// Encrypt `plaintext` as root; returns the `vault:vN:` ciphertext.
    pub fn encrypt(
        &self,
        mount: &str,
        key: &str,
        plaintext: &[u8],
        context: Option<&str>,
    ) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut body = json!({"plaintext": b64.encode(plaintext)});
        if let Some(ctx) = context {
            body["context"] = json!(b64.encode(ctx));
        }
        let resp = self.write(&format!("{mount}/encrypt/{key}"), body);
        resp["data"]["ciphertext"].as_str().unwrap().to_string()
    }

    /// Path of the `bao` binary, for tests that run the CLI.
    pub fn bin(&self) -> PathBuf {
        tools::bao()
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.process.kill();
        if std::thread::panicking() {
            eprintln!("---- OpenBao log ({}) ----\n{}", self.addr, self.log());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}
