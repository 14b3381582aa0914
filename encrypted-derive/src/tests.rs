//! Snapshot of the expansion of one representative model.

use quote::quote;

fn expand(input: proc_macro2::TokenStream) -> String {
    let out = crate::derive_encrypted_inner(input);
    let file: syn::File = syn::parse2(out).expect("the expansion parses as a file");
    prettyplease::unparse(&file)
}

#[test]
fn expansion_of_a_representative_model() {
    insta::assert_snapshot!(expand(quote! {
        #[encrypted(table = users, resource = "users.obot.obot.ai", aad = "{resource}/{hashed_username}", flag = encrypted)]
        pub struct User {
            pub id: i64,
            #[encrypt(hash = hashed_username)]
            pub username: String,
            #[encrypt(hash = hashed_email, normalize = lowercase_trim)]
            pub email: String,
            #[encrypt(hash = hashed_nick, hmac)]
            pub nick: Option<String>,
            #[encrypt(json)]
            pub settings: Settings,
            #[encrypt(base64)]
            pub blob: Vec<u8>,
        }
    }));
}

#[test]
fn errors_are_collected_and_stub_debug_is_emitted() {
    let out = expand(quote! {
        #[encrypted(table = users, table = users, resource = "r", aad = "{nope}")]
        pub struct User {
            #[encrypt(hsah = x)]
            pub name: String,
        }
    });
    assert!(out.contains("duplicate `table` attribute"), "{out}");
    assert!(out.contains("unknown placeholder `{nope}`"), "{out}");
    assert!(out.contains("unknown attribute `hsah`"), "{out}");
    assert!(out.contains("impl ::core::fmt::Debug for User"), "{out}");
}
