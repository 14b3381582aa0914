#!/usr/bin/env python3
"""The DDL GORM runs for Obot's encrypted tables, on PostgreSQL and on SQLite.

Writes `migrations/{postgres,sqlite}/<version>/up.sql` and `down.sql`, and prints the same
statements as Markdown for `docs/obot-encryption-spec.md` (`--markdown`).

The tables below are a transcription of Obot's GORM models (Go field name, Go type, `gorm`
tag), read at obot-platform/obot ba10ff724730e58414ff2185626ea3077c698b19 (see the spec for
each file). The rules turning them into SQL are GORM's, read at go-gorm/gorm v1.31.2 (Obot's
go.mod), gorm.io/driver/postgres v1.6.0 and github.com/glebarez/sqlite v1.11.0:

- names: `schema/naming.go` `toDBName` (initialisms such as ID, URL, API, IP, UID are folded
  first; "OAuth" is not one, hence `mcpo_auth_tokens`), table = plural (jinzhu/inflection) of
  the struct name unless `TableName()`, index = `idx_<table>_<toDBName(field)>` unless named,
  unique constraint = `uni_<table>_<column>` (`NamingStrategy.UniqueName`);
- columns in struct order, embedded structs flattened in place, a duplicate column name kept
  once at its first place (`schema/schema.go`); CREATE TABLE as `migrator/migrator.go`
  `CreateTable` (columns, `PRIMARY KEY (...)` unless the type already says so, then
  `CONSTRAINT uni_... UNIQUE (...)`), then one CREATE INDEX per index in field order, fields
  of a composite index by `priority` (default 10), both drivers creating indexes after the
  table (`CreateIndexAfterCreateTable: true`);
- types: postgres.go `DataTypeOf` (bool boolean, integers bigint, an auto-increment integer
  key bigserial, string text, time.Time timestamptz, []byte bytea), glebarez sqlite.go
  `DataTypeOf` (bool numeric, integers integer, the auto-increment key `integer PRIMARY KEY
  AUTOINCREMENT`, string text, time datetime, []byte blob), gorm.io/datatypes v1.2.7
  `JSONSlice.GormDBDataType` (JSONB / JSON);
- nullability: only `not null` tags (and primary keys) are NOT NULL; `default:` tags become
  DEFAULT clauses.

Quoting is GORM's too: double quotes on PostgreSQL, backticks on SQLite. One difference from
GORM, on purpose: SQLite string defaults are written with single quotes (GORM's SQLite
dialector quotes them with double quotes, which SQLite reads as a string only when the
library accepts double-quoted strings).

Usage: python3 migrations/gorm_ddl.py            # rewrite the migration files
       python3 migrations/gorm_ddl.py --check    # fail if the files differ from what it writes
       python3 migrations/gorm_ddl.py --markdown # print the DDL for the spec
       python3 migrations/gorm_ddl.py --compare SQLITE_FILE POSTGRES_URL
           # both migrated: same tables, columns (in order), nullability, keys and indexes,
           # with GORM's SQLite type for each PostgreSQL type (needs psycopg)
"""

import pathlib
import re
import sys

VERSION = "2026-12-01-000000_obot_gorm_tables"

INITIALISMS = ["API", "ASCII", "CPU", "CSS", "DNS", "EOF", "GUID", "HTML", "HTTP", "HTTPS", "ID",
               "IP", "JSON", "LHS", "QPS", "RAM", "RHS", "RPC", "SLA", "SMTP", "SSH", "TLS", "TTL",
               "UID", "UI", "UUID", "URI", "URL", "UTF8", "VM", "XML", "XSRF", "XSS"]


def _fold(name):
    out, i = [], 0
    while i < len(name):
        for ini in INITIALISMS:
            if name.startswith(ini, i):
                out.append(ini[0] + ini[1:].lower())
                i += len(ini)
                break
        else:
            out.append(name[i])
            i += 1
    return "".join(out)


def db_name(name):
    """GORM's NamingStrategy.toDBName."""
    v = _fold(name)
    up = lambda c: "A" <= c <= "Z"  # noqa: E731
    buf, last, cur = [], False, up(v[0])
    for i, ch in enumerate(v[:-1]):
        nxt, num = up(v[i + 1]), v[i + 1].isdigit()
        if cur:
            if last and (nxt or num):
                buf.append(ch.lower())
            else:
                if i > 0 and v[i - 1] != "_" and v[i + 1] != "_":
                    buf.append("_")
                buf.append(ch.lower())
        else:
            buf.append(ch)
        last, cur = cur, nxt
    if cur:
        if not last and len(v) > 1:
            buf.append("_")
        buf.append(v[-1].lower())
    else:
        buf.append(v[-1])
    return "".join(buf)


# Go type -> (PostgreSQL, SQLite). "autoinc" is the integer primary key GORM makes
# auto-increment (a uint/int field named ID, or tagged autoIncrement).
TYPES = {
    "string": ("text", "text"),
    "bool": ("boolean", "numeric"),
    "int": ("bigint", "integer"),
    "uint": ("bigint", "integer"),
    "time": ("timestamptz", "datetime"),
    "bytes": ("bytea", "blob"),
    "jsonslice": ("JSONB", "JSON"),
    "autoinc": ("bigserial", "integer PRIMARY KEY AUTOINCREMENT"),
}

# (struct, table, source file, [(Go field, Go type, gorm tag)]); an embedded struct's fields
# are listed in place. Go types: string (also named string types), bool, int (int, int64,
# types2.Role, oauth2.AuthStyle), uint, time (time.Time and *time.Time), bytes ([]byte,
# json.RawMessage), jsonslice (datatypes.JSONSlice[T]); pointers only change Go's zero value.
TABLES = [
    ("User", "users", "pkg/gateway/types/users.go", [
        ("ID", "autoinc", "primaryKey"),
        ("CreatedAt", "time", ""),
        ("DisplayName", "string", ""),
        ("Username", "string", ""),
        ("HashedUsername", "string", "unique"),
        ("Email", "string", ""),
        ("HashedEmail", "string", ""),
        ("VerifiedEmail", "bool", ""),
        ("Role", "int", ""),
        ("IconURL", "string", ""),
        ("Timezone", "string", ""),
        ("LastActiveDay", "time", ""),
        ("Internal", "bool", "default:false"),
        ("DailyInputTokensLimit", "int", ""),
        ("DailyOutputTokensLimit", "int", ""),
        ("Encrypted", "bool", ""),
        ("DeletedAt", "time", ""),
        ("OriginalEmail", "string", ""),
        ("OriginalUsername", "string", ""),
    ]),
    ("Identity", "identities", "pkg/gateway/types/identity.go", [
        ("AuthProviderName", "string", "primaryKey;index:idx_user_auth_id"),
        ("AuthProviderNamespace", "string", "primaryKey;index:idx_user_auth_id"),
        ("ProviderUsername", "string", ""),
        ("ProviderUserID", "string", ""),
        ("HashedProviderUserID", "string", "primaryKey"),
        ("ProviderGroupLookupID", "string", ""),
        ("Email", "string", ""),
        ("HashedEmail", "string", ""),
        ("UserID", "uint", "index:idx_user_auth_id"),
        ("IconURL", "string", ""),
        ("IconLastChecked", "time", ""),
        ("Encrypted", "bool", ""),
        ("AuthProviderGroupsLastChecked", "time", ""),
    ]),
    ("LocalAuthUser", "local_auth_users", "pkg/gateway/types/localauth.go", [
        ("ID", "autoinc", "primaryKey"),
        ("CreatedAt", "time", ""),
        ("UpdatedAt", "time", ""),
        ("Email", "string", ""),
        ("HashedEmail", "string", "uniqueIndex"),
        ("PasswordHash", "string", ""),
        ("Encrypted", "bool", ""),
    ]),
    ("MCPOAuthToken", "mcpo_auth_tokens", "pkg/gateway/types/tokens.go", [
        # embedded oauth2.Endpoint (golang.org/x/oauth2 v0.36.0 oauth2.go)
        ("AuthURL", "string", ""),
        ("DeviceAuthURL", "string", ""),
        ("TokenURL", "string", ""),
        ("AuthStyle", "int", ""),
        ("ClientID", "string", ""),
        ("ClientSecret", "string", ""),
        ("RedirectURL", "string", ""),
        ("Scopes", "string", ""),
        ("MCPID", "string", "primaryKey"),
        ("UserID", "string", "primaryKey"),
        ("URL", "string", ""),
        ("OAuthAuthRequestID", "string", "index"),
        ("AccessToken", "string", ""),
        ("TokenType", "string", ""),
        ("RefreshToken", "string", ""),
        ("Expiry", "time", ""),
        ("ExpiresIn", "int", ""),
        ("Encrypted", "bool", ""),
    ]),
    ("MCPOAuthPendingState", "mcpo_auth_pending_states", "pkg/gateway/types/tokens.go", [
        ("HashedState", "string", "primaryKey"),
        ("State", "string", ""),
        ("Verifier", "string", ""),
        ("UserID", "string", "index:idx_pending_user_mcp"),
        ("MCPID", "string", "index:idx_pending_user_mcp"),
        ("URL", "string", ""),
        ("ResourceURL", "string", ""),
        ("OAuthAuthRequestID", "string", ""),
        ("ClientID", "string", ""),
        ("ClientSecret", "string", ""),
        ("AuthURL", "string", ""),
        ("TokenURL", "string", ""),
        ("AuthStyle", "int", ""),
        ("RedirectURL", "string", ""),
        ("Scopes", "string", ""),
        ("Encrypted", "bool", ""),
        ("CreatedAt", "time", ""),
    ]),
    ("MCPAuditLog", "mcp_audit_logs", "pkg/gateway/types/mcpauditlog.go", [
        ("ID", "autoinc", "primaryKey"),
        ("CreatedAt", "time", "index;index:idx_mcp_audit_api_key_created,priority:2"),
        ("SourceType", "string", "index;default:mcp"),
        ("UserID", "string", "index"),
        ("APIKeyID", "uint", "index:idx_mcp_audit_api_key_created,priority:1"),
        ("APIKeyName", "string", ""),
        ("ClientIP", "string", "index"),
        # *MCPAuditLogFields `gorm:"embedded"`
        ("APIKey", "string", ""),
        ("MCPID", "string", "index"),
        ("PowerUserWorkspaceID", "string", "index"),
        ("MCPServerDisplayName", "string", "index"),
        ("MCPServerCatalogEntryName", "string", "index"),
        ("ClientName", "string", "index"),
        ("ClientVersion", "string", "index"),
        ("CallType", "string", "index"),
        ("CallIdentifier", "string", "index"),
        ("RequestMutated", "bool", ""),
        ("RequestBody", "bytes", ""),
        ("MutatedRequestBody", "bytes", ""),
        ("ResponseMutated", "bool", ""),
        ("ResponseBody", "bytes", ""),
        ("OriginalResponseBody", "bytes", ""),
        ("ResponseStatus", "int", "index"),
        ("Error", "string", ""),
        ("ProcessingTimeMs", "int", "index"),
        ("SessionID", "string", "index"),
        ("WebhookStatuses", "jsonslice", ""),
        ("ResponseReceived", "bool", ""),
        ("ProxyExchangeID", "string", "column:proxy_exchange_id;index"),
        ("RequestID", "string", "index"),
        ("UserAgent", "string", ""),
        ("RequestHeaders", "bytes", ""),
        ("ResponseHeaders", "bytes", ""),
        # *LocalAgentToolCallAuditLogFields `gorm:"embedded"`
        ("OccurredAt", "time", "index"),
        ("StartedAt", "time", "index"),
        ("ActorType", "string", "index"),
        ("ActorID", "string", "index"),
        ("ActionName", "string", "index"),
        ("ActionKind", "string", "index"),
        ("TargetType", "string", "index"),
        ("TargetName", "string", "index"),
        ("TargetParentType", "string", "index"),
        ("TargetParentName", "string", "index"),
        ("OutcomeStatus", "string", "index"),
        ("OutcomeReason", "string", "index"),
        ("OutcomeError", "string", "column:local_agent_error"),
        ("DurationMs", "int", "index"),
        ("IdempotencyKey", "string", "uniqueIndex"),
        ("ToolUseID", "string", "index"),
        ("SessionID", "string", "index"),  # same column as the MCP field: kept once
        ("TurnID", "string", "index"),
        ("AgentProvider", "string", "index"),
        ("AgentVersion", "string", "index"),
        ("CLIName", "string", ""),
        ("CLIVersion", "string", "index"),
        ("Model", "string", "index"),
        ("ModelID", "string", "index"),
        ("PermissionMode", "string", "index"),
        ("DeviceID", "string", "index"),
        ("DeviceDeploymentID", "uint", "index"),
        ("Hostname", "string", ""),
        ("OS", "string", "index"),
        ("Architecture", "string", "index"),
        ("LocalUsername", "string", ""),
        ("CWD", "string", ""),
        ("GitRoot", "string", ""),
        ("GitRemotes", "jsonslice", ""),
        ("GitBranch", "string", ""),
        ("GitCommit", "string", "index"),
        ("ReportedUserEmail", "string", ""),
        ("TranscriptPath", "string", ""),
        ("RequestBody", "bytes", "column:local_agent_request_body"),
        ("ResponseBody", "bytes", "column:local_agent_response_body"),
        ("RawEvent", "bytes", "column:local_agent_raw_event"),
        # back in MCPAuditLog
        ("Encrypted", "bool", ""),
    ]),
    ("LLMAuditLog", "llm_audit_logs", "pkg/gateway/types/llmauditlog.go", [
        ("ID", "string", "primaryKey;type:text"),
        ("CreatedAt", "time", ";".join(
            ["index"] + [f"index:idx_llm_audit_{n}_created,priority:2" for n in (
                "user", "provider", "client_session", "response", "target_model",
                "request_path", "response_status", "outcome", "user_agent",
                "message_policy_triggered", "api_key")])),
        ("Duration", "int", ""),
        ("UserID", "string", "type:text;index:idx_llm_audit_user_created,priority:1"),
        ("APIKeyID", "uint", "index:idx_llm_audit_api_key_created,priority:1"),
        ("APIKeyName", "string", "type:text"),
        ("ModelProvider", "string", "type:text;index:idx_llm_audit_provider_created,priority:1"),
        ("ModelID", "string", "type:text"),
        ("TargetModel", "string", "type:text;index:idx_llm_audit_target_model_created,priority:1"),
        ("ReasoningEffort", "string", "type:text"),
        ("RequestPath", "string", "type:text;index:idx_llm_audit_request_path_created,priority:1"),
        ("RequestMethod", "string", "type:text"),
        ("RequestHeaders", "bytes", ""),
        ("RequestBody", "bytes", ""),
        ("PolicyModifiedRequestBody", "bytes", ""),
        ("MessagePolicyTriggered", "bool",
         "not null;default:false;index:idx_llm_audit_message_policy_triggered_created,priority:1"),
        ("ResponseHeaders", "bytes", ""),
        ("ResponseBody", "bytes", ""),
        ("ResponseID", "string", "type:text;index:idx_llm_audit_response_created,priority:1"),
        ("ResponseStatus", "int", "index:idx_llm_audit_response_status_created,priority:1"),
        ("Outcome", "string", "type:text;index:idx_llm_audit_outcome_created,priority:1"),
        ("Error", "string", "type:text"),
        ("InputTokens", "int", ""),
        ("OutputTokens", "int", ""),
        ("RequestID", "string", "type:text"),
        ("UserAgent", "string", "type:text;index:idx_llm_audit_user_agent_created,priority:1"),
        ("ClientSessionID", "string",
         "type:text;index:idx_llm_audit_client_session_created,priority:1"),
        ("ClientIP", "string", "type:text"),
        ("Encrypted", "bool", ""),
    ]),
    ("MessagePolicyViolation", "message_policy_violations",
     "pkg/gateway/types/messagepolicyviolation.go", [
        ("ID", "autoinc", "primaryKey"),
        ("CreatedAt", "time", "index"),
        ("UserID", "string", "index"),
        ("PolicyID", "string", "index"),
        ("PolicyName", "string", "index"),
        ("PolicyDefinition", "string", ""),
        ("Direction", "string", "index"),
        ("ViolationExplanation", "string", ""),
        ("BlockedContent", "bytes", ""),
        ("ProjectID", "string", "index"),
        ("ThreadID", "string", "index"),
        ("Encrypted", "bool", ""),
    ]),
    ("Property", "properties", "pkg/gateway/types/property.go", [
        ("CreatedAt", "time", ""),
        ("UpdatedAt", "time", ""),
        ("Key", "string", "primaryKey"),
        ("Value", "string", ""),
        ("Encrypted", "bool", ""),
    ]),
    ("Credential", "credentials", "pkg/gateway/types/credentials.go", [
        ("ID", "autoinc", "primaryKey;autoIncrement"),
        ("CreatedAt", "time", ""),
        ("Context", "string", "uniqueIndex:idx_credentials_context_name;not null"),
        ("Name", "string", "uniqueIndex:idx_credentials_context_name;not null"),
        ("Secrets", "string", "serializer:json"),
        ("Encrypted", "bool", ""),
    ]),
    # Historic: removed from Obot in cbd6faea1 (table dropped by migration drop_session_cookies).
    ("SessionCookie", "session_cookies", "pkg/gateway/types/sessioncookie.go at cbd6faea1^", [
        ("HashedSessionID", "string", "primaryKey"),
        ("AuthProviderNamespace", "string", "primaryKey"),
        ("AuthProviderName", "string", "primaryKey"),
        ("UserID", "uint", "index"),
        ("Cookie", "string", ""),
        ("Encrypted", "bool", ""),
    ]),
    # Historic: removed from Obot in 9e9aa06e7 (dropped by drop_run_thread_run_states_tables).
    ("RunState", "run_states", "pkg/gateway/types/runstate.go at 9e9aa06e7^", [
        ("Name", "string", "primaryKey"),
        ("Namespace", "string", "primaryKey"),
        ("CreatedAt", "time", ""),
        ("UpdatedAt", "time", ""),
        ("ThreadName", "string", ""),
        ("Program", "bytes", ""),
        ("ChatState", "bytes", ""),
        ("CallFrame", "bytes", ""),
        ("Output", "bytes", ""),
        ("Done", "bool", ""),
        ("Error", "string", ""),
    ]),
]

# Not created by the store's migrations: the legacy GPTScript credential store's table
# (obot-platform/tools credential-stores/pkg/common/db.go, GORM v1.31.1), in Obot's database on
# PostgreSQL and in `<db>-credentials.db` beside it on SQLite. Printed in the spec only.
LEGACY = [
    ("GptscriptCredential", "gptscript_credentials",
     "obot-platform/tools credential-stores/pkg/common/db.go", [
        ("ID", "autoinc", "primary_key"),
        ("CreatedAt", "time", ""),
        ("ServerURL", "string", "unique"),
        ("Username", "string", ""),
        ("Secret", "string", ""),
        ("Context", "string", "index"),
    ]),
]


def tags(tag):
    """`gorm` tag -> list of (KEY, value) in order (GORM's ParseTagSetting, keys upper-cased)."""
    out = []
    for part in tag.split(";"):
        if part.strip():
            k, _, v = part.partition(":")
            out.append((k.strip().upper(), v))
    return out


def columns(fields):
    seen, cols = set(), []
    for go, ty, tag in fields:
        t = dict(tags(tag))
        col = t.get("COLUMN") or db_name(go)
        if col in seen:
            continue
        seen.add(col)
        cols.append((go, col, ty, t))
    return cols


def indexes(table, fields):
    """(name, unique, [column]) in GORM's ParseIndexes order (every field, duplicates too)."""
    found, order = {}, []
    for go, ty, tag in fields:
        col = dict(tags(tag)).get("COLUMN") or db_name(go)
        for key, value in tags(tag):
            if key not in ("INDEX", "UNIQUEINDEX"):
                continue
            name, _, settings = value.partition(",")
            prio = 10
            m = re.search(r"priority:(\d+)", settings, re.I)
            if m:
                prio = int(m.group(1))
            if not name:
                name = f"idx_{table}_{db_name(go)}"
            if name not in found:
                found[name] = [key == "UNIQUEINDEX", []]
                order.append(name)
            found[name][1].append((prio, col))
    out = []
    for name in order:
        unique, cols = found[name]
        out.append((name, unique, [c for _, c in sorted(cols, key=lambda pc: pc[0])]))
    return out


def create(backend, struct, table, fields):
    q = (lambda s: f'"{s}"') if backend == "postgres" else (lambda s: f"`{s}`")
    which = 0 if backend == "postgres" else 1
    cols = columns(fields)
    parts, pk, uniques = [], [], []
    for go, col, ty, t in cols:
        sql = TYPES[ty][which]
        if "NOT NULL" in t:
            sql += " NOT NULL"
        if "DEFAULT" in t:
            d = t["DEFAULT"]
            if ty == "string":
                d = f"'{d}'"
            sql += f" DEFAULT {d}"
        parts.append(f"{q(col)} {sql}")
        if "PRIMARYKEY" in t or "PRIMARY_KEY" in t or ty == "autoinc":
            pk.append(col)
        if "UNIQUE" in t:
            uniques.append(col)
    if not (backend == "sqlite" and any(ty == "autoinc" for _, _, ty, _ in cols)):
        parts.append("PRIMARY KEY (" + ",".join(q(c) for c in pk) + ")")
    for col in uniques:
        parts.append(f"CONSTRAINT {q('uni_' + table + '_' + col)} UNIQUE ({q(col)})")
    stmts = [f"CREATE TABLE {q(table)} (" + ",".join(parts) + ")"]
    for name, unique, icols in indexes(table, fields):
        kind = "CREATE UNIQUE INDEX" if unique else "CREATE INDEX"
        if backend == "postgres":
            stmts.append(f"{kind} IF NOT EXISTS {q(name)} ON {q(table)} ("
                         + ",".join(q(c) for c in icols) + ")")
        else:
            stmts.append(f"{kind} {q(name)} ON {q(table)}("
                         + ",".join(q(c) for c in icols) + ")")
    return stmts


HEADER = """-- Obot's encrypted tables exactly as GORM creates them ({backend}), generated by
-- migrations/gorm_ddl.py from Obot's models (obot-platform/obot ba10ff724730e58414ff2185626ea3077c698b19,
-- pkg/gateway/types/*.go) and GORM's rules (go-gorm/gorm v1.31.2, {driver}).
-- session_cookies and run_states are historic (removed from Obot in cbd6faea1 and 9e9aa06e7):
-- their layout is the one Obot's GORM gave them before the removal.
-- Do not edit by hand: change migrations/gorm_ddl.py and run it.
"""


def files():
    """{path: text} of the migration files."""
    root = pathlib.Path(__file__).resolve().parent
    out = {}
    for backend, driver in (("postgres", "gorm.io/driver/postgres v1.6.0"),
                            ("sqlite", "github.com/glebarez/sqlite v1.11.0")):
        d = root / backend / VERSION
        up = [HEADER.format(backend=backend, driver=driver)]
        for struct, table, src, fields in TABLES:
            up.append(f"\n-- {struct} ({src})")
            up.extend(s + ";" for s in create(backend, struct, table, fields))
        out[d / "up.sql"] = "\n".join(up) + "\n"
        down = [f"DROP TABLE {t};" for _, t, _, _ in reversed(TABLES)]
        out[d / "down.sql"] = "\n".join(down) + "\n"
    return out


def write():
    for path, text in files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def check():
    bad = [str(p) for p, t in files().items() if not p.exists() or p.read_text() != t]
    if bad:
        sys.exit("gorm_ddl.py: differs from what it generates (run python3 migrations/gorm_ddl.py): "
                 + ", ".join(bad))


SQLITE_OF = {"text": "TEXT", "bigint": "INTEGER", "boolean": "NUMERIC", "bytea": "BLOB",
             "timestamp with time zone": "DATETIME", "jsonb": "JSON"}


def compare(sqlite_file, pg_url):
    import sqlite3
    import psycopg
    lite = sqlite3.connect(sqlite_file)
    pg = psycopg.connect(pg_url)
    problems = []
    for _, table, _, _ in TABLES:
        pcols = pg.execute(
            "SELECT column_name, data_type, is_nullable = 'NO' FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position", (table,)).fetchall()
        ppk = [r[0] for r in pg.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)", (table,)).fetchall()]
        lcols = lite.execute(f"PRAGMA table_info({table})").fetchall()
        lpk = [r[1] for r in sorted((r for r in lcols if r[5]), key=lambda r: r[5])]
        want = [(c, SQLITE_OF.get(t, "?" + t), nn and c not in ppk) for c, t, nn in pcols]
        have = [(r[1], r[2].upper().split()[0], bool(r[3])) for r in lcols]
        if want != have:
            problems.append(f"{table}: columns differ:\n  postgres {want}\n  sqlite   {have}")
        if ppk != lpk:
            problems.append(f"{table}: primary key postgres {ppk}, sqlite {lpk}")
        pidx = sorted((n, u, c) for n, u, c in pg.execute(
            "SELECT c.relname, i.indisunique, array_agg(a.attname ORDER BY k.n) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary "
            "AND c.relname NOT LIKE 'uni\\_%%' GROUP BY c.relname, i.indisunique",
            (table,)).fetchall())
        lidx = sorted(
            (name, bool(unique), [r[2] for r in lite.execute(f"PRAGMA index_info({name})")])
            for _, name, unique, origin, _ in lite.execute(f"PRAGMA index_list({table})")
            if origin == "c")
        if pidx != lidx:
            problems.append(f"{table}: indexes differ:\n  postgres {pidx}\n  sqlite   {lidx}")
    if problems:
        sys.exit("gorm_ddl.py --compare:\n" + "\n".join(problems))
    print(f"gorm_ddl.py: the SQLite and PostgreSQL migrations agree ({len(TABLES)} tables)")


def markdown():
    for struct, table, src, fields in TABLES + LEGACY:
        print(f"#### `{table}` — `{struct}` ({src})\n")
        for backend in ("postgres", "sqlite"):
            print(f"{'PostgreSQL' if backend == 'postgres' else 'SQLite'}:\n\n```sql")
            for s in create(backend, struct, table, fields):
                print(s + ";")
            print("```\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--markdown"]:
        markdown()
    elif sys.argv[1:2] == ["--check"]:
        check()
    elif sys.argv[1:2] == ["--compare"] and len(sys.argv) == 4:
        compare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 1:
        write()
    else:
        sys.exit(__doc__)
