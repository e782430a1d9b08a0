//! authentication.k8s.io/v1 TokenReview: always 201, the verdict in `status`.

use serde_json::{Value, json};

use super::authn;
use super::decode;
use super::http::{ApiRequest, ApiResponse};
use super::state::{Cluster, Double};
use super::status;

pub(crate) fn create(double: &Double, cluster: &Cluster, req: &ApiRequest) -> ApiResponse {
    let body = match decode::object(req, "TokenReview", "authentication.k8s.io/v1") {
        Ok(body) => body,
        Err(error) => return error,
    };
    let token = body["spec"]["token"].as_str().unwrap_or("");
    if token.is_empty() {
        return status::bad_request("token is required for TokenReview in authentication");
    }
    let audiences: Vec<String> = decode::strings(&body["spec"]["audiences"]);

    // Field presence follows the Go types' `omitempty`: a failed review has no
    // `authenticated` and no `audiences`, only an empty `user` and the `error`.
    let status = match authn::authenticate(double, cluster, token, &audiences) {
        Ok(ok) => json!({
            "authenticated": true,
            "user": ok.user.user_info(),
            "audiences": ok.audiences,
        }),
        Err(error) => json!({ "user": {}, "error": error }),
    };
    let mut spec = json!({ "token": token });
    if !audiences.is_empty() {
        spec["audiences"] = json!(audiences);
    }
    ApiResponse::json(
        201,
        &json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": { "creationTimestamp": Value::Null },
            "spec": spec,
            "status": status,
        }),
    )
}
