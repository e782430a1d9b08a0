#!/bin/sh
# Read the application's secrets from the secret-zero agent, once, at start-up, then
# exec the application with them in its environment (for apps that only read env vars).
#
#   SECRET_ZERO_SOCKET=/run/secret-zero/agent.sock ./read_secret.sh [curl] [-- APP ARGS...]
#
# Two ways, both shown here:
#   secret-zero get --format dotenv   (default: the same binary as the sidecar)
#   curl --unix-socket                (with "curl" as first argument; asks the agent for
#                                      ?format=dotenv, so no JSON parsing in the shell)
# The dotenv text is kept in a shell variable, never in a file. Prints the names of the
# variables received, never their values. Exit codes, as `secret-zero get`: 10 refused
# (403), 11 no delivery left (410), 12 agent unreachable or not ready.
set -eu

socket="${SECRET_ZERO_SOCKET:-/run/secret-zero/agent.sock}"
way=get
if [ "${1:-}" = curl ]; then way=curl; shift; fi
[ "${1:-}" = -- ] && shift

if [ "$way" = curl ]; then
    # -w appends the status on its own line; the body is the dotenv text or a JSON error.
    answer=$(curl -sS --max-time 60 --unix-socket "$socket" -w '\n%{http_code}' \
        'http://localhost/v1/secret?format=dotenv' 2>&1) || {
        echo "read_secret.sh: cannot reach the agent on $socket: $answer" >&2
        exit 12
    }
    status=${answer##*
}
    env_text=${answer%
*}
    case "$status" in
        200) ;;
        403) echo "read_secret.sh: refused by the agent (403): $env_text" >&2; exit 10 ;;
        410) echo "read_secret.sh: no delivery left (410): the secrets were already read: $env_text" >&2; exit 11 ;;
        503) echo "read_secret.sh: the agent is not ready (503): $env_text" >&2; exit 12 ;;
        *)   echo "read_secret.sh: the agent answered HTTP $status: $env_text" >&2; exit 1 ;;
    esac
else
    # secret-zero get prints its own one-line error and exits 10/11/12.
    status=0
    env_text=$(secret-zero get --socket "$socket" --format dotenv) || status=$?
    if [ "$status" -ne 0 ]; then
        case "$status" in
            10) echo "read_secret.sh: refused by the agent (403)" >&2 ;;
            11) echo "read_secret.sh: no delivery left (410): the secrets were already read" >&2 ;;
            12) echo "read_secret.sh: cannot reach the agent on $socket" >&2 ;;
        esac
        exit "$status"
    fi
fi

# KEY='value' lines, quoted by the agent so that sourcing them is safe.
set -a
eval "$env_text"
set +a
names=$(printf '%s\n' "$env_text" | sed -n "s/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p" | sort | tr '\n' ' ')
unset env_text answer
echo "read_secret.sh: received keys: ${names% }"

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
