"""Smoke test of the benchmark's peer: JupyterHub + configurable-http-proxy + tiny_server.

Run with the peer's own python, after bench/peer/install:

    bench/.peer/venv/bin/python bench/peer/smoke.py [--prefix bench/.peer]
        [--tiny-server target/release/tiny_server] [--keep]

It starts `jupyterhub -f bench/peer/jupyterhub_config.py` on free loopback ports with a
temporary state directory, walks through what the benchmark driver does (bootstrap with
the service token, a hub-generated user token, a spawn, a request through the proxy, a
form login, a stop), shuts the hub down and checks that no process it started is left.
Prints each step with its time; exits 1 with a message on the first failure. Standard
library only.
"""

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from http.cookies import SimpleCookie

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


class Failure(Exception):
    pass


def free_ports(n):
    """n distinct free ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # list of (name, value)
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def cookies(self):
        """name -> value of every Set-Cookie in the response."""
        jar = {}
        for k, v in self.headers:
            if k.lower() == "set-cookie":
                c = SimpleCookie()
                c.load(v)
                for name, morsel in c.items():
                    jar[name] = morsel.value
        return jar

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise Failure(f"expected JSON, got {self.status} {self.body[:300]!r}")

    def __repr__(self):
        return f"{self.status} {self.body[:300]!r}"


def request(port, method, path, *, token=None, body=None, form=None, cookies=None,
            headers=None, timeout=30):
    """One HTTP/1.1 request to 127.0.0.1:port; redirects are not followed."""
    # the same User-Agent throughout: an anonymous _xsrf token is bound to it
    headers = {"User-Agent": "galilean-peer-smoke", **(headers or {})}
    data = None
    if token:
        headers["Authorization"] = f"token {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def expect(resp, *statuses, what):
    if resp.status not in statuses:
        raise Failure(f"{what}: expected HTTP {' or '.join(map(str, statuses))}, got {resp!r}")
    return resp


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie of ours counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prefix", default=os.path.join(REPO, "bench", ".peer"),
                    help="where bench/peer/install put the peer (default bench/.peer)")
    ap.add_argument("--tiny-server", default=os.path.join(REPO, "target", "release", "tiny_server"))
    ap.add_argument("--keep", action="store_true", help="keep the state directory")
    args = ap.parse_args()

    jupyterhub = os.path.join(os.path.dirname(sys.executable), "jupyterhub")
    chp = os.path.join(os.path.abspath(args.prefix), "node", "node_modules", ".bin",
                       "configurable-http-proxy")
    tiny = os.path.abspath(args.tiny_server)
    for path, hint in [(jupyterhub, "run this with the peer's python: bench/.peer/venv/bin/python"),
                       (chp, "run bench/peer/install first"),
                       (tiny, "build it: cargo build --release -p galilean-node --bin tiny_server")]:
        if not os.access(path, os.X_OK):
            print(f"smoke: FAIL: {path} is missing ({hint})", file=sys.stderr)
            return 1

    state = tempfile.mkdtemp(prefix="peer-smoke-")
    port, hub_port, api_port = free_ports(3)
    service_token = secrets.token_hex(32)
    password = secrets.token_hex(8)
    env = dict(os.environ,
               BENCH_PORT=str(port), BENCH_HUB_PORT=str(hub_port), BENCH_API_PORT=str(api_port),
               BENCH_STATE_DIR=state, BENCH_TINY_SERVER=tiny, BENCH_CHP=chp,
               BENCH_PROXY_TOKEN=secrets.token_hex(32), BENCH_SERVICE_TOKEN=service_token,
               BENCH_PASSWORD=password)
    env.pop("BENCH_SPAWN_LIMIT", None)
    log_path = os.path.join(state, "hub.log")
    print(f"smoke: state {state}, public port {port}, hub port {hub_port}, proxy api port {api_port}")

    t0 = time.monotonic()
    step_start = [t0]

    def step(msg):
        now = time.monotonic()
        print(f"  [{(now - t0) * 1000:8.1f} ms] {msg} ({(now - step_start[0]) * 1000:.1f} ms)",
              flush=True)
        step_start[0] = now

    hub = None
    others = {}  # pid -> what, processes the hub started that must be gone at the end
    ok = False
    try:
        log = open(log_path, "wb")
        hub = subprocess.Popen(
            [jupyterhub, "-f", os.path.join(HERE, "jupyterhub_config.py")],
            cwd=state, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()

        def poll_until(what, fn, timeout):
            deadline = time.monotonic() + timeout
            while True:
                if hub.poll() is not None:
                    raise Failure(f"{what}: jupyterhub exited with status {hub.returncode}")
                try:
                    result = fn()
                except (ConnectionError, socket.timeout, http.client.HTTPException):
                    result = None
                if result:
                    return result
                if time.monotonic() > deadline:
                    raise Failure(f"{what}: not done after {timeout} s")
                time.sleep(0.05)

        # 1. up: the hub's API answers through the proxy
        root = poll_until("waiting for GET /hub/api/ through the proxy",
                          lambda: (lambda r: r if r.status == 200 else None)(
                              request(port, "GET", "/hub/api/", timeout=5)),
                          90)
        step(f"hub and proxy up: GET /hub/api/ -> {root.json()}")
        with open(os.path.join(state, "jupyterhub-proxy.pid")) as f:
            proxy_pid = int(f.read().strip())
        others[proxy_pid] = "configurable-http-proxy"

        # 2. bootstrap with the service token
        r = expect(request(port, "POST", "/hub/api/users/alice", token=service_token),
                   201, what="create user alice with the service token")
        step(f"POST /hub/api/users/alice -> {r.status} (name {r.json()['name']!r})")

        r = expect(request(port, "POST", "/hub/api/users/alice/tokens", token=service_token,
                           body={"note": "bench"}),
                   201, what="create a token for alice")
        model = r.json()
        alice_token = model.get("token")
        if not alice_token:
            raise Failure(f"token creation answered without a token: {model}")
        step(f"POST /hub/api/users/alice/tokens -> {r.status} "
             f"(id {model.get('id')}, scopes {model.get('scopes')}, {len(alice_token)}-char token)")

        # 3. the measured kind of credential: a hub-generated token
        r = expect(request(port, "GET", "/hub/api/user", token=alice_token), 200,
                   what="GET /hub/api/user with alice's token")
        if r.json().get("name") != "alice":
            raise Failure(f"GET /hub/api/user with alice's token returned {r.json()}")
        step(f"GET /hub/api/user with alice's token -> alice (kind {r.json().get('kind')!r})")

        # 4. spawn
        r = expect(request(port, "POST", "/hub/api/users/alice/server", token=alice_token),
                   201, 202, what="start alice's server")
        step(f"POST /hub/api/users/alice/server -> {r.status}")

        def alice_ready():
            u = expect(request(port, "GET", "/hub/api/users/alice", token=alice_token), 200,
                       what="GET /hub/api/users/alice").json()
            s = u.get("servers", {}).get("")
            if s is None and u.get("pending") is None:
                raise Failure(f"alice's server is neither running nor pending: {u}")
            return s if s and s.get("ready") else None

        server = poll_until("waiting for alice's server to be ready", alice_ready, 90)
        step(f"alice's server ready: url {server['url']}")
        r = expect(request(port, "GET", "/hub/api/users/alice", token=service_token), 200,
                   what="GET /hub/api/users/alice with the service token")
        spid = r.json()["servers"][""].get("state", {}).get("pid")
        if spid:
            others[int(spid)] = "tiny_server"

        # 5. through the proxy to the server
        r = expect(request(port, "GET", "/user/alice/1k"), 200, what="GET /user/alice/1k")
        if len(r.body) != 1024:
            raise Failure(f"GET /user/alice/1k returned {len(r.body)} bytes, not 1024")
        step(f"GET /user/alice/1k through the proxy -> {r.status}, {len(r.body)} bytes")

        # 6. form login as bob
        r = expect(request(port, "GET", "/hub/login"), 200, what="GET /hub/login")
        jar = r.cookies()
        m = re.search(rb'name="_xsrf"\s+value="([^"]+)"', r.body)
        if "_xsrf" not in jar or not m:
            raise Failure(f"GET /hub/login gave no _xsrf cookie or form field "
                          f"(cookies {sorted(jar)}, field {bool(m)})")
        xsrf = m.group(1).decode()
        step(f"GET /hub/login -> 200, _xsrf cookie and form field "
             f"({'equal' if xsrf == jar['_xsrf'] else 'different'})")

        r = request(port, "POST", "/hub/login", cookies=jar,
                    form={"username": "bob", "password": "wrong" + password, "_xsrf": xsrf})
        expect(r, 403, what="form login with a wrong password")
        step("POST /hub/login with a wrong password -> 403")

        r = request(port, "POST", "/hub/login", cookies=jar,
                    form={"username": "bob", "password": password, "_xsrf": xsrf})
        expect(r, 302, what="form login as bob")
        got = r.cookies()
        missing = [c for c in ("jupyterhub-session-id", "jupyterhub-hub-login") if c not in got]
        if missing:
            raise Failure(f"login response lacks cookie(s) {missing}: set {sorted(got)}")
        step(f"POST /hub/login as bob -> 302 to {r.header('Location')}, cookies {sorted(got)}")
        jar.update(got)
        # as a browser's fetch() would: Sec-Fetch-Mode cors plus the new (logged-in)
        # _xsrf cookie's value as X-XSRFToken. Without any Sec-Fetch-Mode the hub
        # skips the check but logs a warning for every such request.
        r = expect(request(port, "GET", "/hub/api/user", cookies=jar,
                           headers={"Sec-Fetch-Mode": "cors", "X-XSRFToken": jar["_xsrf"]}),
                   200, what="GET /hub/api/user with bob's login cookie")
        if r.json().get("name") != "bob":
            raise Failure(f"the login cookie identifies {r.json().get('name')!r}, not bob")
        step("GET /hub/api/user with bob's cookies (+ X-XSRFToken) -> bob")

        # 7. stop
        r = expect(request(port, "DELETE", "/hub/api/users/alice/server", token=alice_token),
                   202, 204, what="stop alice's server")
        status = r.status

        def alice_stopped():
            u = expect(request(port, "GET", "/hub/api/users/alice", token=alice_token), 200,
                       what="GET /hub/api/users/alice").json()
            return "" not in u.get("servers", {}) and u.get("pending") is None

        poll_until("waiting for alice's server to stop", alice_stopped, 60)
        left = [pid for pid, what in others.items() if what == "tiny_server" and pid_alive(pid)]
        if left:
            raise Failure(f"alice's server process {left} still runs after the stop")
        step(f"DELETE /hub/api/users/alice/server -> {status}; stopped, process gone")
        r = expect(request(port, "GET", "/user/alice/1k"), 302, 404, 424, 503,
                   what="GET /user/alice/1k after the stop")
        step(f"GET /user/alice/1k after the stop -> {r.status} {r.header('Location') or ''}")

        # 8. shutdown
        hub.send_signal(signal.SIGTERM)
        try:
            rc = hub.wait(30)
        except subprocess.TimeoutExpired:
            raise Failure("jupyterhub did not exit within 30 s of SIGTERM")
        step(f"SIGTERM -> jupyterhub exited with status {rc}")
        ok = True
    except Failure as e:
        print(f"smoke: FAIL: {e}", file=sys.stderr)
    except Exception as e:  # an unexpected error is a failure too, with its type
        print(f"smoke: FAIL: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        if hub is not None and hub.poll() is None:
            try:
                os.killpg(hub.pid, signal.SIGTERM)
                hub.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(hub.pid, signal.SIGKILL)
                hub.wait()
            except ProcessLookupError:
                pass
        # the hub starts the proxy and the servers in sessions of their own, so they are
        # not in its process group: check them one by one
        deadline = time.monotonic() + 5
        while any(pid_alive(p) for p in others) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid, what in others.items():
            if pid_alive(pid) and what in cmdline(pid):
                print(f"smoke: FAIL: {what} (pid {pid}) was left running; killing it",
                      file=sys.stderr)
                os.kill(pid, signal.SIGKILL)
                ok = False
        if not ok:
            try:
                with open(log_path, "rb") as f:
                    tail = f.read()[-4000:].decode(errors="replace")
                print(f"--- last lines of {log_path} ---\n{tail}", file=sys.stderr)
            except OSError:
                pass
        if ok and not args.keep:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"smoke: state kept in {state}", file=sys.stderr)
    if ok:
        print(f"smoke: OK in {time.monotonic() - t0:.1f} s")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
