//! Arbitrary text through the YAML and JSON configuration readers, and a keyring built from
//! whatever they accept: never a panic.
#![no_main]

use encrypted_core::{EncryptionConfiguration, Keyring};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let yaml = EncryptionConfiguration::from_yaml(text);
    let json = EncryptionConfiguration::from_json(text);
    for config in yaml.iter().chain(&json) {
        let _ = Keyring::from_config(config);
    }
});
