# JupyterHub 6.1.1 configuration for the benchmark's "peer" side: the real JupyterHub and
# configurable-http-proxy (CHP) that Galilean is measured against.
#
#   jupyterhub -f bench/peer/jupyterhub_config.py
#
# Everything comes from environment variables that the benchmark driver sets:
#
#   BENCH_PORT           public port, CHP on 127.0.0.1
#   BENCH_HUB_PORT       the hub's own (internal) port on 127.0.0.1
#   BENCH_API_PORT       CHP's REST API port on 127.0.0.1
#   BENCH_STATE_DIR      sqlite db, cookie secret, pid files, users' home directories
#   BENCH_TINY_SERVER    absolute path of target/release/tiny_server (the single-user server)
#   BENCH_CHP            the configurable-http-proxy executable
#   BENCH_PROXY_TOKEN    CONFIGPROXY_AUTH_TOKEN shared by the hub and CHP
#   BENCH_SERVICE_TOKEN  api token of the service "bench", which has the admin role; for
#                        bootstrapping only (creating users, asking for their tokens): a
#                        token from the config is checked with 16,384 SHA-512 rounds per
#                        request, hub-generated ones with one
#   BENCH_PASSWORD       the password every user logs in with (form login)
#   BENCH_SPAWN_LIMIT    optional: JupyterHub.concurrent_spawn_limit (default: JupyterHub's, 100)
#   BENCH_ROLES          optional: more load_roles entries, a JSON list (the RBAC workloads'
#                        roles, made by bench/src/rbac.rs as the Galilean nodes' [[roles]])
#   BENCH_GROUPS         optional: load_groups, a JSON object (their groups, likewise)
#
# Settings left at JupyterHub's defaults are not repeated here unless the benchmark
# depends on them; each setting below says why it is there.

import json
import os
import sys

c = get_config()  # noqa: F821 (provided by traitlets when the file is loaded)


def _env(name):
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"jupyterhub_config.py: environment variable {name} must be set")
    return value


def _port(name):
    value = _env(name)
    if not value.isdigit() or not 0 < int(value) < 65536:
        sys.exit(f"jupyterhub_config.py: {name}={value!r} is not a port number")
    return int(value)


port = _port("BENCH_PORT")
hub_port = _port("BENCH_HUB_PORT")
api_port = _port("BENCH_API_PORT")
state = os.path.abspath(_env("BENCH_STATE_DIR"))
tiny_server = _env("BENCH_TINY_SERVER")
chp = _env("BENCH_CHP")
proxy_token = _env("BENCH_PROXY_TOKEN")
service_token = _env("BENCH_SERVICE_TOKEN")
password = _env("BENCH_PASSWORD")
os.makedirs(state, exist_ok=True)

# --- network: everything on loopback --------------------------------------------------
# public (CHP) address; the default would listen on every interface
c.JupyterHub.bind_url = f"http://127.0.0.1:{port}/"
# the hub's internal address (default 127.0.0.1:8081); the port comes from the driver
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = hub_port
# no TLS between hub, proxy and servers (this is the default; stated because it matters
# for the comparison: Galilean's side runs plain HTTP on loopback too)
c.JupyterHub.internal_ssl = False

# --- state: all files in BENCH_STATE_DIR, none in the working directory ----------------
c.JupyterHub.db_url = "sqlite:///" + os.path.join(state, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(state, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(state, "jupyterhub.pid")
# (logs go to stderr: the driver redirects them into the state directory)

# --- logging ---------------------------------------------------------------------------
# WARN instead of INFO: at INFO the hub writes one access-log line per request (and CHP
# likewise, below), which costs measurable time at benchmark rates. Failed requests
# (4xx, 5xx) and slow ones are still logged at WARN or above.
c.JupyterHub.log_level = "WARN"

# --- proxy -----------------------------------------------------------------------------
# the CHP installed by bench/peer/install, started and stopped by the hub (the default)
c.ConfigurableHTTPProxy.command = [chp]
c.ConfigurableHTTPProxy.should_start = True
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.auth_token = proxy_token
c.ConfigurableHTTPProxy.pid_file = os.path.join(state, "jupyterhub-proxy.pid")
# CHP's default "info" logs a line for every proxied response; "warn" keeps errors only
c.ConfigurableHTTPProxy.log_level = "warn"
# On a machine whose system node is older than CHP needs, bench/peer/install puts a node
# binary beside the CHP script; CHP starts with "#!/usr/bin/env node", so that directory
# goes first on PATH (the hub passes its environment to CHP).
_chp_dir = os.path.dirname(os.path.abspath(chp))
if os.access(os.path.join(_chp_dir, "node"), os.X_OK):
    os.environ["PATH"] = _chp_dir + os.pathsep + os.environ.get("PATH", "")

# --- servers ---------------------------------------------------------------------------
# no system users: every server is a local process of the hub's own user
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(state, "home", "{username}")
# tiny_server instead of jupyterhub-singleuser: it listens where JUPYTERHUB_SERVICE_URL
# says and answers the readiness probe (GET <prefix>api); the hub passes no arguments
c.Spawner.cmd = [tiny_server]
c.Spawner.args = []
# start() returning (60 s, the default) and the first answer to the readiness probe
# (default 30 s): 60 s each, so that a burst of spawns on a 2-core machine is measured
# as slow rather than failed
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
# no resource limits (the defaults; the local process spawner does not enforce them)
c.Spawner.mem_limit = None
c.Spawner.cpu_limit = None
# stop running servers when the hub stops (the default), so nothing outlives a run
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
# no limit on running servers (the default), and the concurrent spawn limit from the
# driver if it sets one (JupyterHub's default is 100; 0 means none)
c.JupyterHub.active_server_limit = 0
if os.environ.get("BENCH_SPAWN_LIMIT", ""):
    c.JupyterHub.concurrent_spawn_limit = int(os.environ["BENCH_SPAWN_LIMIT"])
# last_activity_interval (300 s), activity_resolution (30 s) and the Spawner's
# poll_interval (30 s) are left at their defaults: that is the work a real hub does.
# No idle culler service is configured.

# --- authentication --------------------------------------------------------------------
# any user name, one shared password (the driver does form logins with it).
# DummyAuthenticator.password is deprecated since 5.3 in favour of
# SharedPasswordAuthenticator; the hub logs a warning for it once at startup.
c.JupyterHub.authenticator_class = "jupyterhub.auth.DummyAuthenticator"
c.DummyAuthenticator.password = password
# JupyterHub 5+ refuses logins without an allow list or allow_all
c.Authenticator.allow_all = True

# --- the driver's bootstrap credential ---------------------------------------------------
c.JupyterHub.services = [{"name": "bench", "api_token": service_token}]
bootstrap_roles = [{"name": "admin", "services": ["bench"]}]

# --- the RBAC workloads' roles and groups (bench/README.md: W1 with RBAC, W3 by group) ---
# the same roles and groups as the Galilean nodes' [[roles]] and [[groups]], when the
# driver runs a workload that uses them
c.JupyterHub.load_roles = bootstrap_roles + json.loads(os.environ.get("BENCH_ROLES") or "[]")
c.JupyterHub.load_groups = json.loads(os.environ.get("BENCH_GROUPS") or "{}")
