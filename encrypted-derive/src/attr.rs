//! Attribute parsing: `#[encrypted(...)]` on the struct, `#[encrypt(...)]` on fields.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Path, Token};

/// Collects errors so every problem is reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn error(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// One attribute value, with the span of its name; a second occurrence is an error.
pub(crate) struct Attr<T> {
    name: &'static str,
    value: Option<(Span, T)>,
}

impl<T> Attr<T> {
    pub(crate) fn none(name: &'static str) -> Self {
        Self { name, value: None }
    }

    pub(crate) fn set(&mut self, errors: &mut Errors, span: Span, value: T) {
        if self.value.is_some() {
            errors.error(span, format!("duplicate `{}` attribute", self.name));
        } else {
            self.value = Some((span, value));
        }
    }

    pub(crate) fn get(self) -> Option<(Span, T)> {
        self.value
    }
}

/// `#[encrypted(table = users, resource = "...", aad = "...", flag = encrypted,
/// primary_key(id), fallback_resource = "...", rows(column = "value"))]`.
pub(crate) struct StructAttrs {
    pub(crate) table: Option<Path>,
    pub(crate) resource: Option<LitStr>,
    pub(crate) fallback_resource: Option<LitStr>,
    pub(crate) aad: Option<LitStr>,
    pub(crate) flag: Option<Ident>,
    pub(crate) primary_key: Option<Vec<Ident>>,
    pub(crate) rows: Option<(Ident, LitStr)>,
    /// `backends(postgres, sqlite)`: the backends the rotation impls are generated for.
    pub(crate) backends: Option<Vec<Ident>>,
}

const STRUCT_FORM: &str = "expected `#[encrypted(table = users, resource = \"users.example.com\")]` \
     with optional `aad = \"{resource}/{column}\"`, `flag = encrypted`, `primary_key(id)`, \
     `fallback_resource = \"other.example.com\"`, `rows(kind = \"value\")`, \
     `backends(postgres, sqlite, mysql)`";

pub(crate) fn struct_attrs(attrs: &[Attribute], errors: &mut Errors) -> StructAttrs {
    let mut table = Attr::none("table");
    let mut resource = Attr::none("resource");
    let mut fallback_resource = Attr::none("fallback_resource");
    let mut aad = Attr::none("aad");
    let mut flag = Attr::none("flag");
    let mut primary_key = Attr::none("primary_key");
    let mut rows = Attr::none("rows");
    let mut backends = Attr::none("backends");
    for attr in attrs.iter().filter(|a| a.path().is_ident("encrypted")) {
        let result = attr.parse_nested_meta(|meta| {
            let span = meta.path.span();
            if meta.path.is_ident("table") {
                table.set(errors, span, meta.value()?.parse::<Path>()?);
            } else if meta.path.is_ident("resource") {
                resource.set(errors, span, meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("fallback_resource") {
                fallback_resource.set(errors, span, meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("aad") {
                aad.set(errors, span, meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("flag") {
                flag.set(errors, span, meta.value()?.parse::<Ident>()?);
            } else if meta.path.is_ident("primary_key") {
                let content;
                syn::parenthesized!(content in meta.input);
                let keys =
                    content.parse_terminated(<Ident as syn::parse::Parse>::parse, Token![,])?;
                primary_key.set(errors, span, keys.into_iter().collect());
            } else if meta.path.is_ident("backends") {
                let content;
                syn::parenthesized!(content in meta.input);
                let list =
                    content.parse_terminated(<Ident as syn::parse::Parse>::parse, Token![,])?;
                for b in &list {
                    if !["postgres", "sqlite", "mysql"].contains(&b.to_string().as_str()) {
                        errors.error(
                            b.span(),
                            format!(
                                "unknown backend `{b}`; expected `postgres`, `sqlite` or `mysql`"
                            ),
                        );
                    }
                }
                backends.set(errors, span, list.into_iter().collect());
            } else if meta.path.is_ident("rows") {
                let content;
                syn::parenthesized!(content in meta.input);
                let column: Ident = content.parse().map_err(|e| {
                    syn::Error::new(e.span(), "expected `rows(column = \"value\")`")
                })?;
                content.parse::<Token![=]>()?;
                let value: LitStr = content.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected `rows(column = \"value\")`: a string literal",
                    )
                })?;
                if !content.is_empty() {
                    return Err(content.error("expected `rows(column = \"value\")`: one column"));
                }
                rows.set(errors, span, (column, value));
            } else {
                let name = meta
                    .path
                    .get_ident()
                    .map_or_else(|| "?".to_owned(), ToString::to_string);
                return Err(meta.error(format!(
                    "unknown attribute `{name}` in #[encrypted(...)]; {STRUCT_FORM}"
                )));
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    StructAttrs {
        table: table.get().map(|(_, v)| v),
        resource: resource.get().map(|(_, v)| v),
        fallback_resource: fallback_resource.get().map(|(_, v)| v),
        aad: aad.get().map(|(_, v)| v),
        flag: flag.get().map(|(_, v)| v),
        primary_key: primary_key.get().map(|(_, v)| v),
        rows: rows.get().map(|(_, v)| v),
        backends: backends.get().map(|(_, v)| v),
    }
}

/// The normalisations a hash may apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Normalize {
    None,
    Lowercase,
    Trim,
    LowercaseTrim,
}

/// `#[encrypt]` or `#[encrypt(hash = column, hmac, normalize = lowercase_trim, hash_empty =
/// blank, json, base64, skip_empty, wrap = "key", each)]`.
pub(crate) struct FieldAttrs {
    /// The span of the first `#[encrypt]`, when the field has one.
    pub(crate) encrypt: Option<Span>,
    pub(crate) hash: Option<(Span, Ident)>,
    pub(crate) hmac: Option<Span>,
    pub(crate) normalize: Option<(Span, Normalize)>,
    pub(crate) hash_empty_blank: Option<Span>,
    pub(crate) json: Option<Span>,
    pub(crate) base64: Option<Span>,
    pub(crate) skip_empty: Option<Span>,
    pub(crate) wrap: Option<(Span, LitStr)>,
    pub(crate) each: Option<Span>,
}

const FIELD_FORM: &str = "expected `#[encrypt]`, `#[encrypt(json)]`, `#[encrypt(base64)]`, \
     `#[encrypt(each)]` or `#[encrypt(hash = column)]` with optional `hmac`, \
     `normalize = lowercase_trim`, `hash_empty = blank`, and `skip_empty`, `wrap = \"key\"`";

pub(crate) fn field_attrs(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut encrypt = None;
    let mut hash = Attr::none("hash");
    let mut hmac = Attr::none("hmac");
    let mut normalize = Attr::none("normalize");
    let mut json = Attr::none("json");
    let mut base64 = Attr::none("base64");
    let mut hash_empty = Attr::none("hash_empty");
    let mut skip_empty = Attr::none("skip_empty");
    let mut wrap = Attr::none("wrap");
    let mut each = Attr::none("each");
    for attr in attrs {
        if attr.path().is_ident("encrypted") {
            errors.error(
                attr.path().span(),
                "`#[encrypted(...)]` belongs on the struct; on a field write `#[encrypt]`",
            );
            continue;
        }
        if !attr.path().is_ident("encrypt") {
            continue;
        }
        if encrypt.is_some() {
            errors.error(
                attr.path().span(),
                "duplicate `#[encrypt]` attribute; combine them as `#[encrypt(a, b)]`",
            );
            continue;
        }
        encrypt = Some(attr.path().span());
        if matches!(attr.meta, syn::Meta::Path(_)) {
            continue;
        }
        let result = attr.parse_nested_meta(|meta| {
            let span = meta.path.span();
            if meta.path.is_ident("hash") {
                hash.set(errors, span, meta.value()?.parse::<Ident>()?);
            } else if meta.path.is_ident("hmac") {
                hmac.set(errors, span, ());
            } else if meta.path.is_ident("json") {
                json.set(errors, span, ());
            } else if meta.path.is_ident("base64") {
                base64.set(errors, span, ());
            } else if meta.path.is_ident("skip_empty") {
                skip_empty.set(errors, span, ());
            } else if meta.path.is_ident("each") {
                each.set(errors, span, ());
            } else if meta.path.is_ident("wrap") {
                wrap.set(errors, span, meta.value()?.parse::<LitStr>()?);
            } else if meta.path.is_ident("hash_empty") {
                let value = meta.value()?.parse::<Ident>()?;
                match value.to_string().as_str() {
                    "blank" => hash_empty.set(errors, span, true),
                    "hash" => hash_empty.set(errors, span, false),
                    other => {
                        return Err(syn::Error::new(
                            value.span(),
                            format!(
                                "unknown `hash_empty = {other}`; expected `hash_empty = blank` \
                                 (an empty value leaves the hash column '') or `hash_empty = hash`"
                            ),
                        ));
                    }
                }
            } else if meta.path.is_ident("normalize") {
                let value = meta.value()?.parse::<Ident>()?;
                let n = match value.to_string().as_str() {
                    "none" => Normalize::None,
                    "lowercase" => Normalize::Lowercase,
                    "trim" => Normalize::Trim,
                    "lowercase_trim" => Normalize::LowercaseTrim,
                    other => {
                        return Err(syn::Error::new(
                            value.span(),
                            format!(
                                "unknown normalization `{other}`; expected one of `none`, \
                                 `lowercase`, `trim`, `lowercase_trim`"
                            ),
                        ));
                    }
                };
                normalize.set(errors, span, n);
            } else {
                let name = meta
                    .path
                    .get_ident()
                    .map_or_else(|| "?".to_owned(), ToString::to_string);
                return Err(meta.error(format!(
                    "unknown attribute `{name}` in #[encrypt(...)]; {FIELD_FORM}"
                )));
            }
            Ok(())
        });
        if let Err(e) = result {
            errors.push(e);
        }
    }
    FieldAttrs {
        encrypt,
        hash: hash.get(),
        hmac: hmac.get().map(|(s, ())| s),
        normalize: normalize.get(),
        json: json.get().map(|(s, ())| s),
        base64: base64.get().map(|(s, ())| s),
        hash_empty_blank: hash_empty.get().and_then(|(s, blank)| blank.then_some(s)),
        skip_empty: skip_empty.get().map(|(s, ())| s),
        wrap: wrap.get(),
        each: each.get().map(|(s, ())| s),
    }
}
