//! Documented process exit codes: a contract for scripts and kubelet, shared by the
//! secret-zero binary and applications that want to exit the way `secret-zero get`
//! does. They are listed in docs/exit-codes.md and `--help`.

/// Success.
pub const OK: i32 = 0;
/// A bug: something that should not happen did.
pub const INTERNAL: i32 = 1;
/// The command line is wrong (unknown flag, missing value).
pub const USAGE: i32 = 2;
/// An input we cannot use: a missing or malformed file, document or setting.
pub const INPUT: i32 = 3;
/// Vault refused the login (role, audience, expired or foreign token).
pub const VAULT_AUTH: i32 = 4;
/// Vault refused an operation: permission denied, bad request, no such key.
pub const VAULT_DENIED: i32 = 5;
/// Vault could not be reached, is sealed, failed TLS, or kept failing after retries.
pub const VAULT_UNAVAILABLE: i32 = 6;
/// The Kubernetes API refused: unauthorized, forbidden or not found.
pub const KUBE_DENIED: i32 = 7;
/// A Kubernetes write lost a race (409) that retries did not settle.
pub const KUBE_CONFLICT: i32 = 8;
/// The Kubernetes API could not be reached or kept failing.
pub const KUBE_UNAVAILABLE: i32 = 9;
/// `get`: the agent refused this process (403: uid/gid not allowed).
pub const AGENT_REFUSED: i32 = 10;
/// `get`: the agent has no delivery left (410).
pub const AGENT_GONE: i32 = 11;
/// `get`/`probe`: no agent answers on the socket, or it is not ready.
pub const AGENT_UNREACHABLE: i32 = 12;
/// `serve`: the socket cannot be bound (directory missing or read-only, a live
/// agent already on it); `webhook`: its listen address cannot be bound.
pub const SOCKET: i32 = 13;
/// `rotate`: some Secrets could not be read, rewrapped or written (each named in
/// the log); the others were. Nothing was retired.
pub const SECRETS_FAILED: i32 = 14;
/// `rotate --retire` refused: some Secret under the key, in some namespace, is
/// still behind the latest version (each named in the log). Nothing was retired.
pub const RETIRE_REFUSED: i32 = 15;
/// `audit`: stray pods found: annotated for injection but without the agent, or
/// injected with another agent image than expected (each listed in the report).
pub const AUDIT_STRAYS: i32 = 16;
