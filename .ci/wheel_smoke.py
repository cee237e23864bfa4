"""CI: the wheel runs outside the checkout (issue 24).

Builds the sdist and wheel (``python -m build``), installs the wheel into a fresh virtual
environment in an empty temporary directory (with ``constraints.txt``), and from there:
``cdnctl --version``, ``cdnctl doctor``, ``cdnctl up --net 127.0.5``; resolves the site
through that stack's router (dnslib, a dependency of the wheel), fetches a page through
the edge DNS named twice (miss, then hit), purges it with ``cdnctl purge``, stops the
stack with SIGINT, and checks that it exits 0 with every process gone.

Run from the repository root: ``python3 .ci/wheel_smoke.py``. Exit status 0 when all of
it works; otherwise 1 with what failed and the stack's output.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NET = "127.0.5"
SITE = "www.example.test"
UP_TIMEOUT = 90.0


def run(argv: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(argv), flush=True)
    return subprocess.run(argv, cwd=cwd, text=True, capture_output=True, check=False,
                          timeout=600, **kw)  # type: ignore[call-overload]


def must(proc: subprocess.CompletedProcess[str]) -> str:
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="wheel-smoke-"))
    dist, venv, work = tmp / "dist", tmp / "venv", tmp / "empty"
    work.mkdir()
    must(run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], REPO))
    wheel = next(dist.glob("*.whl"))
    must(run([sys.executable, "-m", "venv", str(venv)], work))
    py, cdnctl = venv / "bin" / "python", venv / "bin" / "cdnctl"
    must(run([str(py), "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"),
              str(wheel)], work))
    print(must(run([str(cdnctl), "--version"], work)).strip())
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDN_")}
    env.pop("XDG_STATE_HOME", None)  # state goes to ./run of the empty directory
    print(must(run([str(cdnctl), "doctor", "--net", NET], work, env=env)))
    for module in ("edge", "mid_tier", "origin", "router", "control_plane"):
        must(run([str(py), "-m", module, "--help"], work, env=env))

    log = tmp / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen([str(cdnctl), "up", "--net", NET], cwd=work, env=env,
                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + UP_TIMEOUT
        while b"stack is up" not in log.read_bytes():
            if up.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"cdnctl up did not come up:\n{log.read_text()}")
            time.sleep(0.2)
        probe = f"""
import http.client, sys
from dnslib import DNSRecord
answer = DNSRecord.parse(DNSRecord.question({SITE!r}).send("{NET}.1", 5353, timeout=3))
edges = [str(r.rdata) for r in answer.rr if r.rtype == 1]
assert edges and all(e.startswith("{NET}.") for e in edges), answer
states = []
for _ in range(2):
    c = http.client.HTTPConnection(edges[0], 8080, timeout=10)
    c.request("GET", "/index.html", headers={{"Host": {SITE!r}}})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200 and b"<html" in body.lower(), r.status
    states.append(r.getheader("Cache-Status"))
print(edges[0], states)
# Cache-Status lists the edge last (RFC 9211 section 2)
edge_said = [s.split(",")[-1].split(";")[1].strip() for s in states]
assert edge_said[0] != "hit" and edge_said[1] == "hit", states
"""
        print(must(run([str(py), "-c", probe], work, env=env)).strip())
        purge_env = {**env, "CDN_API": f"http://{NET}.1:9000",
                     "CDN_STATE_DIR": str(work / "run" / f"net-{NET}")}
        print(must(run([str(cdnctl), "purge", f"http://{SITE}/index.html"], work,
                       env=purge_env)).strip())
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
        try:
            rc = up.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            sys.exit(f"cdnctl up did not stop within 30 s of SIGINT:\n{log.read_text()}")
    try:
        os.killpg(up.pid, 0)
        os.killpg(up.pid, signal.SIGKILL)
        sys.exit("children of cdnctl up outlived it")
    except ProcessLookupError:
        pass
    if rc != 0:
        sys.exit(f"cdnctl up exited {rc}:\n{log.read_text()}")
    shutil.rmtree(tmp)  # kept when something failed, to look at
    print(f"wheel smoke test passed ({wheel.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
