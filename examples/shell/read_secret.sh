#!/bin/sh
# Read the application's secrets from the secret-zero agent, once, at start-up, into
# shell variables that are NOT exported: the commands this script runs do not inherit
# them (`env` in a child shows none of them, and neither this shell's nor a child's
# /proc/PID/environ holds them). Hand a value to the one command that needs it on its
# standard input, never in its arguments (anyone who can list processes reads argv).
#
#   SECRET_ZERO_SOCKET=/run/secret-zero/agent.sock ./read_secret.sh [curl] [KEY [-- COMMAND ARGS...]]
#
#   no KEY              print the names of the keys received, never a value
#   KEY                 print KEY=value (a demonstration: a real script would not)
#   KEY -- COMMAND...   run COMMAND with that one value on its standard input only
#
# Two ways to ask, both shown here:
#   secret-zero get --format dotenv   (default: the same binary as the sidecar)
#   curl --unix-socket                (with "curl" as first argument; asks the agent for
#                                      ?format=dotenv, so no JSON parsing in the shell)
# The dotenv text is kept in a shell variable, never in a file. Exit codes, as
# `secret-zero get`: 10 refused (403), 11 no delivery left (410), 12 agent unreachable
# or not ready.
set -eu

_sz_socket="${SECRET_ZERO_SOCKET:-/run/secret-zero/agent.sock}"
_sz_way=get
if [ "${1:-}" = curl ]; then _sz_way=curl; shift; fi
_sz_key=
if [ "$#" -gt 0 ] && [ "$1" != -- ]; then _sz_key=$1; shift; fi
if [ "$#" -gt 0 ]; then
    [ "$1" = -- ] && [ -n "$_sz_key" ] && [ "$#" -gt 1 ] || {
        echo "usage: read_secret.sh [curl] [KEY [-- COMMAND ARGS...]]" >&2
        exit 2
    }
    shift
fi

if [ "$_sz_way" = curl ]; then
    # -w appends the status on its own line; the body is the dotenv text or a JSON error.
    _sz_answer=$(curl -sS --max-time 60 --unix-socket "$_sz_socket" -w '\n%{http_code}' \
        'http://localhost/v1/secret?format=dotenv' 2>&1) || {
        echo "read_secret.sh: cannot reach the agent on $_sz_socket: $_sz_answer" >&2
        exit 12
    }
    _sz_status=${_sz_answer##*
}
    _sz_env_text=${_sz_answer%
*}
    case "$_sz_status" in
        200) ;;
        403) echo "read_secret.sh: refused by the agent (403): $_sz_env_text" >&2; exit 10 ;;
        410) echo "read_secret.sh: no delivery left (410): the secrets were already read: $_sz_env_text" >&2; exit 11 ;;
        503) echo "read_secret.sh: the agent is not ready (503): $_sz_env_text" >&2; exit 12 ;;
        *)   echo "read_secret.sh: the agent answered HTTP $_sz_status: $_sz_env_text" >&2; exit 1 ;;
    esac
else
    # secret-zero get prints its own one-line error and exits 10/11/12.
    _sz_status=0
    _sz_env_text=$(secret-zero get --socket "$_sz_socket" --format dotenv) || _sz_status=$?
    if [ "$_sz_status" -ne 0 ]; then
        case "$_sz_status" in
            10) echo "read_secret.sh: refused by the agent (403)" >&2 ;;
            11) echo "read_secret.sh: no delivery left (410): the secrets were already read" >&2 ;;
            12) echo "read_secret.sh: cannot reach the agent on $_sz_socket" >&2 ;;
        esac
        exit "$_sz_status"
    fi
fi

# KEY='value' lines, quoted by the agent so that evaluating them is safe. Without
# `set -a` they become plain shell variables. A key named like a variable that is
# already in the environment (PATH, HOME, ...) would replace it and stay exported, so
# such a document is refused. This script's own variables start with _sz_.
_sz_names=$(printf '%s\n' "$_sz_env_text" | sed -n "s/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p" | sort)
_sz_exported=$(env | sed -n "s/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p")
for _sz_name in $_sz_names; do
    for _sz_taken in $_sz_exported; do
        if [ "$_sz_name" = "$_sz_taken" ]; then
            echo "read_secret.sh: key $_sz_name is already an environment variable; it would be exported" >&2
            exit 1
        fi
    done
done
eval "$_sz_env_text"
unset _sz_env_text _sz_answer _sz_exported

if [ -z "$_sz_key" ]; then
    echo "read_secret.sh: received keys: $(echo $_sz_names)"
    exit 0
fi
case " $(echo $_sz_names) " in
    *" $_sz_key "*) ;;
    *) echo "read_secret.sh: the document has no key $_sz_key" >&2; exit 1 ;;
esac
eval "_sz_value=\${$_sz_key}"
if [ "$#" -eq 0 ]; then
    printf '%s=%s\n' "$_sz_key" "$_sz_value"
    exit 0
fi
# printf is a shell builtin: the value is in no process's argv or environment.
printf '%s' "$_sz_value" | "$@"
