//! `install_checked`: keys that fail their health check are not installed; healthy ones are.
//! (A test binary of its own: the installed keys are per process.)

use std::sync::Arc;

use encrypted_core::kms::{
    DecryptRequest, EncryptResponse, KeyService, KeyServiceRegistry, KmsError, KmsOptions,
    LocalKeyService, Status, Zeroizing,
};
use encrypted_core::{EncryptionConfiguration, Keyring};
use encrypted_diesel::Error;

/// Wraps but no longer unwraps (a lost `kms:Decrypt` permission).
#[derive(Debug)]
struct NoDecrypt(LocalKeyService);

impl KeyService for NoDecrypt {
    fn status(&self) -> Result<Status, encrypted_core::Error> {
        self.0.status()
    }
    fn encrypt(
        &self,
        uid: &str,
        plaintext: &[u8],
    ) -> Result<EncryptResponse, encrypted_core::Error> {
        self.0.encrypt(uid, plaintext)
    }
    fn decrypt(
        &self,
        _uid: &str,
        _request: &DecryptRequest,
    ) -> Result<Zeroizing<Vec<u8>>, encrypted_core::Error> {
        Err(KmsError::UnwrapRefused {
            reason: "not authorized to perform kms:Decrypt".to_owned(),
        }
        .into())
    }
}

fn keyring(deny_decrypt: bool) -> Keyring {
    let yaml = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [users.example.com]\n    providers:\n      - kms:\n          apiVersion: v2\n          name: cloud\n          endpoint: unix:///kek.sock\n";
    let registry = KeyServiceRegistry::default()
        .options(KmsOptions::default().background_polling(false))
        .register(
            "unix://",
            Arc::new(move |_| {
                let local = LocalKeyService::from_key(&[0x44; 32], "kek")?;
                Ok(if deny_decrypt {
                    Arc::new(NoDecrypt(local)) as Arc<dyn KeyService>
                } else {
                    Arc::new(local) as Arc<dyn KeyService>
                })
            }),
        );
    Keyring::builder()
        .kms(registry.factory())
        .build(&EncryptionConfiguration::from_yaml(yaml).expect("valid"))
        .expect("keyring")
}

#[test]
fn broken_keys_are_not_installed_and_healthy_ones_are() {
    let Err(Error::KeyCheck { report }) = encrypted_diesel::install_checked(keyring(true)) else {
        panic!("a key service that cannot decrypt must fail the check");
    };
    let failed: Vec<String> = report.failures().map(|k| k.key.to_string()).collect();
    assert_eq!(failed, ["kms key \"cloud\""]);
    let message = Error::KeyCheck {
        report: report.clone(),
    }
    .to_string();
    assert!(
        message.starts_with("the keyring failed its health check, so it was not installed:\n"),
        "{message}"
    );
    assert!(message.contains("kms:Decrypt"), "{message}");
    assert!(
        matches!(encrypted_diesel::current(), Err(Error::NoKeyring)),
        "nothing was installed"
    );
    let report = encrypted_diesel::install_checked(keyring(false)).expect("healthy keys");
    assert!(report.is_healthy());
    assert!(encrypted_diesel::current().is_ok(), "installed");
}
