//! The test-bed endpoints under `/kube-double/v1/`, for peers that run the double as a
//! separate process (benchmarks, shell scripts) and need what in-process tests get
//! from [`KubeDouble`](super::KubeDouble) methods. Admin token only; not counted in
//! the request log, because they are not Kubernetes requests.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `POST /kube-double/v1/serviceaccounts` | `{"namespace", "name"}` | `{"uid"}` |
//! | `DELETE /kube-double/v1/serviceaccounts/NS/NAME` | | `{}` |
//! | `POST /kube-double/v1/grants` | `{"namespace", "serviceAccount", "rule": {"verbs", "resources", "resourceNames", "clusterWide"}}` | `{}` |
//! | `POST /kube-double/v1/tokens` | `{"namespace", "serviceAccount", "audiences", "expirationSeconds"}` | `{"token"}` (no 10-minute floor) |
//! | `GET /kube-double/v1/requests` | | `{"count", "requests": ["VERB PATH", ...]}` |
//! | `POST /kube-double/v1/secrets` | `{"namespace", "prefix", "count", "secret"}` | `{"created"}`: `count` copies of the Secret `secret`, named PREFIX000000, PREFIX000001, ... (for benchmarks: 100,000 Secrets in a second) |

use serde_json::{Value, json};

use super::admin;
use super::decode;
use super::http::{ApiRequest, ApiResponse};
use super::rule::Rule;
use super::secret_object;
use super::state::Double;
use super::status;

pub(crate) const PREFIX: &str = "/kube-double/v1/";

pub(crate) fn handle(double: &Double, req: &ApiRequest, path: &str) -> ApiResponse {
    match req.bearer() {
        None => return status::unauthorized(),
        Some(token) if token != double.admin_token => {
            return status::forbidden_path("the kube double's test-bed API needs the admin token");
        }
        Some(_) => {}
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let text = |key: &str| body[key].as_str().unwrap_or("").to_string();
    match (
        req.method.as_str(),
        path.split('/').collect::<Vec<_>>().as_slice(),
    ) {
        ("POST", ["serviceaccounts"]) => {
            let (ns, name) = (text("namespace"), text("name"));
            if ns.is_empty() || name.is_empty() {
                return status::bad_request("namespace and name are required");
            }
            let uid = double.cluster().create_service_account(&ns, &name);
            ApiResponse::json(201, &json!({ "uid": uid }))
        }
        ("DELETE", ["serviceaccounts", ns, name]) => {
            double
                .cluster()
                .service_accounts
                .remove(&(ns.to_string(), name.to_string()));
            ApiResponse::json(200, &json!({}))
        }
        ("POST", ["grants"]) => {
            let rule: Rule = match serde_json::from_value(body["rule"].clone()) {
                Ok(rule) => rule,
                Err(e) => return status::bad_request(&format!("rule: {e}")),
            };
            admin::grant(double, &text("namespace"), &text("serviceAccount"), rule);
            ApiResponse::json(201, &json!({}))
        }
        ("POST", ["tokens"]) => {
            let audiences: Vec<String> = decode::strings(&body["audiences"]);
            let expiration = body["expirationSeconds"].as_i64().unwrap_or(3600);
            let token = admin::issue_token(
                double,
                &text("namespace"),
                &text("serviceAccount"),
                &audiences,
                expiration,
            );
            ApiResponse::json(201, &json!({ "token": token }))
        }
        ("POST", ["secrets"]) => {
            let (ns, prefix) = (text("namespace"), text("prefix"));
            let count = body["count"].as_u64().unwrap_or(0);
            if ns.is_empty() {
                return status::bad_request("namespace is required");
            }
            let mut cluster = double.cluster();
            for i in 0..count {
                let name = format!("{prefix}{i:06}");
                let mut secret = body["secret"].clone();
                secret["metadata"]["name"] = json!(name);
                secret["metadata"]["namespace"] = json!(ns);
                let new = match secret_object::from_client(
                    secret,
                    &ns,
                    None,
                    secret_object::Unknown::Reject,
                ) {
                    Ok(new) => new,
                    Err(e) => return e,
                };
                cluster.store(|c| &mut c.secrets, &ns, &name, new);
            }
            ApiResponse::json(201, &json!({ "created": count }))
        }
        ("GET", ["requests"]) => {
            let cluster = double.cluster();
            ApiResponse::json(
                200,
                &json!({ "count": cluster.log.len(), "requests": cluster.log }),
            )
        }
        _ => ApiResponse::text(404, "404 page not found\n"),
    }
}
