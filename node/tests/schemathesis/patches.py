"""The REST API spec as node/tests/schemathesis.rs tests it: the reference OpenAPI file
with every place patched where the protocol reference (jupyterhub-protocol.md, §2 and
§2.13) documents what JupyterHub really answers. Where the spec's schema and §2.13
differ, §2.13 wins. Usage: patches.py <reference.yml> <out.json>.

Every patch is here, each with the § that justifies it.
"""

import json
import sys

import yaml

NULL = "null"

# §2.13: which model fields JupyterHub emits as null (or with more values) where the
# spec's schema says a bare string/object.
NULLABLE = {
    # §2.13 User model: user_info "object or null", server "URL ... if it is ready, else
    # null", pending "... or null", last_activity "timestamp or null", auth_state
    # "object or null; null in list responses".
    "User": ["user_info", "server", "pending", "last_activity", "auth_state"],
    # §2.13 Server model: last_activity/started "timestamps or null", pending "... or
    # null", user_options "object (or null)", full_url/full_progress_url "or null
    # without public_url/subdomains", state "null/{} when stopped".
    "Server": [
        "last_activity",
        "started",
        "pending",
        "user_options",
        "full_url",
        "full_progress_url",
        "state",
    ],
    # §2.13 Token model: "last_activity": null (never used), "expires_at" null without
    # an expiry (§2.8: none unless token_expires_in_max_seconds is set).
    "Token": ["expires_at", "last_activity"],
    "NewToken": ["expires_at", "last_activity"],
    # §2.4: the identity model of a service is built from its database row, so
    # info/display/url may be null there.
    "Service": ["info", "url", "display"],
    # §2.13 ShareCode model: "last_exchanged_at": null.
    "ShareCode": ["last_exchanged_at", "expires_at"],
}

# §2.13 User/Server model: pending is "spawn", "stop", "check", "rename" or null.
PENDING = ["spawn", "stop", "check", "rename", None]

# §2.1: every error body is {"status": int, "message": string|null}, application/json.
ERROR = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {
        "status": {"type": "integer"},
        "message": {"type": ["string", "null"]},
    },
}

# Extra statuses §2 documents where the spec omits them: (method, path) -> statuses.
# §2.1: every scope-protected endpoint answers 403 (no credentials / scope absent) and
# 404 (the scope's filter does not cover the target: existence is hidden); the
# request-body and paging rules (§2.1 "Invalid JSON", §2.2 bad offset/limit) give 400.
# These are added to every operation below, except where named otherwise.
COMMON = ["400", "403", "404"]
# §2.5 POST /users and POST /users/{name} 409; §2.6 PUT and PATCH .../servers/{s} 409;
# §2.9 POST /groups/{name} 409; §2.6 server start 429 (spawn limits); §2.12 POST/PATCH
# shares validation 400 (in COMMON).
EXTRA = {
    ("post", "/users"): ["409"],
    ("post", "/users/{name}"): ["409"],
    ("put", "/users/{name}/servers/{server_name}"): ["409"],
    ("patch", "/users/{name}/servers/{server_name}"): ["409"],
    ("post", "/groups/{name}"): ["409"],
    ("post", "/users/{name}/server"): ["429"],
    ("post", "/users/{name}/servers/{server_name}"): ["429"],
}


def nullable(schema):
    t = schema.get("type")
    if t is None:
        return
    if isinstance(t, list):
        if NULL not in t:
            t.append(NULL)
    else:
        schema["type"] = [t, NULL]
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"].append(None)


def patch(spec):
    # YAML reads unquoted status codes as integers; OpenAPI keys are strings
    for ops in spec["paths"].values():
        for op in ops.values():
            if isinstance(op, dict) and "responses" in op:
                op["responses"] = {str(k): v for k, v in op["responses"].items()}
    schemas = spec["components"]["schemas"]
    for model, fields in NULLABLE.items():
        props = schemas[model].setdefault("properties", {})
        for field in fields:
            if field in props:
                nullable(props[field])
            else:
                # a field §2.13 lists that the spec does not: any JSON, null included
                props[field] = {}
    for model in ("User", "Server"):
        schemas[model]["properties"]["pending"]["enum"] = list(PENDING)
    # §2.13 Service model: "display": true on services; the spec has no such field.
    schemas["Service"]["properties"].setdefault("display", {})
    schemas["Error"] = ERROR

    # §2.10: GET /services answers an object keyed by service name (observed), not an
    # array.
    ok = spec["paths"]["/services"]["get"]["responses"]["200"]
    ok["content"]["application/json"]["schema"] = {
        "type": "object",
        "additionalProperties": {"$ref": "#/components/schemas/Service"},
    }

    # §3.3: the OAuth token endpoint's errors are {"error", "error_description"}
    # (RFC 6749), the one REST-side exception §2.1 names.
    oauth_error = {
        "description": "OAuth error (protocol reference §3.3)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "error_description": {"type": ["string", "null"]},
                    },
                }
            }
        },
    }
    error = {
        "description": "error (protocol reference §2.1)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = op.setdefault("responses", {})
            if path.startswith("/oauth2/"):
                # §3: the OAuth endpoints are not REST endpoints: the authorize page
                # answers HTML; only the token endpoint's errors are documented (§3.3)
                if path == "/oauth2/token":
                    for status in ("400", "401"):
                        responses.setdefault(status, oauth_error)
                continue
            for status in COMMON + EXTRA.get((method, path), []):
                responses.setdefault(status, error)
            # §2.1: the spec documents some errors (401/404 on activity and tokens) with
            # an empty content map; the hub's error bodies are the JSON error model, and
            # it never uses 401 on the REST API.
            for status, resp in responses.items():
                if status[0] in "45" and not resp.get("content"):
                    responses[status] = error
    return spec


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        spec = yaml.safe_load(f)
    with open(out, "w") as f:
        json.dump(patch(spec), f, indent=1, default=str)


if __name__ == "__main__":
    main()
