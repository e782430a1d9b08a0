#!/usr/bin/env python3
"""Latency of one admission review through `secret-zero webhook`, p50/p99.

Starts the real binary on a free port with a throwaway CA (openssl), then sends the
AdmissionReviews of tests/webhook/ over HTTPS and times each answer at the client:

- keep-alive: one connection, reviews one after another (what the API server does:
  it keeps its connections to a webhook open);
- new connection: a full TLS handshake per review (the worst case, e.g. right after
  the API server or the webhook restarted);
- concurrent: N client threads on keep-alive connections at once.

Each is measured for a pod that opts in (patched) and one that does not (skipped).
Usage: bench/webhook.py [--reviews N] [--concurrency N] [--secret-zero PATH]
Build first: cargo build --release --bin secret-zero (the debug build is used if there
is no release one, and the figures say which).
"""

import argparse
import http.client
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, free_port  # noqa: E402
from common import binary as common_binary  # noqa: E402


def make_certs(work):
    """A P-256 CA and a server certificate for 127.0.0.1/localhost, via openssl."""

    def run(*args):
        subprocess.run(["openssl", *args], check=True, cwd=work, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    run("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=bench CA", "-days", "1", "-out", "ca.crt")
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec.key")
    run("pkcs8", "-topk8", "-nocrypt", "-in", "ec.key", "-out", "tls.key")
    with open(os.path.join(work, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("req", "-new", "-key", "tls.key", "-subj", "/CN=localhost", "-out", "tls.csr")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "1", "-extfile", "ext.cnf", "-out", "tls.crt")


def percentile(values, p):
    """Linearly interpolated percentile."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def post(conn, body):
    conn.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    if answer.status != 200:
        raise RuntimeError(f"status {answer.status}: {data[:200]!r}")
    return json.loads(data)["response"]


def keep_alive(port, context, body, n):
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context)
    for _ in range(20):
        post(conn, body)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        post(conn, body)
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def new_connections(port, context, body, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context)
        post(conn, body)
        times.append(time.perf_counter() - start)
        conn.close()
    return times


def concurrent(port, context, body, n, threads):
    results, errors = [], []

    def worker():
        try:
            results.extend(keep_alive(port, context, body, n // threads))
        except Exception as e:  # reported below
            errors.append(e)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return results, wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--secret-zero")
    args = parser.parse_args()

    binary = args.secret_zero or common_binary("secret-zero")
    build = "release" if "/release/" in binary else "debug" if "/debug/" in binary else binary

    with open(os.path.join(ROOT, "tests", "webhook", "pod-create.json")) as f:
        opted_in = json.load(f)
    skipped = json.loads(json.dumps(opted_in))
    del skipped["request"]["object"]["metadata"]["annotations"]["secret-zero.dev/inject"]
    bodies = {"patched": json.dumps(opted_in).encode(), "skipped": json.dumps(skipped).encode()}

    with tempfile.TemporaryDirectory() as work:
        make_certs(work)
        port = free_port()
        proc = subprocess.Popen(
            [binary, "webhook", f"--listen=127.0.0.1:{port}", "--drain-delay=0s", "--log-level=warn",
             "--tls-cert", os.path.join(work, "tls.crt"), "--tls-key", os.path.join(work, "tls.key")],
            stderr=subprocess.PIPE,
        )
        try:
            for _ in range(500):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        sys.exit(f"the webhook exited: {proc.stderr.read().decode()}")
                    time.sleep(0.01)
            context = ssl.create_default_context(cafile=os.path.join(work, "ca.crt"))
            # Check the answer once before timing it.
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context)
            assert post(conn, bodies["patched"])["patchType"] == "JSONPatch"
            assert "patch" not in post(conn, bodies["skipped"])
            conn.close()

            print(f"secret-zero webhook ({build} build), {args.reviews} reviews per row, "
                  f"review body {len(bodies['patched'])} bytes; client-side wall time per review")
            print(f"{'mode':<28} {'pod':<8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")

            def row(mode, pod, times, extra=""):
                ms = [t * 1000 for t in times]
                print(f"{mode:<28} {pod:<8} {statistics.median(ms):8.3f} {percentile(ms, 99):8.3f} "
                      f"{max(ms):8.3f}{extra}")

            for pod, body in bodies.items():
                row("keep-alive", pod, keep_alive(port, context, body, args.reviews))
            for pod, body in bodies.items():
                row("new TLS connection", pod, new_connections(port, context, body, max(args.reviews // 4, 50)))
            for pod, body in bodies.items():
                times, wall = concurrent(port, context, body, args.reviews, args.concurrency)
                row(f"{args.concurrency} concurrent keep-alive", pod, times,
                    f"   ({len(times) / wall:.0f} reviews/s)")
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
