//! The group-resources an Obot `EncryptionConfiguration` lists.

/// What Obot's Helm chart writes for a custom key (obot-platform/obot
/// ba10ff724730e58414ff2185626ea3077c698b19 `chart/templates/deployment.yaml`, init container
/// `encryptionsetup`), in its order; the shipped KMS configurations (`aws-encryption.yaml`,
/// `gcp-encryption.yaml`, `azure-encryption.yaml`) list the same nine.
pub const OBOT_CHART: &[&str] = &[
    "credentials.obot.obot.ai",
    "users.obot.obot.ai",
    "identities.obot.obot.ai",
    "mcpoauthtokens.obot.obot.ai",
    "mcpauditlogs.obot.obot.ai",
    "llmauditlogs.obot.obot.ai",
    "mcpoauthpendingstates.obot.obot.ai",
    "policyviolations.obot.obot.ai",
    "properties.obot.obot.ai",
];

/// Resources of tables Obot no longer writes, kept here: the legacy credential store
/// (`credentials`, core group), session cookies and run states.
pub const HISTORIC: &[&str] = &[
    "credentials",
    "sessioncookies.obot.obot.ai",
    "runstates.obot.obot.ai",
];

/// What `keygen` and `init` write: [`OBOT_CHART`], then [`HISTORIC`].
pub const ALL: &[&str] = &[
    "credentials.obot.obot.ai",
    "users.obot.obot.ai",
    "identities.obot.obot.ai",
    "mcpoauthtokens.obot.obot.ai",
    "mcpauditlogs.obot.obot.ai",
    "llmauditlogs.obot.obot.ai",
    "mcpoauthpendingstates.obot.obot.ai",
    "policyviolations.obot.obot.ai",
    "properties.obot.obot.ai",
    "credentials",
    "sessioncookies.obot.obot.ai",
    "runstates.obot.obot.ai",
];

/// The key name Obot's chart gives its `aesgcm` key, and `keygen`'s and `init`'s default.
pub const DEFAULT_KEY_NAME: &str = "key0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_the_chart_then_the_historic_resources() {
        let joined: Vec<&str> = OBOT_CHART.iter().chain(HISTORIC).copied().collect();
        assert_eq!(joined, ALL);
    }
}
