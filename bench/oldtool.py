#!/usr/bin/env python3
"""The old Python tool (dekeyrej-secretmanager), driven the way its examples drive it.

Run inside bench/.venv (made by bench/run.py). Configuration comes from environment
variables the benchmark sets (BENCH_*), so argv holds no secrets.

    oldtool.py start    KUBEVAULT source: TokenRequest, kubernetes login, read the
                        Secret's secrets.json, decrypt; prints the document (one line).
    oldtool.py rotate N the recryptonator flow for Secrets legacy-0000..N-1 in one
                        process: read -> decrypt each, rotate the key once,
                        encrypt -> replace each. Prints JSON {vault_requests, seconds}.
"""
import json
import logging
import os
import sys
import time

VAULT_REQUESTS = 0


def count_vault_requests():
    # hvac talks to Vault through requests; the kubernetes client uses urllib3 directly,
    # so every requests.Session.send here is one Vault request.
    import requests

    send = requests.Session.send

    def counted(self, *args, **kwargs):
        global VAULT_REQUESTS
        VAULT_REQUESTS += 1
        return send(self, *args, **kwargs)

    requests.Session.send = counted


def manager(role):
    from secretmanager.manager import SecretManager

    cfg = {
        "SOURCE": "KUBEVAULT",
        "kube_config": os.environ["BENCH_KUBECONFIG"],
        "service_account": os.environ.get("BENCH_SERVICE_ACCOUNT", "app"),
        "namespace": os.environ.get("BENCH_SA_NAMESPACE", "shop"),
        "vault_url": os.environ["BENCH_VAULT_ADDR"],
        "role": role,
        "ca_cert": True,
    }
    return SecretManager(cfg, log_level=logging.WARNING)


def start():
    logging.disable(logging.INFO)
    m = manager(os.environ.get("BENCH_ROLE", "legacy"))
    out = m.execute("KUBEVAULT", "READ", m, {
        "transit_key": os.environ.get("BENCH_TRANSIT_KEY", "legacy"),
        "namespace": os.environ.get("BENCH_SECRET_NAMESPACE", "shop"),
        "secret_name": os.environ.get("BENCH_SECRET_NAME", "app-legacy"),
        "read_type": "SECRET",
        "read_key": "secrets.json",
    })
    if out.get("status") != "success":
        raise SystemExit(f"old tool failed: {out}")
    sys.stdout.write(json.dumps(out["data"]) + "\n")
    sys.stdout.flush()


def rotate(n):
    logging.disable(logging.WARNING)
    count_vault_requests()
    t0 = time.perf_counter()
    m = manager(os.environ.get("BENCH_ROLE", "legacy-rotator"))
    key = os.environ.get("BENCH_TRANSIT_KEY", "legacy")
    ns = os.environ.get("BENCH_SECRET_NAMESPACE", "legacy")
    defs = [{"transit_key": key, "namespace": ns, "secret_name": f"legacy-{i:04d}",
             "read_type": "SECRET", "read_key": "secrets.json"} for i in range(n)]
    docs = []
    for d in defs:
        out = m.execute("KUBEVAULT", "READ", m, d)
        if out.get("status") != "success":
            raise SystemExit(f"read {d['secret_name']}: {out}")
        docs.append(out["data"])
    out = m.execute("KUBEVAULT", "ROTATE", m, key)
    if out.get("status") != "success":
        raise SystemExit(f"rotate: {out}")
    for d, doc in zip(defs, docs):
        out = m.execute("KUBEVAULT", "CREATE", m, d, json.dumps(doc))
        if out.get("status") != "success":
            raise SystemExit(f"replace {d['secret_name']}: {out}")
    m.execute("KUBEVAULT", "LOGOUT", m)
    print(json.dumps({"vault_requests": VAULT_REQUESTS, "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    if sys.argv[1] == "start":
        start()
    else:
        rotate(int(sys.argv[2]))
