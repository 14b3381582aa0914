//! `#[derive(Encrypted)]`: Diesel models whose fields are encrypted at rest.
//!
//! Use it through `encrypted-diesel`, which re-exports it and documents the attributes; the
//! generated code names paths in `::encrypted_diesel::__private`.
#![forbid(unsafe_code)]

mod ast;
mod attr;
mod expand;
mod fallback;

use proc_macro::TokenStream;

/// Derives the Diesel traits of a model with encrypted fields; see `encrypted_diesel`.
///
/// Field attributes `#[diesel(...)]` (such as `column_name`) are passed on to the generated
/// Diesel record, so the model needs no Diesel derive of its own to use them.
#[proc_macro_derive(Encrypted, attributes(encrypted, encrypt, diesel))]
pub fn derive_encrypted(input: TokenStream) -> TokenStream {
    derive_encrypted_inner(input.into()).into()
}

fn derive_encrypted_inner(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    match ast::Model::from_input(&input) {
        Ok(model) => expand::expand(&model),
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(fallback::expand(&input));
            out
        }
    }
}

#[cfg(test)]
mod tests;
