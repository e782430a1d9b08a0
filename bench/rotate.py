#!/usr/bin/env python3
"""`secret-zero rotate` at scale: 1,000 Secrets under one key in the Kubernetes API double.

    cargo build --release && cargo build --release -p secret-zero-testbed --bin kube-double
    bench/rotate.py [--runs 3] [--secrets 1000] [--batch-size 100] [--secret-zero PATH]

(Debug builds work too: the script takes target/release/* when present, else target/debug/*.)

The double holds all the Secrets, identity-bound to one derived Transit key on a real
OpenBao dev server; the rotator's token holds exactly manifests/vault/rotator.hcl. For
N = 10, 100 and 1,000 (a label selector picks the first N, so every run lists against
the full 1,000), each run rotates the key and rewraps the N ciphertexts. Reported per N
(median over --runs): wall time of the process, the rotate's own duration, rewrap
requests (checked against 1 + ceil(N / batch size)), all Vault requests, Kubernetes
requests (the rotate's count, checked against the double's own request log), and the
same for an immediate `--no-rotate` rerun, which must write nothing.
"""

import argparse
import base64
import http.client
import json
import math
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, binary, start_bao, start_double, stop, vault_call  # noqa: E402

KEY = "bench-key"
NAMESPACE = "bench"


class Bed:
    def __init__(self, work, key=KEY, derived=True):
        self.work = work
        self.double, info = start_double(work)
        self.kubeconfig = info["kubeconfig"]
        self.admin = info["admin_token"]
        url = info["url"].removeprefix("https://")
        self.kube_host, self.kube_port = url.rsplit(":", 1)
        self.tls = ssl.create_default_context(cafile=info["ca_file"])
        self.kube = None

        self.bao, self.addr, self.root = start_bao(work)
        self.vault("POST", "sys/mounts/transit", {"type": "transit"})
        self.vault("POST", f"transit/keys/{key}", {"derived": True} if derived else {})
        with open(os.path.join(ROOT, "manifests", "vault", "rotator.hcl")) as f:
            self.vault("POST", "sys/policies/acl/rotator", {"policy": f.read()})
        token = self.vault("POST", "auth/token/create",
                           {"policies": ["rotator"], "no_default_policy": True, "ttl": "1h"})
        self.token_file = os.path.join(work, "rotator-token")
        with open(self.token_file, "w") as f:
            f.write(token["auth"]["client_token"])

    def vault(self, method, path, body=None):
        return vault_call(self.addr, self.root, method, path, body)

    def kube_call(self, method, path, body=None):
        for attempt in range(2):
            if self.kube is None:
                self.kube = http.client.HTTPSConnection(self.kube_host, int(self.kube_port), context=self.tls)
            try:
                headers = {"Authorization": "Bearer " + self.admin, "Accept": "application/json"}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    headers["Content-Type"] = "application/json"
                self.kube.request(method, path, body=data, headers=headers)
                resp = self.kube.getresponse()
                return resp.status, json.loads(resp.read() or b"null")
            except (http.client.HTTPException, OSError):
                self.kube.close()
                self.kube = None
                if attempt:
                    raise

    def kube_requests(self):
        return self.kube_call("GET", "/kube-double/v1/requests")[1]["count"]

    def seed(self, count):
        """`count` identity-bound Secrets; the first 10 and first 100 carry a label each."""
        names = [f"app-{i:04d}" for i in range(count)]
        docs = [json.dumps({"db_password": os.urandom(12).hex(), "i": i}).encode() for i in range(count)]
        results = []
        # OpenBao refuses a request of more than 1,000 JSON strings: 200 items at a time.
        for at in range(0, count, 200):
            out = self.vault("POST", f"transit/encrypt/{KEY}", {"batch_input": [
                {"plaintext": base64.b64encode(doc).decode(),
                 "context": base64.b64encode(f"{NAMESPACE}/{name}".encode()).decode()}
                for name, doc in zip(names[at:at + 200], docs[at:at + 200])]})
            results.extend(out["data"]["batch_results"])
        for i, (name, result) in enumerate(zip(names, results)):
            labels = {"app.kubernetes.io/managed-by": "secret-zero"}
            if i < 10:
                labels["first10"] = "yes"
            if i < 100:
                labels["first100"] = "yes"
            status, answer = self.kube_call("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": name, "labels": labels, "annotations": {
                    "secret-zero.dev/transit-mount": "transit",
                    "secret-zero.dev/transit-key": KEY,
                    "secret-zero.dev/binding": "identity",
                    "secret-zero.dev/format": "json"}},
                "data": {"ciphertext": base64.b64encode(result["ciphertext"].encode()).decode()},
            })
            assert status == 201, answer

    def close(self):
        if self.kube is not None:
            self.kube.close()
        stop(self.bao, self.double)


def rotate(bed, exe, extra):
    before = bed.kube_requests()
    start = time.perf_counter()
    proc = subprocess.run(
        [exe, "rotate", "--transit-key", KEY, "--namespace", NAMESPACE, "--vault-addr", bed.addr,
         "--vault-token-file", bed.token_file, "--kubeconfig", bed.kubeconfig,
         "--log-level", "warn", *extra],
        capture_output=True, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "SECRET_ZERO_"))},
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"rotate exited {proc.returncode}:\n{proc.stderr}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    double_count = bed.kube_requests() - before  # the back-door API is not in the log
    assert double_count == summary["kube_requests"], (double_count, summary)
    return wall, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--secret-zero", default=None)
    args = parser.parse_args()
    exe = args.secret_zero or binary("secret-zero")

    with tempfile.TemporaryDirectory() as work:
        bed = Bed(work)
        try:
            t = time.perf_counter()
            bed.seed(args.secrets)
            print(f"seeded {args.secrets} Secrets in {time.perf_counter() - t:.1f}s; binary {exe}", file=sys.stderr)
            rows = []
            for n, selector in ((10, ["--selector", "first10=yes"]), (100, ["--selector", "first100=yes"]),
                                (args.secrets, [])):
                walls, durations, summaries = [], [], []
                for _ in range(args.runs):
                    wall, summary = rotate(bed, exe, [*selector, "--batch-size", str(args.batch_size)])
                    assert summary["rewrapped"] == n and summary["failed"] == 0, summary
                    bound = 1 + math.ceil(n / args.batch_size)
                    assert summary["rewrap_requests"] <= bound, (summary["rewrap_requests"], bound)
                    walls.append(wall)
                    durations.append(summary["duration_ms"])
                    summaries.append(summary)
                idle_wall, idle = rotate(bed, exe, [*selector, "--no-rotate"])
                assert idle["rewrapped"] == 0 and idle["unchanged"] == n, idle
                last = summaries[-1]
                rows.append({
                    "n": n,
                    "wall_s_median": round(statistics.median(walls), 3),
                    "wall_s_min": round(min(walls), 3),
                    "wall_s_max": round(max(walls), 3),
                    "rotate_duration_ms_median": statistics.median(durations),
                    "rewrap_requests": last["rewrap_requests"],
                    "rewrap_bound": 1 + math.ceil(n / args.batch_size),
                    "vault_requests": last["vault_requests"],
                    "kube_requests": last["kube_requests"],
                    "no_rotate_rerun_wall_s": round(idle_wall, 3),
                    "no_rotate_rerun_kube_requests": idle["kube_requests"],
                    "no_rotate_rerun_vault_requests": idle["vault_requests"],
                })
            print(f"{'N':>6} {'wall s (median, min-max)':>26} {'rewraps':>8} {'bound':>6} {'vault':>6} {'kube':>6}   rerun --no-rotate (s, kube, vault)")
            for r in rows:
                print(f"{r['n']:>6} {r['wall_s_median']:>10.3f} ({r['wall_s_min']:.3f}-{r['wall_s_max']:.3f}) "
                      f"{r['rewrap_requests']:>8} {r['rewrap_bound']:>6} {r['vault_requests']:>6} {r['kube_requests']:>6}"
                      f"   {r['no_rotate_rerun_wall_s']:.3f}, {r['no_rotate_rerun_kube_requests']}, {r['no_rotate_rerun_vault_requests']}")
            print(json.dumps({"secrets_in_double": args.secrets, "batch_size": args.batch_size, "binary": exe, "rows": rows}))
        finally:
            bed.close()


if __name__ == "__main__":
    main()
