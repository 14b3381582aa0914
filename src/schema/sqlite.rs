// @generated automatically by Diesel CLI.

diesel::table! {
    credentials (id) {
        id -> BigInt,
        created_at -> Timestamp,
        context -> Text,
        name -> Text,
        secrets -> Text,
        encrypted -> Bool,
    }
}

diesel::table! {
    identities (auth_provider_name, auth_provider_namespace, hashed_provider_user_id) {
        auth_provider_name -> Text,
        auth_provider_namespace -> Text,
        provider_username -> Text,
        provider_user_id -> Text,
        hashed_provider_user_id -> Text,
        provider_group_lookup_id -> Text,
        email -> Text,
        hashed_email -> Text,
        user_id -> BigInt,
        icon_url -> Text,
        icon_last_checked -> Nullable<Timestamp>,
        encrypted -> Bool,
    }
}

diesel::table! {
    mcp_audit_logs (id) {
        id -> BigInt,
        created_at -> Timestamp,
        source_type -> Text,
        user_id -> Text,
        mcp_id -> Text,
        mcp_server_display_name -> Text,
        client_name -> Text,
        client_ip -> Text,
        call_type -> Text,
        call_identifier -> Text,
        request_body -> Nullable<Binary>,
        response_body -> Nullable<Binary>,
        request_headers -> Nullable<Binary>,
        response_headers -> Nullable<Binary>,
        response_status -> BigInt,
        processing_time_ms -> BigInt,
        encrypted -> Bool,
    }
}

diesel::table! {
    mcp_oauth_tokens (mcp_id, user_id) {
        mcp_id -> Text,
        user_id -> Text,
        url -> Text,
        auth_url -> Text,
        token_url -> Text,
        auth_style -> BigInt,
        redirect_url -> Text,
        scopes -> Text,
        client_id -> Text,
        client_secret -> Text,
        access_token -> Text,
        token_type -> Text,
        refresh_token -> Text,
        expiry -> Nullable<Timestamp>,
        state -> Nullable<Text>,
        hashed_state -> Nullable<Text>,
        verifier -> Nullable<Text>,
        encrypted -> Bool,
    }
}

diesel::table! {
    run_states (name, namespace) {
        name -> Text,
        namespace -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        thread_name -> Text,
        program -> Nullable<Binary>,
        chat_state -> Nullable<Binary>,
        call_frame -> Nullable<Binary>,
        output -> Nullable<Binary>,
        done -> Bool,
        error -> Text,
    }
}

diesel::table! {
    session_cookies (hashed_session_id, auth_provider_namespace, auth_provider_name) {
        hashed_session_id -> Text,
        auth_provider_namespace -> Text,
        auth_provider_name -> Text,
        user_id -> BigInt,
        cookie -> Text,
        encrypted -> Bool,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        created_at -> Timestamp,
        display_name -> Text,
        username -> Text,
        hashed_username -> Text,
        email -> Text,
        hashed_email -> Text,
        verified_email -> Nullable<Bool>,
        role -> BigInt,
        icon_url -> Text,
        timezone -> Text,
        internal -> Bool,
        encrypted -> Bool,
        deleted_at -> Nullable<Timestamp>,
        original_email -> Text,
        original_username -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    credentials,
    identities,
    mcp_audit_logs,
    mcp_oauth_tokens,
    run_states,
    session_cookies,
    users,
);
