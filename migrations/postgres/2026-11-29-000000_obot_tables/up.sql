-- Obot's encrypted tables (see DESIGN.md and the Obot encryption spec). Encrypted columns keep their
-- ordinary type: text holds standard base64 of the Kubernetes transformer output, BYTEA the raw
-- output (run_states) or ASCII base64 (mcp_audit_logs, as Obot writes json.RawMessage fields).
-- `encrypted` is Obot's flag: false means the row's values are legacy plaintext.
-- Primary keys are BIGINT supplied by the application (not SQLite rowid aliases), so that the
-- schema is the same type on both backends.

CREATE TABLE users (
    id BIGINT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    display_name TEXT NOT NULL DEFAULT '',
    username TEXT NOT NULL,
    hashed_username TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL DEFAULT '',
    hashed_email TEXT NOT NULL DEFAULT '',
    verified_email BOOLEAN,
    role BIGINT NOT NULL DEFAULT 0,
    icon_url TEXT NOT NULL DEFAULT '',
    timezone TEXT NOT NULL DEFAULT '',
    internal BOOLEAN NOT NULL DEFAULT FALSE,
    encrypted BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at TIMESTAMP,
    original_email TEXT NOT NULL DEFAULT '',
    original_username TEXT NOT NULL DEFAULT ''
);
CREATE INDEX idx_users_hashed_email ON users (hashed_email);

CREATE TABLE identities (
    auth_provider_name TEXT NOT NULL,
    auth_provider_namespace TEXT NOT NULL,
    provider_username TEXT NOT NULL DEFAULT '',
    provider_user_id TEXT NOT NULL DEFAULT '',
    hashed_provider_user_id TEXT NOT NULL,
    provider_group_lookup_id TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    hashed_email TEXT NOT NULL DEFAULT '',
    user_id BIGINT NOT NULL,
    icon_url TEXT NOT NULL DEFAULT '',
    icon_last_checked TIMESTAMP,
    encrypted BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (auth_provider_name, auth_provider_namespace, hashed_provider_user_id)
);
CREATE INDEX idx_user_auth_id ON identities (auth_provider_name, auth_provider_namespace, user_id);
CREATE INDEX idx_identities_hashed_email ON identities (hashed_email);

-- Obot (GORM) names this table mcpo_auth_tokens; the DESIGN's name is kept here. `state`,
-- `hashed_state` and `verifier` are the columns older Obot versions kept in this table.
CREATE TABLE mcp_oauth_tokens (
    mcp_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    auth_url TEXT NOT NULL DEFAULT '',
    token_url TEXT NOT NULL DEFAULT '',
    auth_style BIGINT NOT NULL DEFAULT 0,
    redirect_url TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL DEFAULT '',
    client_id TEXT NOT NULL DEFAULT '',
    client_secret TEXT NOT NULL DEFAULT '',
    access_token TEXT NOT NULL DEFAULT '',
    token_type TEXT NOT NULL DEFAULT '',
    refresh_token TEXT NOT NULL DEFAULT '',
    expiry TIMESTAMP,
    state TEXT,
    hashed_state TEXT,
    verifier TEXT,
    encrypted BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (mcp_id, user_id)
);
CREATE INDEX idx_mcp_oauth_tokens_hashed_state ON mcp_oauth_tokens (hashed_state);

CREATE TABLE session_cookies (
    hashed_session_id TEXT NOT NULL,
    auth_provider_namespace TEXT NOT NULL,
    auth_provider_name TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    cookie TEXT NOT NULL DEFAULT '',
    encrypted BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (hashed_session_id, auth_provider_namespace, auth_provider_name)
);
CREATE INDEX idx_session_cookies_user_id ON session_cookies (user_id);

CREATE TABLE mcp_audit_logs (
    id BIGINT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    source_type TEXT NOT NULL DEFAULT 'mcp',
    user_id TEXT NOT NULL,
    mcp_id TEXT NOT NULL,
    mcp_server_display_name TEXT NOT NULL DEFAULT '',
    client_name TEXT NOT NULL DEFAULT '',
    client_ip TEXT NOT NULL DEFAULT '',
    call_type TEXT NOT NULL DEFAULT '',
    call_identifier TEXT NOT NULL DEFAULT '',
    request_body BYTEA,
    response_body BYTEA,
    request_headers BYTEA,
    response_headers BYTEA,
    response_status BIGINT NOT NULL DEFAULT 0,
    processing_time_ms BIGINT NOT NULL DEFAULT 0,
    encrypted BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX idx_mcp_audit_logs_created_at ON mcp_audit_logs (created_at);
CREATE INDEX idx_mcp_audit_logs_user_id ON mcp_audit_logs (user_id);

-- Historic in Obot (dropped 2026-06); no `encrypted` flag, raw transformer output.
CREATE TABLE run_states (
    name TEXT NOT NULL,
    namespace TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    thread_name TEXT NOT NULL DEFAULT '',
    program BYTEA,
    chat_state BYTEA,
    call_frame BYTEA,
    output BYTEA,
    done BOOLEAN NOT NULL DEFAULT FALSE,
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (name, namespace)
);

CREATE TABLE credentials (
    id BIGINT PRIMARY KEY NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    context TEXT NOT NULL,
    name TEXT NOT NULL,
    secrets TEXT NOT NULL,
    encrypted BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX idx_credentials_context_name ON credentials (context, name);
