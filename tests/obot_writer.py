#!/usr/bin/env python3
"""An independent writer and reader of Obot databases, for the fidelity tests (tests/obot_db.rs).

It follows Obot's Go client code (obot-platform/obot ba10ff724730e58414ff2185626ea3077c698b19,
`pkg/gateway/client/*.go`), not this crate's Rust code: which columns are encrypted, with which
group-resource and AAD, base64 into text or into `bytea`/`blob`, the credentials wrapper
`{"_obot_encrypted_env": ...}`, the legacy `{"e": ...}` store, empty values skipped or encrypted,
`hashed_email = ''` for an empty e-mail, the `encrypted` flag, and a resource missing from the
configuration written in plaintext with the flag false. Encryption is k8s.io/apiserver's
`aesgcm` (`k8s:enc:aesgcm:v1:<key>:` + nonce(12) + AES-GCM(ciphertext + tag), AAD bound) with
Python's `cryptography`; `identity` passes values through. See docs/obot-encryption-spec.md.

  write  --db URL --config FILE --seed N --manifest OUT [--legacy-db URL]
      Creates the tables (the committed migrations, which are GORM's DDL: no `diesel` table is
      left behind, as in a real Obot database), the legacy `gptscript_credentials` table (in
      `--legacy-db`, default the same database), and fills every table the way Obot's client
      does, deterministically from the seed. Writes a JSON manifest of what each row holds.
  check  --db URL --config FILE --manifest IN --key LABEL [--after-rewrap]
      Reads every row back with Obot's rules and the configuration, and compares every column
      with the manifest (plaintext of encrypted values, and every other column as written).
      Every encrypted value must be under LABEL (`aesgcm:key1`). With --after-rewrap every row of
      a resource the configuration lists must have `encrypted = true`.
  check-credentials --db URL --config FILE --manifest IN
      After `obot-store migrate-credentials`: every legacy credential Obot migrates is in
      `credentials` with the secrets Obot would give it (`env` of the old secret), encrypted.

URL: a SQLite file path, or postgres://... (psycopg). Prints nothing secret: values are test data.
"""

import argparse
import base64
import hashlib
import json
import pathlib
import random
import sqlite3
import sys
from datetime import datetime, timedelta, timezone

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "migrations"))
import gorm_ddl  # noqa: E402

GROUP = "obot.obot.ai"


def sha(s):
    """pkg/hash/hash.go String: lowercase hex SHA-256."""
    return hashlib.sha256(s.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# EncryptionConfiguration and transformers (k8s.io/apiserver semantics, aesgcm + identity)

class Transformer:
    def __init__(self, providers, rng):
        self.providers = providers  # [("aesgcm", [(name, key)]) | ("identity", None)]
        self.rng = rng

    def to_storage(self, plain, aad):
        kind, keys = self.providers[0]
        if kind == "identity":
            return plain
        name, key = keys[0]
        nonce = self.rng.randbytes(12)
        return (f"k8s:enc:aesgcm:v1:{name}:".encode() + nonce
                + AESGCM(key).encrypt(nonce, plain, aad.encode()))

    def from_storage(self, data, aad):
        """(plaintext, label): label is `aesgcm:<key>` or `identity`."""
        for kind, keys in self.providers:
            if kind == "identity":
                if not data.startswith(b"k8s:enc:"):
                    return data, "identity"
                continue
            for name, key in keys:
                prefix = f"k8s:enc:aesgcm:v1:{name}:".encode()
                if data.startswith(prefix):
                    body = data[len(prefix):]
                    return AESGCM(key).decrypt(body[:12], body[12:], aad.encode()), f"aesgcm:{name}"
        raise ValueError("no provider reads the value")


def load_config(path, rng):
    """{resource: Transformer} for exactly the listed resources (Obot looks them up exactly)."""
    doc = yaml.safe_load(pathlib.Path(path).read_text())
    out = {}
    for entry in doc["resources"]:
        providers = []
        for p in entry["providers"]:
            if "aesgcm" in p:
                providers.append(("aesgcm", [(k["name"], base64.b64decode(k["secret"]))
                                             for k in p["aesgcm"]["keys"]]))
            elif "identity" in p:
                providers.append(("identity", None))
            else:
                raise SystemExit(f"obot_writer: provider {sorted(p)} is not supported here")
        for r in entry["resources"]:
            out[r] = Transformer(providers, rng)
    return out


# ----------------------------------------------------------------------------------------------
# databases

class Db:
    def __init__(self, url):
        self.pg = url.startswith(("postgres://", "postgresql://"))
        if self.pg:
            import psycopg
            self.conn = psycopg.connect(url, autocommit=True)
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite://"))
            self.conn.isolation_level = None

    def script(self, sql):
        if self.pg:
            self.conn.execute(sql)
        else:
            self.conn.executescript(sql)

    def insert(self, table, row):
        cols = list(row)
        mark = "%s" if self.pg else "?"
        vals = [self.param(row[c]) for c in cols]
        sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})")
        if table in AUTO_ID:
            if self.pg:
                return self.conn.execute(sql + " RETURNING id", vals).fetchone()[0]
            return self.conn.execute(sql, vals).lastrowid
        self.conn.execute(sql, vals)
        return None

    def param(self, v):
        if isinstance(v, Json):
            if self.pg:
                from psycopg.types.json import Jsonb
                return Jsonb(v.value)
            return json.dumps(v.value, separators=(",", ":"))
        if isinstance(v, datetime) and not self.pg:
            return go_time(v)
        return v

    def rows(self, table, order):
        cur = self.conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def has_table(self, table):
        if self.pg:
            return self.conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()


class Json:
    """A value for a JSON/JSONB column (datatypes.JSONSlice: `null` for a nil slice)."""

    def __init__(self, value):
        self.value = value


AUTO_ID = {"users", "local_auth_users", "mcp_audit_logs", "message_policy_violations",
           "credentials", "gptscript_credentials"}


def go_time(t):
    """glebarez/go-sqlite formatTime: Go layout 2006-01-02 15:04:05.999999999-07:00."""
    frac = f"{t.microsecond:06d}".rstrip("0")
    off = t.utcoffset()
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    mins = abs(mins)
    return (f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"
            + (f".{frac}" if frac else "")
            + f"{sign}{mins // 60:02d}:{mins % 60:02d}")


ZERO = datetime(1, 1, 1, tzinfo=timezone.utc)  # Go's zero time.Time, what GORM writes for it


# ----------------------------------------------------------------------------------------------
# Obot's writes. Each returns the row to insert and, for the manifest, the plaintext of the
# encrypted columns. `t` is the transformer (None when the resource is not configured).

def enc_text(t, value, aad):
    """users/identities/tokens/pending states/properties/local auth/cookies: every value."""
    if value is None:
        return None  # NULL on an upgraded row stays NULL
    return base64.b64encode(t.to_storage(value.encode(), aad)).decode()


def enc_text_skip(t, value, aad):
    """encryptStringField (mcpauditlog.go): empty values are left as they are."""
    if not value:
        return value
    return enc_text(t, value, aad)


def enc_raw(t, value, aad):
    """encryptRawMessageField: json.RawMessage into bytea/blob as ASCII base64, empty skipped."""
    if not value:
        return value
    return base64.b64encode(t.to_storage(value, aad))


def go_json(obj):
    """encoding/json Marshal of a map[string]string: sorted keys, compact, <>& escaped."""
    s = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Writer:
    def __init__(self, db, config, seed, now):
        self.db, self.cfg, self.rng, self.now = db, config, random.Random(seed), now
        for t in config.values():
            t.rng = self.rng
        self.manifest = {}

    def tr(self, resource, fallback=None):
        return self.cfg.get(resource) or (fallback and self.cfg.get(fallback))

    def when(self, minutes):
        """A time in a non-UTC zone (GORM's NowFunc is local time), microseconds."""
        zone = timezone(timedelta(hours=-4)) if minutes % 2 else timezone(timedelta(hours=2))
        return (self.now + timedelta(minutes=minutes, microseconds=minutes * 1234)).astimezone(zone)

    def add(self, table, resource, row, plain, key, legacy=False, state=None):
        """Inserts `row`; records it. plain: {col: plaintext} of the encrypted columns."""
        rid = self.db.insert(table, row)
        if rid is not None:
            row = {"id": rid, **row}
            key = {"id": rid}
        configured = resource in self.cfg or (
            table == "mcpo_auth_pending_states" and f"mcpoauthtokens.{GROUP}" in self.cfg)
        if state is None:
            state = "not_configured" if not configured else "plaintext" if legacy else "current"
        self.manifest.setdefault(table, []).append({
            "key": key, "resource": resource, "state": state,
            "stored": {c: encode(v) for c, v in row.items()},
            "plain": {c: encode(v) for c, v in plain.items()},
        })

    # -- users (client/user.go encryptUser; AAD users.obot.obot.ai/<hashed_username>) ----------
    def user(self, n, name, email, display, legacy=False, upgraded=False, deleted=None):
        r = f"users.{GROUP}"
        t = None if legacy else self.tr(r)
        hashed_username = sha(name)
        fields = {"username": name, "email": email, "icon_url": f"https://avatars.example/u/{n}",
                  "display_name": display,
                  "original_email": None if upgraded else (deleted or ("", ""))[0],
                  "original_username": None if upgraded else (deleted or ("", ""))[1]}
        aad = f"users.{GROUP}/{hashed_username}"
        row = {"created_at": self.when(n), "hashed_username": hashed_username,
               "hashed_email": sha(email) if email else "", "verified_email": n % 2 == 0,
               "role": 8 if n == 1 else 2, "timezone": "Europe/Paris",
               "last_active_day": ZERO if n % 3 else self.when(-n * 60),
               "internal": False, "daily_input_tokens_limit": 0,
               "daily_output_tokens_limit": 1000 * n, "encrypted": t is not None,
               "deleted_at": self.when(n + 100) if deleted else None}
        for c, v in fields.items():
            row[c] = enc_text(t, v, aad) if t else v
        self.add("users", r, row, fields, None, legacy=legacy)

    # -- identities (client/identity.go) ---------------------------------------------------
    def identity(self, n, provider, uid, username, email, user_id, legacy=False, upgraded=False):
        r = f"identities.{GROUP}"
        t = None if legacy else self.tr(r)
        ns = "default"
        hashed_uid = sha(uid) if uid else ""
        aad = f"identities.{GROUP}/{ns}/{provider}/{hashed_uid}"
        fields = {"provider_username": username, "email": email, "provider_user_id": uid,
                  "provider_group_lookup_id": None if upgraded else f"grp-{uid}",
                  "icon_url": f"https://avatars.example/i/{n}"}
        row = {"auth_provider_name": provider, "auth_provider_namespace": ns,
               "hashed_provider_user_id": hashed_uid, "hashed_email": sha(email) if email else "",
               "user_id": user_id, "icon_last_checked": ZERO if n % 2 else self.when(n),
               "encrypted": t is not None, "auth_provider_groups_last_checked": self.when(n + 1)}
        for c, v in fields.items():
            row[c] = enc_text(t, v, aad) if t else v
        self.add("identities", r, row, fields,
                 {"auth_provider_name": provider, "auth_provider_namespace": ns,
                  "hashed_provider_user_id": hashed_uid}, legacy=legacy)

    # -- local auth users (client/localauth.go: users key, normalized e-mail) ---------------
    def local_user(self, n, raw_email, legacy=False):
        r = f"users.{GROUP}"
        t = None if legacy else self.tr(r)
        email = raw_email.strip().lower()
        hashed = sha(email)
        row = {"created_at": self.when(n), "updated_at": self.when(n + 1), "hashed_email": hashed,
               "password_hash": f"$2a$10${'x' * 50}{n}", "encrypted": t is not None,
               "email": enc_text(t, email, f"users.{GROUP}/{hashed}") if t else email}
        self.add("local_auth_users", r, row, {"email": email}, None, legacy=legacy)

    # -- MCP OAuth tokens (client/mcpoauthtoken.go; AAD .../<mcp_id>) -----------------------
    def token(self, n, mcp_id, user_id, refresh="rt-", secret="cs-", legacy=False):
        r = f"mcpoauthtokens.{GROUP}"
        t = None if legacy else self.tr(r)
        aad = f"mcpoauthtokens.{GROUP}/{mcp_id}"
        fields = {"access_token": f"gho_{n}{'a' * 30}",
                  "refresh_token": refresh and f"{refresh}{n}", "client_id": f"Iv1.{n}abc",
                  "client_secret": secret and f"{secret}{n}"}
        row = {"auth_url": "https://github.com/login/oauth/authorize", "device_auth_url": "",
               "token_url": "https://github.com/login/oauth/access_token", "auth_style": 1,
               "redirect_url": "https://obot.example/oauth/mcp/callback", "scopes": "repo user",
               "mcp_id": mcp_id, "user_id": user_id, "url": "https://api.example/mcp/",
               "o_auth_auth_request_id": f"req-{n}", "token_type": "Bearer",
               "expiry": self.when(n + 60), "expires_in": 28800, "encrypted": t is not None}
        for c, v in fields.items():
            row[c] = enc_text(t, v, aad) if t else v
        self.add("mcpo_auth_tokens", r, row, fields, {"mcp_id": mcp_id, "user_id": user_id},
                 legacy=legacy)

    # -- pending states (same file: own resource, else the tokens' transformer) -------------
    def pending(self, n, mcp_id, legacy=False):
        r = f"mcpoauthpendingstates.{GROUP}"
        t = None if legacy else self.tr(r, f"mcpoauthtokens.{GROUP}")
        state = f"st_{n}_{self.rng.getrandbits(32):08x}"
        aad = f"mcpoauthpendingstates.{GROUP}/{mcp_id}"
        fields = {"state": state, "verifier": f"pkce-{n}" * 4, "client_id": f"cid-{n}",
                  "client_secret": "" if n % 2 else f"sec-{n}"}
        row = {"hashed_state": sha(state), "user_id": str(n), "mcp_id": mcp_id,
               "url": "https://api.example/mcp/", "resource_url": "https://api.example/",
               "o_auth_auth_request_id": f"req-{n}", "auth_url": "https://auth.example/a",
               "token_url": "https://auth.example/t", "auth_style": 0,
               "redirect_url": "https://obot.example/cb", "scopes": "read",
               "encrypted": t is not None, "created_at": self.when(n)}
        for c, v in fields.items():
            row[c] = enc_text(t, v, aad) if t else v
        self.add("mcpo_auth_pending_states", r, row, fields, {"hashed_state": sha(state)},
                 legacy=legacy)

    # -- MCP audit logs, source mcp (client/mcpauditlog.go encryptMCPAuditLog) --------------
    def mcp_log(self, n, mcp_id, user_id, bodies, legacy=False):
        r = f"mcpauditlogs.{GROUP}"
        t = None if legacy else self.tr(r)
        aad = f"mcpauditlogs.{GROUP}/{mcp_id}/{user_id}"
        row = {"created_at": self.when(n), "source_type": "mcp", "user_id": user_id,
               "api_key_id": n if n % 2 else None, "api_key_name": "", "client_ip": "10.0.0.7",
               "api_key": "", "mcp_id": mcp_id, "power_user_workspace_id": "",
               "mcp_server_display_name": "GitHub", "mcp_server_catalog_entry_name": "github",
               "client_name": "claude-code", "client_version": "2.1.0", "call_type": "tools/call",
               "call_identifier": "search_issues", "request_mutated": False,
               "response_mutated": n % 2 == 0, "response_status": 200, "error": "",
               "processing_time_ms": 40 + n, "session_id": f"sess-{n}",
               "webhook_statuses": Json(None if n % 2 else [{"type": "audit", "status": "ok"}]),
               "response_received": True, "proxy_exchange_id": f"px-{n}",
               "request_id": f"rq-{n}", "user_agent": "claude-code/2.1", "encrypted": t is not None}
        for c, v in bodies.items():
            row[c] = enc_raw(t, v, aad) if t else v
        self.add("mcp_audit_logs", r, row, bodies, None, legacy=legacy)

    # -- MCP audit logs, source local_agent_tool_call ---------------------------------------
    def local_log(self, n, user_id, strings, remotes, bodies):
        r = f"mcpauditlogs.{GROUP}"
        t = self.tr(r)
        aad = f"mcpauditlogs.{GROUP}/local_agent_tool_call/{user_id}"
        row = {"created_at": self.when(n), "source_type": "local_agent_tool_call",
               "user_id": user_id, "api_key_id": None, "api_key_name": "", "client_ip": "10.0.0.9",
               "occurred_at": self.when(n - 1), "started_at": None if n % 2 else self.when(n - 2),
               "actor_type": "user" if user_id else "device", "actor_id": user_id or f"dev-{n}",
               "action_name": "Bash", "action_kind": "tool", "target_type": "local_tool",
               "target_name": "Bash", "target_parent_type": "", "target_parent_name": "",
               "outcome_status": "success", "outcome_reason": "", "duration_ms": 1200 + n,
               "idempotency_key": f"idem-{n}", "tool_use_id": f"toolu_{n}", "turn_id": f"turn-{n}",
               "agent_provider": "claude_code", "agent_version": "2.1.0", "cli_name": "obot",
               "cli_version": "0.9.1", "model": "claude-sonnet", "model_id": "claude-sonnet-4",
               "permission_mode": "default", "device_id": "" if user_id else f"dev-{n}",
               "device_deployment_id": 0, "os": "darwin", "architecture": "arm64",
               "git_commit": "0123abcd", "encrypted": t is not None}
        for c, v in strings.items():
            row[c] = enc_text_skip(t, v, aad) if t else v
        if remotes is None:
            row["git_remotes"] = Json(None)
        else:
            row["git_remotes"] = Json([enc_text_skip(t, v, aad) if t else v for v in remotes])
        for c, v in bodies.items():
            row[c] = enc_raw(t, v, aad) if t else v
        plain = {**strings, "git_remotes": remotes, **bodies}
        self.add("mcp_audit_logs", r, row, plain, None)

    # -- LLM audit logs (client/llmauditlog.go; AAD .../<id>/<user_id>) ----------------------
    def llm_log(self, n, user_id, bodies, legacy=False):
        r = f"llmauditlogs.{GROUP}"
        t = None if legacy else self.tr(r)
        lid = f"01J{n:023d}"
        aad = f"llmauditlogs.{GROUP}/{lid}/{user_id}"
        row = {"id": lid, "created_at": self.when(n), "duration": 900 + n, "user_id": user_id,
               "api_key_id": None, "api_key_name": "", "model_provider": "anthropic",
               "model_id": "claude-sonnet-4", "target_model": "claude-sonnet-4",
               "reasoning_effort": "", "request_path": "/v1/messages", "request_method": "POST",
               "message_policy_triggered": n % 2 == 1, "response_id": f"msg_{n}",
               "response_status": 200, "outcome": "success", "error": "", "input_tokens": 10 * n,
               "output_tokens": 20 * n, "request_id": f"rq-{n}", "user_agent": "sdk/1.0",
               "client_session_id": f"cs-{n}", "client_ip": "10.0.0.8", "encrypted": t is not None}
        for c, v in bodies.items():
            row[c] = enc_raw(t, v, aad) if t else v
        self.add("llm_audit_logs", r, row, bodies, {"id": lid}, legacy=legacy)

    # -- message policy violations (client/messagepolicyviolation.go) -----------------------
    def violation(self, n, policy_id, user_id, content):
        r = f"policyviolations.{GROUP}"
        t = self.tr(r)
        aad = f"policyviolations.{GROUP}/{policy_id}/{user_id}"
        row = {"created_at": self.when(n), "user_id": user_id, "policy_id": policy_id,
               "policy_name": "no-secrets", "policy_definition": "Never reveal secrets.",
               "direction": "output", "violation_explanation": "Contained an API key.",
               "project_id": f"p{n}", "thread_id": f"t{n}", "encrypted": t is not None,
               "blocked_content": enc_raw(t, content, aad) if t else content}
        self.add("message_policy_violations", r, row, {"blocked_content": content}, None)

    # -- properties (client/property.go; AAD .../<key>) --------------------------------------
    def prop(self, n, key, value, legacy=False):
        r = f"properties.{GROUP}"
        t = None if legacy else self.tr(r)
        row = {"created_at": self.when(n), "updated_at": self.when(n + 5), "key": key,
               "encrypted": t is not None,
               "value": enc_text(t, value, f"properties.{GROUP}/{key}") if t else value}
        self.add("properties", r, row, {"value": value}, {"key": key}, legacy=legacy)

    # -- credentials (client/credential.go encryptCredential; AAD <name>///<context>) -------
    def credential(self, n, context, name, secrets, legacy=False):
        r = f"credentials.{GROUP}"
        t = None if legacy else self.tr(r)
        if t is None:
            stored = None if secrets is None else go_json(secrets)
        else:
            b = t.to_storage(go_json(secrets).encode(), f"{name}///{context}")
            stored = go_json({"_obot_encrypted_env": base64.b64encode(b).decode()})
        row = {"created_at": self.when(n), "context": context, "name": name, "secrets": stored,
               "encrypted": t is not None}
        self.add("credentials", r, row, {"secrets": secrets}, None, legacy=legacy)

    # -- session cookies (historic; client/sessioncookie.go at cbd6faea1^) ------------------
    def cookie(self, n, session_id, legacy=False):
        r = f"sessioncookies.{GROUP}"
        t = None if legacy else self.tr(r)
        hashed = sha(session_id)
        ns, name = "default", "github-auth-provider"
        value = f"_oauth2_proxy={'c' * 40}{n}"
        row = {"hashed_session_id": hashed, "auth_provider_namespace": ns,
               "auth_provider_name": name, "user_id": n, "encrypted": t is not None,
               "cookie": enc_text(t, value, f"sessioncookies.{GROUP}/{ns}/{name}/{hashed}")
               if t else value}
        self.add("session_cookies", r, row, {"cookie": value},
                 {"hashed_session_id": hashed, "auth_provider_namespace": ns,
                  "auth_provider_name": name}, legacy=legacy)

    # -- run states (historic; raw transformer output in bytea, no flag) --------------------
    def run_state(self, n, plain_text=False, no_output=False):
        r = f"runstates.{GROUP}"
        t = self.tr(r)
        ns, name = "default", f"r1run{n}"
        aad = f"runstates.{GROUP}/{ns}/{name}"
        fields = {"chat_state": json.dumps({"turn": n}).encode(), "call_frame": b"\x00\x01frame",
                  "output": None if no_output else f"output {n}".encode()}
        row = {"name": name, "namespace": ns, "created_at": self.when(n),
               "updated_at": self.when(n + 1), "thread_name": f"t1{n}", "program": b"{}",
               "done": True, "error": ""}
        for c, v in fields.items():
            row[c] = v if plain_text or v is None else t.to_storage(v, aad)
        self.add("run_states", r, row, fields, {"name": name, "namespace": ns},
                 state="plaintext" if plain_text else "current")

    # -- legacy GPTScript credential store (obot-platform/tools credential-stores) ----------
    def gptscript(self, db, n, server_url, secret_obj, encrypt):
        t = self.cfg.get("credentials")
        secret = json.dumps(secret_obj)
        if encrypt:
            b = t.to_storage(secret.encode(), server_url)
            stored = '{"e": ' + json.dumps(base64.b64encode(b).decode()) + "}"
        else:
            stored = secret
        context = server_url.split("///")[1] if "///" in server_url else ""
        rid = db.insert("gptscript_credentials", {
            "created_at": self.when(n), "server_url": server_url, "username": "",
            "secret": stored, "context": context})
        self.manifest.setdefault("gptscript_credentials", []).append(
            {"key": {"id": rid}, "server_url": server_url, "secret": secret_obj,
             "encrypted": encrypt})


def encode(v):
    """A manifest value: bytes as {"b64": ...}, times as {"time": ...}."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"b64": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, datetime):
        return {"time": v.astimezone(timezone.utc).isoformat()}
    if isinstance(v, Json):
        return {"json": v.value}
    return v


def fill(w, legacy_db):
    for n, (name, email, display) in enumerate([
            ("alice", "Alice@Example.com", "Alice Martin"), ("bob", "", "Bob Nakamura"),
            ("dave", "dave@example.com", "Dave")], start=1):
        w.user(n, name, email, display, upgraded=(name == "dave"))
    w.user(4, "carol", "carol@example.com", "Carol (before encryption)", legacy=True)
    w.user(5, "erin_deleted_1767225600", "erin@example.com_deleted_1767225600", "Erin",
           deleted=("erin@example.com", "erin"))
    w.identity(1, "github-auth-provider", "1048571", "alice-gh", "Alice@Example.com", 1)
    w.identity(2, "google-auth-provider", "10834", "bob", "", 2)
    w.identity(3, "github-auth-provider", "2200", "dave-gh", "dave@example.com", 3, upgraded=True)
    w.identity(4, "github-auth-provider", "3300", "carol-gh", "carol@example.com", 4, legacy=True)
    w.local_user(1, "  Admin@Example.COM ")
    w.local_user(2, "ops@example.com", legacy=True)
    w.token(1, "ms1github", "1")
    w.token(2, "ms1github", "2", refresh="", secret="")
    w.token(3, "ms1linear", "1", legacy=True)
    w.pending(1, "ms1github")
    w.pending(2, "ms1linear")
    w.pending(3, "ms1notion", legacy=True)
    body = lambda s: json.dumps(s, separators=(",", ":")).encode()  # noqa: E731
    w.mcp_log(1, "ms1github", "1", {
        "request_body": body({"method": "tools/call", "params": {"name": "search_issues"}}),
        "mutated_request_body": body({"method": "tools/call", "redacted": True}),
        "response_body": body({"result": {"content": [{"type": "text", "text": "3 issues"}]}}),
        "original_response_body": body({"result": "unfiltered"}),
        "request_headers": body({"Authorization": ["Bearer x"]}),
        "response_headers": body({"Content-Type": ["application/json"]})})
    w.mcp_log(2, "ms1github", "2", {
        "request_body": body({"method": "resources/read"}), "mutated_request_body": None,
        "response_body": b"", "original_response_body": None,
        "request_headers": None, "response_headers": body({})})
    w.mcp_log(3, "ms1linear", "1", {
        "request_body": body({"method": "tools/list"}), "mutated_request_body": None,
        "response_body": body({"tools": []}), "original_response_body": None,
        "request_headers": body({"X": ["1"]}), "response_headers": None}, legacy=True)
    w.local_log(4, "1", {
        "local_agent_error": "", "hostname": "alice-mbp.local", "local_username": "alice",
        "reported_user_email": "alice@example.com", "cwd": "/Users/alice/src/obot",
        "git_root": "/Users/alice/src/obot", "git_branch": "main",
        "transcript_path": "/Users/alice/.claude/t.jsonl"},
        ["git@github.com:obot-platform/obot.git", "", "https://github.com/alice/obot.git"],
        {"local_agent_request_body": body({"command": "ls"}),
         "local_agent_response_body": body({"stdout": "README.md"}),
         "local_agent_raw_event": body({"hook": "PostToolUse"})})
    w.local_log(5, "", {
        "local_agent_error": "exit status 1", "hostname": "build-7", "local_username": "",
        "reported_user_email": "", "cwd": "/srv", "git_root": "", "git_branch": "",
        "transcript_path": ""}, None,
        {"local_agent_request_body": body({"command": "make"}),
         "local_agent_response_body": b"null", "local_agent_raw_event": body({"hook": "x"})})
    w.llm_log(1, "1", {"request_headers": body({"anthropic-version": ["2023-06-01"]}),
                       "request_body": body({"messages": [{"role": "user", "content": "hi"}]}),
                       "policy_modified_request_body": None,
                       "response_headers": body({}), "response_body": body({"id": "msg_1"})})
    w.llm_log(2, "2", {"request_headers": None, "request_body": body({"messages": []}),
                       "policy_modified_request_body": body({"messages": ["redacted"]}),
                       "response_headers": None, "response_body": b""})
    w.llm_log(3, "1", {"request_headers": body({}), "request_body": body({"m": 1}),
                       "policy_modified_request_body": None, "response_headers": None,
                       "response_body": body({"m": 2})}, legacy=True)
    w.violation(1, "pol1", "1", body({"text": "sk-live-123"}))
    w.violation(2, "pol1", "2", b"")
    w.prop(1, "onboarding.completed", "true")
    w.prop(2, "banner.text", "")
    w.prop(3, "legacy.setting", "on", legacy=True)
    w.credential(1, "default", "github", {"GITHUB_TOKEN": "ghp_<secret>&more", "A": "1"})
    w.credential(2, "mcp-ms1linear", "linear", {})
    w.credential(3, "default", "slack", {"SLACK_TOKEN": "xoxb-1"}, legacy=True)
    w.cookie(1, "sess-5f2b9c")
    w.cookie(2, "sess-legacy", legacy=True)
    w.run_state(1)
    w.run_state(2, plain_text=True)
    w.run_state(3, no_output=True)
    for n, (url, secret, enc) in enumerate([
            ("gh-token///default", {"env": {"GH_TOKEN": "ghp_old"}, "toolName": "gh"}, True),
            ("notion///shared", {"env": {"NOTION": "secret_n"}, "type": "tool"}, False),
            ("empty-env///default", {"toolName": "x"}, True),
            ("no-context-here", {"env": {"X": "1"}}, False)], start=1):
        w.gptscript(legacy_db, n, url, secret, enc)


def create_tables(db, legacy_db, backend):
    up = next((ROOT / "migrations" / backend).glob("*/up.sql")).read_text()
    db.script(up)
    _, table, _, fields = gorm_ddl.LEGACY[0]
    legacy_db.script(";\n".join(gorm_ddl.create(backend, "GptscriptCredential", table, fields)))


def cmd_write(a):
    db = Db(a.db)
    legacy = Db(a.legacy_db) if a.legacy_db else db
    create_tables(db, legacy, "postgres" if db.pg else "sqlite")
    w = Writer(db, load_config(a.config, None), a.seed,
               datetime(2026, 8, 21, 21, 56, 9, 123456, tzinfo=timezone.utc))
    fill(w, legacy)
    pathlib.Path(a.manifest).write_text(json.dumps(w.manifest, indent=1, sort_keys=True) + "\n")


# ----------------------------------------------------------------------------------------------
# Obot's reads

ENCRYPTED = {
    "users": ["username", "email", "icon_url", "display_name", "original_email",
              "original_username"],
    "identities": ["provider_username", "email", "provider_user_id", "provider_group_lookup_id",
                   "icon_url"],
    "local_auth_users": ["email"],
    "mcpo_auth_tokens": ["access_token", "refresh_token", "client_id", "client_secret"],
    "mcpo_auth_pending_states": ["state", "verifier", "client_id", "client_secret"],
    "mcp_audit_logs": None,  # by source_type
    "llm_audit_logs": ["request_headers", "request_body", "policy_modified_request_body",
                       "response_headers", "response_body"],
    "message_policy_violations": ["blocked_content"],
    "properties": ["value"],
    "credentials": ["secrets"],
    "session_cookies": ["cookie"],
    "run_states": ["chat_state", "call_frame", "output"],
}
MCP_BODIES = ["request_body", "mutated_request_body", "response_body", "original_response_body",
              "request_headers", "response_headers"]
LOCAL_STRINGS = ["local_agent_error", "hostname", "local_username", "reported_user_email", "cwd",
                 "git_root", "git_branch", "transcript_path"]
LOCAL_BODIES = ["local_agent_request_body", "local_agent_response_body", "local_agent_raw_event"]


class Reader:
    def __init__(self, cfg, key):
        self.cfg, self.key, self.labels, self.errors = cfg, key, [], []

    def t(self, resource, table):
        t = self.cfg.get(resource)
        if t is None and table == "mcpo_auth_pending_states":
            t = self.cfg.get(f"mcpoauthtokens.{GROUP}")
        return t

    def dec(self, t, data, aad):
        out, label = t.from_storage(data, aad)
        self.labels.append(label)
        return out

    def text(self, t, v, aad, skip_empty=False):
        if v is None or (skip_empty and v == ""):
            return v
        return self.dec(t, base64.b64decode(v, validate=True), aad).decode()

    def raw(self, t, v, aad):
        if v is None or len(v) == 0:
            return v
        return self.dec(t, base64.b64decode(bytes(v), validate=True), aad)


def aad_of(table, row):
    g = GROUP
    return {
        "users": lambda: f"users.{g}/{row['hashed_username']}",
        "local_auth_users": lambda: f"users.{g}/{row['hashed_email']}",
        "identities": lambda: (f"identities.{g}/{row['auth_provider_namespace']}/"
                               f"{row['auth_provider_name']}/{row['hashed_provider_user_id']}"),
        "mcpo_auth_tokens": lambda: f"mcpoauthtokens.{g}/{row['mcp_id']}",
        "mcpo_auth_pending_states": lambda: f"mcpoauthpendingstates.{g}/{row['mcp_id']}",
        "mcp_audit_logs": lambda: (
            f"mcpauditlogs.{g}/{row['mcp_id']}/{row['user_id']}" if row["source_type"] == "mcp"
            else f"mcpauditlogs.{g}/{row['source_type']}/{row['user_id']}"),
        "llm_audit_logs": lambda: f"llmauditlogs.{g}/{row['id']}/{row['user_id']}",
        "message_policy_violations": lambda: (f"policyviolations.{g}/{row['policy_id']}/"
                                              f"{row['user_id']}"),
        "properties": lambda: f"properties.{g}/{row['key']}",
        "credentials": lambda: f"{row['name']}///{row['context']}",
        "session_cookies": lambda: (f"sessioncookies.{g}/{row['auth_provider_namespace']}/"
                                    f"{row['auth_provider_name']}/{row['hashed_session_id']}"),
        "run_states": lambda: f"runstates.{g}/{row['namespace']}/{row['name']}",
    }[table]()


def read_row(rd, table, resource, row):
    """{col: plaintext} of the encrypted columns, by Obot's decrypt functions."""
    flag = row.get("encrypted")
    t = rd.t(resource, table)
    plain = {}
    if table == "run_states":  # no flag: always through the transformer (identity reads plain)
        for c in ENCRYPTED[table]:
            plain[c] = None if row[c] is None else rd.dec(t, bytes(row[c]), aad_of(table, row))
        return plain
    on = bool(flag) and t is not None
    aad = aad_of(table, row)
    if table == "mcp_audit_logs":
        if row["source_type"] == "mcp":
            for c in MCP_BODIES:
                plain[c] = rd.raw(t, row[c], aad) if on else row[c]
        else:
            for c in LOCAL_STRINGS:
                plain[c] = rd.text(t, row[c], aad, skip_empty=True) if on else row[c]
            remotes = row["git_remotes"]
            if isinstance(remotes, (str, bytes)):
                remotes = json.loads(remotes)
            plain["git_remotes"] = None if remotes is None else [
                rd.text(t, v, aad, skip_empty=True) if on else v for v in remotes]
            for c in LOCAL_BODIES:
                plain[c] = rd.raw(t, row[c], aad) if on else row[c]
        return plain
    if table in ("llm_audit_logs", "message_policy_violations"):
        for c in ENCRYPTED[table]:
            plain[c] = rd.raw(t, row[c], aad) if on else row[c]
        return plain
    if table == "credentials":
        s = row["secrets"]
        if s is None:
            plain["secrets"] = None
        elif on:
            wrapped = json.loads(s)
            if list(wrapped) != ["_obot_encrypted_env"]:
                raise ValueError("credentials: encrypted secrets is missing")
            plain["secrets"] = json.loads(rd.text(t, wrapped["_obot_encrypted_env"], aad))
        else:
            plain["secrets"] = json.loads(s)
        return plain
    for c in ENCRYPTED[table]:
        plain[c] = rd.text(t, row[c], aad) if on else row[c]
    return plain


def norm(v):
    if isinstance(v, memoryview):
        v = bytes(v)
    if isinstance(v, datetime):
        return {"time": v.astimezone(timezone.utc).isoformat()}
    return encode(v)


def cmd_check(a):
    db = Db(a.db)
    cfg = load_config(a.config, random.Random(0))
    manifest = json.loads(pathlib.Path(a.manifest).read_text())
    problems, values = [], 0
    for table, expected in manifest.items():
        if table == "gptscript_credentials":
            continue
        pk = list(expected[0]["key"])
        rows = {tuple(str(r[c]) for c in pk): r for r in db.rows(table, ", ".join(pk))}
        if len(rows) != len(expected):
            problems.append(f"{table}: {len(rows)} rows, {len(expected)} written")
        for e in expected:
            key = tuple(str(e["key"][c]) for c in pk)
            row = rows.get(key)
            if row is None:
                problems.append(f"{table} {key}: missing")
                continue
            rd = Reader(cfg, a.key)
            try:
                plain = read_row(rd, table, e["resource"], row)
            except Exception as err:  # noqa: BLE001 - reported with the row
                problems.append(f"{table} {key}: Obot's read fails: {type(err).__name__} {err}")
                continue
            for c, want in e["plain"].items():
                if norm(plain.get(c)) != want:
                    problems.append(f"{table} {key} {c}: read {norm(plain.get(c))!r}, wrote {want!r}")
            values += len(rd.labels)
            wrong = [lb for lb in rd.labels if lb != a.key]
            configured = rd.t(e["resource"], table) is not None
            if a.after_rewrap and configured and wrong:
                problems.append(f"{table} {key}: values under {wrong}, expected all under {a.key}")
            if not a.after_rewrap and e["state"] == "current" and wrong:
                problems.append(f"{table} {key}: values under {wrong}, expected {a.key}")
            if a.after_rewrap and configured and "encrypted" in row and not row["encrypted"]:
                problems.append(f"{table} {key}: encrypted flag still false")
            for c, want in e["stored"].items():
                if c in e["plain"] or c in ("encrypted",):
                    continue
                have = norm(row[c])
                if isinstance(want, dict) and "json" in want:
                    have = {"json": json.loads(row[c]) if isinstance(row[c], (str, bytes))
                            else row[c]}
                if isinstance(want, dict) and "time" in want and isinstance(row[c], str):
                    have = {"time": datetime.fromisoformat(row[c]).astimezone(timezone.utc)
                            .isoformat()}
                if have != want:
                    problems.append(f"{table} {key} {c}: {have!r} != written {want!r}")
    if problems:
        sys.exit("obot_writer check:\n  " + "\n  ".join(problems))
    print(f"obot_writer check: {sum(len(v) for v in manifest.values())} rows, "
          f"{values} encrypted values read as Obot reads them")


def cmd_check_credentials(a):
    """What Obot's MigrateGPTScriptCredentials leaves in `credentials`."""
    db = Db(a.db)
    cfg = load_config(a.config, random.Random(0))
    manifest = json.loads(pathlib.Path(a.manifest).read_text())
    rows = {(r["context"], r["name"]): r for r in db.rows("credentials", "id")}
    problems = []
    for e in manifest["gptscript_credentials"]:
        name, _, context = e["server_url"].partition("///")
        if not name or not context:
            if (context, name) in rows:
                problems.append(f"{e['server_url']}: migrated, Obot skips it")
            continue
        row = rows.get((context, name))
        if row is None:
            problems.append(f"{e['server_url']}: not migrated")
            continue
        rd = Reader(cfg, None)
        try:
            got = read_row(rd, "credentials", f"credentials.{GROUP}", row)["secrets"]
        except Exception as err:  # noqa: BLE001
            problems.append(f"{e['server_url']}: Obot's read fails: {err}")
            continue
        if got != e["secret"].get("env", {}) or not row["encrypted"]:
            problems.append(f"{e['server_url']}: secrets {got!r}, encrypted {row['encrypted']}")
    if problems:
        sys.exit("obot_writer check-credentials:\n  " + "\n  ".join(problems))
    print("obot_writer check-credentials: every legacy credential migrated as Obot migrates it")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--db", required=True)
    w.add_argument("--legacy-db")
    w.add_argument("--config", required=True)
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--manifest", required=True)
    c = sub.add_parser("check")
    c.add_argument("--db", required=True)
    c.add_argument("--config", required=True)
    c.add_argument("--manifest", required=True)
    c.add_argument("--key", required=True)
    c.add_argument("--after-rewrap", action="store_true")
    m = sub.add_parser("check-credentials")
    m.add_argument("--db", required=True)
    m.add_argument("--config", required=True)
    m.add_argument("--manifest", required=True)
    a = p.parse_args()
    {"write": cmd_write, "check": cmd_check, "check-credentials": cmd_check_credentials}[a.cmd](a)


if __name__ == "__main__":
    main()
