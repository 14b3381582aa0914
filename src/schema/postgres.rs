// @generated automatically by Diesel CLI.

diesel::table! {
    use crate::schema::types::*;

    credentials (id) {
        id -> Int8,
        created_at -> Nullable<Timestamptz>,
        context -> Text,
        name -> Text,
        secrets -> Nullable<Text>,
        encrypted -> Nullable<Bool>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    identities (auth_provider_name, auth_provider_namespace, hashed_provider_user_id) {
        auth_provider_name -> Text,
        auth_provider_namespace -> Text,
        provider_username -> Nullable<Text>,
        provider_user_id -> Nullable<Text>,
        hashed_provider_user_id -> Text,
        provider_group_lookup_id -> Nullable<Text>,
        email -> Nullable<Text>,
        hashed_email -> Nullable<Text>,
        user_id -> Nullable<Int8>,
        icon_url -> Nullable<Text>,
        icon_last_checked -> Nullable<Timestamptz>,
        encrypted -> Nullable<Bool>,
        auth_provider_groups_last_checked -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    llm_audit_logs (id) {
        id -> Text,
        created_at -> Nullable<Timestamptz>,
        duration -> Nullable<Int8>,
        user_id -> Nullable<Text>,
        api_key_id -> Nullable<Int8>,
        api_key_name -> Nullable<Text>,
        model_provider -> Nullable<Text>,
        model_id -> Nullable<Text>,
        target_model -> Nullable<Text>,
        reasoning_effort -> Nullable<Text>,
        request_path -> Nullable<Text>,
        request_method -> Nullable<Text>,
        request_headers -> Nullable<Bytea>,
        request_body -> Nullable<Bytea>,
        policy_modified_request_body -> Nullable<Bytea>,
        message_policy_triggered -> Bool,
        response_headers -> Nullable<Bytea>,
        response_body -> Nullable<Bytea>,
        response_id -> Nullable<Text>,
        response_status -> Nullable<Int8>,
        outcome -> Nullable<Text>,
        error -> Nullable<Text>,
        input_tokens -> Nullable<Int8>,
        output_tokens -> Nullable<Int8>,
        request_id -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        client_session_id -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        encrypted -> Nullable<Bool>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    local_auth_users (id) {
        id -> Int8,
        created_at -> Nullable<Timestamptz>,
        updated_at -> Nullable<Timestamptz>,
        email -> Nullable<Text>,
        hashed_email -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        encrypted -> Nullable<Bool>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    mcp_audit_logs (id) {
        id -> Int8,
        created_at -> Nullable<Timestamptz>,
        source_type -> Nullable<Text>,
        user_id -> Nullable<Text>,
        api_key_id -> Nullable<Int8>,
        api_key_name -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        api_key -> Nullable<Text>,
        mcp_id -> Nullable<Text>,
        power_user_workspace_id -> Nullable<Text>,
        mcp_server_display_name -> Nullable<Text>,
        mcp_server_catalog_entry_name -> Nullable<Text>,
        client_name -> Nullable<Text>,
        client_version -> Nullable<Text>,
        call_type -> Nullable<Text>,
        call_identifier -> Nullable<Text>,
        request_mutated -> Nullable<Bool>,
        request_body -> Nullable<Bytea>,
        mutated_request_body -> Nullable<Bytea>,
        response_mutated -> Nullable<Bool>,
        response_body -> Nullable<Bytea>,
        original_response_body -> Nullable<Bytea>,
        response_status -> Nullable<Int8>,
        error -> Nullable<Text>,
        processing_time_ms -> Nullable<Int8>,
        session_id -> Nullable<Text>,
        webhook_statuses -> Nullable<Jsonb>,
        response_received -> Nullable<Bool>,
        proxy_exchange_id -> Nullable<Text>,
        request_id -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_headers -> Nullable<Bytea>,
        response_headers -> Nullable<Bytea>,
        occurred_at -> Nullable<Timestamptz>,
        started_at -> Nullable<Timestamptz>,
        actor_type -> Nullable<Text>,
        actor_id -> Nullable<Text>,
        action_name -> Nullable<Text>,
        action_kind -> Nullable<Text>,
        target_type -> Nullable<Text>,
        target_name -> Nullable<Text>,
        target_parent_type -> Nullable<Text>,
        target_parent_name -> Nullable<Text>,
        outcome_status -> Nullable<Text>,
        outcome_reason -> Nullable<Text>,
        local_agent_error -> Nullable<Text>,
        duration_ms -> Nullable<Int8>,
        idempotency_key -> Nullable<Text>,
        tool_use_id -> Nullable<Text>,
        turn_id -> Nullable<Text>,
        agent_provider -> Nullable<Text>,
        agent_version -> Nullable<Text>,
        cli_name -> Nullable<Text>,
        cli_version -> Nullable<Text>,
        model -> Nullable<Text>,
        model_id -> Nullable<Text>,
        permission_mode -> Nullable<Text>,
        device_id -> Nullable<Text>,
        device_deployment_id -> Nullable<Int8>,
        hostname -> Nullable<Text>,
        os -> Nullable<Text>,
        architecture -> Nullable<Text>,
        local_username -> Nullable<Text>,
        cwd -> Nullable<Text>,
        git_root -> Nullable<Text>,
        git_remotes -> Nullable<Jsonb>,
        git_branch -> Nullable<Text>,
        git_commit -> Nullable<Text>,
        reported_user_email -> Nullable<Text>,
        transcript_path -> Nullable<Text>,
        local_agent_request_body -> Nullable<Bytea>,
        local_agent_response_body -> Nullable<Bytea>,
        local_agent_raw_event -> Nullable<Bytea>,
        encrypted -> Nullable<Bool>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    mcpo_auth_pending_states (hashed_state) {
        hashed_state -> Text,
        state -> Nullable<Text>,
        verifier -> Nullable<Text>,
        user_id -> Nullable<Text>,
        mcp_id -> Nullable<Text>,
        url -> Nullable<Text>,
        resource_url -> Nullable<Text>,
        o_auth_auth_request_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        client_secret -> Nullable<Text>,
        auth_url -> Nullable<Text>,
        token_url -> Nullable<Text>,
        auth_style -> Nullable<Int8>,
        redirect_url -> Nullable<Text>,
        scopes -> Nullable<Text>,
        encrypted -> Nullable<Bool>,
        created_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    mcpo_auth_tokens (mcp_id, user_id) {
        auth_url -> Nullable<Text>,
        device_auth_url -> Nullable<Text>,
        token_url -> Nullable<Text>,
        auth_style -> Nullable<Int8>,
        client_id -> Nullable<Text>,
        client_secret -> Nullable<Text>,
        redirect_url -> Nullable<Text>,
        scopes -> Nullable<Text>,
        mcp_id -> Text,
        user_id -> Text,
        url -> Nullable<Text>,
        o_auth_auth_request_id -> Nullable<Text>,
        access_token -> Nullable<Text>,
        token_type -> Nullable<Text>,
        refresh_token -> Nullable<Text>,
        expiry -> Nullable<Timestamptz>,
        expires_in -> Nullable<Int8>,
        encrypted -> Nullable<Bool>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    message_policy_violations (id) {
        id -> Int8,
        created_at -> Nullable<Timestamptz>,
        user_id -> Nullable<Text>,
        policy_id -> Nullable<Text>,
        policy_name -> Nullable<Text>,
        policy_definition -> Nullable<Text>,
        direction -> Nullable<Text>,
        violation_explanation -> Nullable<Text>,
        blocked_content -> Nullable<Bytea>,
        project_id -> Nullable<Text>,
        thread_id -> Nullable<Text>,
        encrypted -> Nullable<Bool>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    properties (key) {
        created_at -> Nullable<Timestamptz>,
        updated_at -> Nullable<Timestamptz>,
        key -> Text,
        value -> Nullable<Text>,
        encrypted -> Nullable<Bool>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    run_states (name, namespace) {
        name -> Text,
        namespace -> Text,
        created_at -> Nullable<Timestamptz>,
        updated_at -> Nullable<Timestamptz>,
        thread_name -> Nullable<Text>,
        program -> Nullable<Bytea>,
        chat_state -> Nullable<Bytea>,
        call_frame -> Nullable<Bytea>,
        output -> Nullable<Bytea>,
        done -> Nullable<Bool>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    session_cookies (hashed_session_id, auth_provider_namespace, auth_provider_name) {
        hashed_session_id -> Text,
        auth_provider_namespace -> Text,
        auth_provider_name -> Text,
        user_id -> Nullable<Int8>,
        cookie -> Nullable<Text>,
        encrypted -> Nullable<Bool>,
    }
}

diesel::table! {
    use crate::schema::types::*;

    users (id) {
        id -> Int8,
        created_at -> Nullable<Timestamptz>,
        display_name -> Nullable<Text>,
        username -> Nullable<Text>,
        hashed_username -> Nullable<Text>,
        email -> Nullable<Text>,
        hashed_email -> Nullable<Text>,
        verified_email -> Nullable<Bool>,
        role -> Nullable<Int8>,
        icon_url -> Nullable<Text>,
        timezone -> Nullable<Text>,
        last_active_day -> Nullable<Timestamptz>,
        internal -> Nullable<Bool>,
        daily_input_tokens_limit -> Nullable<Int8>,
        daily_output_tokens_limit -> Nullable<Int8>,
        encrypted -> Nullable<Bool>,
        deleted_at -> Nullable<Timestamptz>,
        original_email -> Nullable<Text>,
        original_username -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    credentials,
    identities,
    llm_audit_logs,
    local_auth_users,
    mcp_audit_logs,
    mcpo_auth_pending_states,
    mcpo_auth_tokens,
    message_policy_violations,
    properties,
    run_states,
    session_cookies,
    users,
);
