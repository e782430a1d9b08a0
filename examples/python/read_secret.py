#!/usr/bin/env python3
"""Read the application's secrets from the secret-zero agent, once, at start-up.

Standard library only: http.client over an AF_UNIX socket.

    SECRET_ZERO_SOCKET=/run/secret-zero/agent.sock python3 read_secret.py [KEY]

Prints the names of the keys received, never their values (unless KEY is given).
Exit codes, as `secret-zero get`: 10 refused (403), 11 no delivery left (410),
12 agent unreachable or not ready, 1 anything else.
"""

import http.client
import json
import os
import socket
import sys

DEFAULT_SOCKET = "/run/secret-zero/agent.sock"


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection over a Unix socket (a path, or @NAME for the abstract namespace)."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = "\0" + path[1:] if path.startswith("@") else path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


class AgentError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def read_secrets(path):
    """GET /v1/secret once; returns the document as a dict (kept in memory only)."""
    conn = UnixHTTPConnection(path)
    try:
        conn.request("GET", "/v1/secret")
        resp = conn.getresponse()
        body = resp.read()
    except (FileNotFoundError, ConnectionRefusedError, socket.timeout, OSError) as e:
        raise AgentError(12, f"cannot reach the agent on {path}: {e}") from None
    finally:
        conn.close()
    if resp.status == 200:
        return json.loads(body)
    try:
        detail = json.loads(body)
        message = detail.get("error", "") + (f" (hint: {detail['hint']})" if detail.get("hint") else "")
    except ValueError:
        message = f"HTTP {resp.status}"
    if resp.status == 403:
        raise AgentError(10, f"refused by the agent (403): {message}")
    if resp.status == 410:
        raise AgentError(11, f"no delivery left (410): the secrets were already read: {message}")
    if resp.status == 503:
        raise AgentError(12, f"the agent is not ready (503): {message}")
    raise AgentError(1, f"the agent answered HTTP {resp.status}: {message}")


def main():
    path = os.environ.get("SECRET_ZERO_SOCKET") or DEFAULT_SOCKET
    try:
        secrets = read_secrets(path)
    except AgentError as e:
        print(f"read_secret.py: {e}", file=sys.stderr)
        return e.code
    print(f"read_secret.py: received {len(secrets)} keys: {', '.join(sorted(secrets))}")
    if len(sys.argv) > 1:
        name = sys.argv[1]
        if name not in secrets:
            print(f"read_secret.py: no key {name!r} in the document", file=sys.stderr)
            return 3
        value = secrets[name]
        print(f"{name}={value if isinstance(value, str) else json.dumps(value)}")
    # ... start the application with `secrets`, never writing them to disk or the environment.
    return 0


if __name__ == "__main__":
    sys.exit(main())
