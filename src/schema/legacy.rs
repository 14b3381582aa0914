//! The legacy GPTScript credential store's table, which no migration of this crate creates.
//!
//! Obot kept tool credentials in `gptscript_credentials` until it moved them into
//! [`credentials`](super::credentials) (obot-platform/obot 0c644c068,
//! `pkg/gateway/client/credential_migration.go`). The table was created by the credential
//! store's own GORM model (obot-platform/tools `credential-stores/pkg/common/db.go`
//! `GptscriptCredential`): in Obot's database on PostgreSQL, in `<db>-credentials.db` beside
//! Obot's file on SQLite (`pkg/services/config.go` `migrateGPTScriptCredentials`). Written by
//! hand from that model, with the types GORM gives it (see `docs/obot-encryption-spec.md`):
//!
//! ```sql
//! CREATE TABLE "gptscript_credentials" ("id" bigserial,"created_at" timestamptz,
//!   "server_url" text,"username" text,"secret" text,"context" text,PRIMARY KEY ("id"),
//!   CONSTRAINT "uni_gptscript_credentials_server_url" UNIQUE ("server_url"));
//! CREATE INDEX IF NOT EXISTS "idx_gptscript_credentials_context" ON "gptscript_credentials" ("context");
//! ```

diesel::table! {
    use crate::schema::types::*;

    /// One credential of the old store: `server_url` is `<name>///<context>`, `secret` the
    /// credential helper's JSON (`{"env": {...}, ...}`), or `{"e": "<base64>"}` when the store
    /// encrypted it (resource `credentials`, AAD = `server_url`).
    gptscript_credentials (id) {
        /// Primary key.
        id -> Int8,
        /// Creation time.
        created_at -> Nullable<Timestamptz>,
        /// `<name>///<context>`.
        server_url -> Nullable<Text>,
        /// Unused by Obot.
        username -> Nullable<Text>,
        /// The secret (see above).
        secret -> Nullable<Text>,
        /// The context (a copy of the part after `///`).
        context -> Nullable<Text>,
    }
}
