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
#[proc_macro_derive(Encrypted, attributes(encrypted, encrypt))]
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
