#!/usr/bin/env python3
"""`secret-zero rotate` over 100,000 Secrets: time, peak RSS, Vault and Kubernetes requests.

    cargo build --release && cargo build --release -p secret-zero-testbed --bin kube-double
    bench/rotate_scale.py [--secrets 100000] [--page-size 500] [--batch-size 100]

The API double (a separate process) is seeded through its test-bed API with N labelled
Secrets in one namespace, all holding the same unbound ciphertext of a real OpenBao dev
server's Transit key (seeding 100,000 distinct identity-bound ciphertexts would measure
the seeding, not the rotation). One run rotates the key, lists the Secrets page by page,
rewraps all N and writes each back. The rotator's token holds exactly
manifests/vault/rotator.hcl. Measured: wall time of the process, its peak RSS (VmHWM
from the report, and GNU time's %M when /usr/bin/time exists), Vault requests, rewrap
requests, Kubernetes requests (checked against the double's own log) and list pages;
goal: <= 60 s and <= 64 MiB. Prints one line of JSON at the end.
"""

import argparse
import base64
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, binary, start_bao, start_double, stop, vault_call  # noqa: E402
from rotate import Bed as SmallBed  # noqa: E402

KEY = "scale-key"
NAMESPACE = "scale"
GOAL_SECONDS = 60
GOAL_MIB = 64


class Bed(SmallBed):
    """rotate.py's bed with a plain key: 100,000 Secrets share one unbound ciphertext."""

    def __init__(self, work):
        super().__init__(work, key=KEY, derived=False)

    def seed_bulk(self, count):
        doc = json.dumps({"db_password": os.urandom(12).hex(), "port": 5432}).encode()
        out = self.vault("POST", f"transit/encrypt/{KEY}", {"plaintext": base64.b64encode(doc).decode()})
        ciphertext = out["data"]["ciphertext"]
        status, answer = self.kube_call("POST", "/kube-double/v1/secrets", {
            "namespace": NAMESPACE, "prefix": "app-", "count": count,
            "secret": {
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"labels": {"app.kubernetes.io/managed-by": "secret-zero"}, "annotations": {
                    "secret-zero.dev/transit-mount": "transit",
                    "secret-zero.dev/transit-key": KEY,
                    "secret-zero.dev/binding": "none",
                    "secret-zero.dev/format": "json"}},
                "data": {"ciphertext": base64.b64encode(ciphertext.encode()).decode()},
            }})
        assert status == 201 and answer["created"] == count, answer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--secrets", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--secret-zero", default=None)
    args = parser.parse_args()
    exe = args.secret_zero or binary("secret-zero")

    with tempfile.TemporaryDirectory() as work:
        bed = Bed(work)
        try:
            t = time.perf_counter()
            bed.seed_bulk(args.secrets)
            print(f"seeded {args.secrets} Secrets in {time.perf_counter() - t:.1f}s; binary {exe}", file=sys.stderr)
            before = bed.kube_requests()
            timer = shutil.which("time") and os.path.exists("/usr/bin/time")
            rss_file = os.path.join(work, "rss")
            cmd = [exe, "rotate", "--transit-key", KEY, "--namespace", NAMESPACE, "--vault-addr", bed.addr,
                   "--vault-token-file", bed.token_file, "--kubeconfig", bed.kubeconfig,
                   "--page-size", str(args.page_size), "--batch-size", str(args.batch_size),
                   "--log-level", "warn"]
            if timer:
                cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env={
                k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "SECRET_ZERO_"))})
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"rotate exited {proc.returncode}:\n{proc.stderr[-4000:]}")
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
            double_count = bed.kube_requests() - before
            assert double_count == summary["kube_requests"], (double_count, summary)
            assert summary["rewrapped"] == args.secrets and summary["failed"] == 0, summary
            pages = math.ceil(args.secrets / args.page_size)
            assert summary["list_pages"] == pages, (summary["list_pages"], pages)
            peak_kib = summary["peak_rss_kib"]
            time_kib = int(open(rss_file).read().split()[-1]) if timer else None
            row = {
                "secrets": args.secrets,
                "page_size": args.page_size,
                "batch_size": args.batch_size,
                "binary": exe,
                "wall_s": round(wall, 2),
                "rotate_duration_ms": summary["duration_ms"],
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "peak_rss_mib_gnu_time": round(time_kib / 1024, 1) if time_kib else None,
                "vault_requests": summary["vault_requests"],
                "rewrap_requests": summary["rewrap_requests"],
                "kube_requests": summary["kube_requests"],
                "list_pages": summary["list_pages"],
                "goal_met": wall <= GOAL_SECONDS and peak_kib / 1024 <= GOAL_MIB,
            }
            print(f"{args.secrets} Secrets: {row['wall_s']} s (goal <= {GOAL_SECONDS}), peak RSS "
                  f"{row['peak_rss_mib']} MiB (goal <= {GOAL_MIB}); Vault {row['vault_requests']} requests "
                  f"({row['rewrap_requests']} rewraps), Kubernetes {row['kube_requests']} "
                  f"({row['list_pages']} list pages + {args.secrets} writes)", file=sys.stderr)
            print(json.dumps(row))
        finally:
            bed.close()


if __name__ == "__main__":
    main()
