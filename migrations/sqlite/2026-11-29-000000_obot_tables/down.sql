DROP TABLE credentials;
DROP TABLE run_states;
DROP TABLE mcp_audit_logs;
DROP TABLE session_cookies;
DROP TABLE mcp_oauth_tokens;
DROP TABLE identities;
DROP TABLE users;
