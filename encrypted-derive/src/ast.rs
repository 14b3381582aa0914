//! The model as the derive understands it: parsed and validated.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, DeriveInput, Ident, LitStr, Path, Type, Visibility};

use crate::attr::{self, Errors, Normalize};

pub(crate) struct Model<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) vis: &'a Visibility,
    pub(crate) table: Path,
    pub(crate) resource: LitStr,
    pub(crate) fallback_resource: Option<LitStr>,
    pub(crate) aad: Vec<Segment>,
    pub(crate) flag: Option<Ident>,
    /// `primary_key(...)` as written, if any.
    pub(crate) primary_key: Option<Vec<Ident>>,
    /// The key columns as the table has them: `primary_key(...)`, else `id`.
    pub(crate) key: Vec<Ident>,
    pub(crate) rows: Option<(Ident, LitStr)>,
    /// `backends(...)`, if given: the backends to generate rotation impls for.
    pub(crate) backends: Option<Vec<String>>,
    pub(crate) fields: Vec<Field<'a>>,
}

pub(crate) struct Field<'a> {
    pub(crate) ident: &'a Ident,
    /// The table column: `#[diesel(column_name = ...)]`, else the field's name.
    pub(crate) column: Ident,
    pub(crate) ty: &'a Type,
    /// Other attributes (`#[diesel(...)]` is passed on to the record).
    pub(crate) diesel_attrs: Vec<&'a Attribute>,
    pub(crate) encrypt: Option<Encrypt<'a>>,
}

pub(crate) struct Encrypt<'a> {
    /// The type inside `Option<...>` when the field is nullable.
    pub(crate) inner: &'a Type,
    pub(crate) nullable: bool,
    pub(crate) json: bool,
    pub(crate) base64: bool,
    pub(crate) skip_empty: bool,
    pub(crate) wrap: Option<LitStr>,
    /// Each element of a list encrypted on its own (a JSON array column).
    pub(crate) each: bool,
    pub(crate) hash: Option<Hash>,
}

pub(crate) struct Hash {
    pub(crate) column: Ident,
    pub(crate) hmac: bool,
    pub(crate) normalize: Normalize,
    /// An empty value leaves the hash column `''` (Obot's `hashed_email`).
    pub(crate) blank_if_empty: bool,
}

/// A piece of the AAD template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    Column,
    /// A hash column or a non-encrypted field.
    Value(Ident),
    /// A key field: must be assigned (not 0, not `None`) when a value is sealed.
    Key(Ident),
}

/// The `column_name` of a field's `#[diesel(...)]` attributes, if any (an identifier or a string
/// literal, as Diesel accepts). Other keys are skipped: Diesel's own derive reports their errors.
fn diesel_column_name(attrs: &[&Attribute]) -> Option<Ident> {
    let mut found = None;
    for attr in attrs {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("column_name") {
                let value = meta.value()?;
                found = Some(if value.peek(LitStr) {
                    let lit: LitStr = value.parse()?;
                    Ident::new(&lit.value(), lit.span())
                } else {
                    value.parse::<Ident>()?
                });
            } else if meta.input.peek(syn::Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            } else if meta.input.peek(syn::token::Paren) {
                let _inner;
                syn::parenthesized!(_inner in meta.input);
            }
            Ok(())
        });
    }
    found
}

impl<'a> Model<'a> {
    pub(crate) fn from_input(input: &'a DeriveInput) -> syn::Result<Self> {
        let mut errors = Errors::default();
        let attrs = attr::struct_attrs(&input.attrs, &mut errors);
        if !input.generics.params.is_empty() {
            errors.error(
                input.generics.span(),
                "#[derive(Encrypted)] does not support generic models",
            );
        }
        let named = match &input.data {
            syn::Data::Struct(syn::DataStruct {
                fields: syn::Fields::Named(named),
                ..
            }) => Some(named),
            _ => {
                errors.error(
                    input.ident.span(),
                    "#[derive(Encrypted)] expects a struct with named fields",
                );
                None
            }
        };
        let mut fields = Vec::new();
        for field in named.map(|n| n.named.iter()).into_iter().flatten() {
            let Some(ident) = field.ident.as_ref() else {
                continue;
            };
            let fa = attr::field_attrs(&field.attrs, &mut errors);
            let diesel_attrs: Vec<&Attribute> = field
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("diesel"))
                .collect();
            let encrypt = match fa.encrypt {
                None => {
                    for (span, what) in [
                        (fa.hash.as_ref().map(|h| h.0), "hash"),
                        (fa.hmac, "hmac"),
                        (fa.json, "json"),
                        (fa.base64, "base64"),
                        (fa.skip_empty, "skip_empty"),
                        (fa.wrap.as_ref().map(|w| w.0), "wrap"),
                        (fa.each, "each"),
                        (fa.hash_empty_blank, "hash_empty"),
                    ] {
                        if let Some(span) = span {
                            errors.error(span, format!("`{what}` needs `#[encrypt(...)]`"));
                        }
                    }
                    None
                }
                Some(_) => {
                    let (inner, nullable) = option_inner(&field.ty);
                    if fa.hash.is_none() {
                        if let Some(span) = fa.hmac {
                            errors.error(
                                span,
                                "`hmac` needs a hash column: `#[encrypt(hash = column, hmac)]`",
                            );
                        }
                        if let Some((span, _)) = fa.normalize {
                            errors.error(
                                span,
                                "`normalize` needs a hash column: \
                                 `#[encrypt(hash = column, normalize = lowercase_trim)]`",
                            );
                        }
                    }
                    if let (Some(span), Some(_)) = (fa.json, &fa.hash) {
                        errors.error(span, "a `json` field cannot have a hash column");
                    }
                    if let (None, Some(span)) = (&fa.hash, fa.hash_empty_blank) {
                        errors.error(
                            span,
                            "`hash_empty` needs a hash column: \
                             `#[encrypt(hash = column, hash_empty = blank)]`",
                        );
                    }
                    if let Some(span) = fa.each {
                        for (other, what) in [
                            (fa.json, "json"),
                            (fa.base64, "base64"),
                            (fa.wrap.as_ref().map(|w| w.0), "wrap"),
                            (fa.hash.as_ref().map(|h| h.0), "hash"),
                        ] {
                            if other.is_some() {
                                errors.error(
                                    span,
                                    format!(
                                        "`each` (a JSON array whose elements are encrypted one by \
                                         one) cannot be combined with `{what}`"
                                    ),
                                );
                            }
                        }
                    }
                    if let (Some((span, _)), Some(_)) = (&fa.wrap, fa.base64) {
                        errors.error(
                            *span,
                            "`wrap` stores a JSON object in a text column; it cannot be combined \
                             with `base64`",
                        );
                    }
                    let wrap = fa.wrap.map(|(_, w)| w);
                    if let Some(w) = &wrap
                        && w.value().is_empty()
                    {
                        errors.error(w.span(), "`wrap` needs a non-empty JSON key");
                    }
                    Some(Encrypt {
                        inner,
                        nullable,
                        json: fa.json.is_some(),
                        base64: fa.base64.is_some(),
                        skip_empty: fa.skip_empty.is_some(),
                        wrap,
                        each: fa.each.is_some(),
                        hash: fa.hash.map(|(_, column)| Hash {
                            column,
                            hmac: fa.hmac.is_some(),
                            normalize: fa.normalize.map_or(Normalize::None, |(_, n)| n),
                            blank_if_empty: fa.hash_empty_blank.is_some(),
                        }),
                    })
                }
            };
            let column = diesel_column_name(&diesel_attrs).unwrap_or_else(|| ident.clone());
            fields.push(Field {
                ident,
                column,
                ty: &field.ty,
                diesel_attrs,
                encrypt,
            });
        }
        if named.is_some() && !fields.iter().any(|f| f.encrypt.is_some()) {
            errors.error(
                input.ident.span(),
                "#[derive(Encrypted)] expects at least one `#[encrypt]` field",
            );
        }
        // Hash columns and the flag must not collide with fields or each other.
        let mut extra: Vec<&Ident> = Vec::new();
        for f in &fields {
            if let Some(h) = f.encrypt.as_ref().and_then(|e| e.hash.as_ref()) {
                if fields.iter().any(|g| *g.ident == h.column) || extra.contains(&&h.column) {
                    errors.error(
                        h.column.span(),
                        format!(
                            "hash column `{}` is already a field or hash column",
                            h.column
                        ),
                    );
                }
                extra.push(&h.column);
            }
        }
        if let Some(flag) = &attrs.flag
            && (fields.iter().any(|g| g.ident == flag) || extra.contains(&flag))
        {
            errors.error(
                flag.span(),
                format!("flag column `{flag}` is already a field or hash column"),
            );
        }
        let key = attrs
            .primary_key
            .clone()
            .unwrap_or_else(|| vec![Ident::new("id", Span::call_site())]);
        let aad = match &attrs.aad {
            Some(lit) => parse_template(lit, &fields, &key, &mut errors),
            None => Vec::new(),
        };
        if let Some((column, _)) = &attrs.rows
            && fields
                .iter()
                .any(|f| f.encrypt.is_some() && f.column == *column)
        {
            errors.error(
                column.span(),
                format!("`rows({column} = ...)` names an encrypted field; use a plain column"),
            );
        }
        let resource = attrs.resource.clone();
        if attrs.table.is_none() || resource.is_none() {
            errors.error(
                input.ident.span(),
                "missing `table` or `resource`: expected \
                 `#[encrypted(table = users, resource = \"users.example.com\")]`",
            );
        }
        errors.finish()?;
        let (Some(table), Some(resource)) = (attrs.table, resource) else {
            return Err(syn::Error::new(Span::call_site(), "unreachable"));
        };
        let aad = if attrs.aad.is_some() {
            aad.into_iter()
                .map(|s| match s {
                    Segment::Literal(l) => {
                        Segment::Literal(l.replace(&lit_resource_placeholder(), &resource.value()))
                    }
                    other => other,
                })
                .collect()
        } else {
            vec![
                Segment::Literal(format!("{}/", resource.value())),
                Segment::Column,
            ]
        };
        Ok(Model {
            ident: &input.ident,
            vis: &input.vis,
            table,
            resource,
            fallback_resource: attrs.fallback_resource,
            aad,
            flag: attrs.flag,
            primary_key: attrs.primary_key,
            key,
            rows: attrs.rows,
            backends: attrs
                .backends
                .map(|list| list.iter().map(ToString::to_string).collect()),
            fields,
        })
    }
}

/// `Option<T>` → (`T`, true); anything else → (itself, false).
fn option_inner(ty: &Type) -> (&Type, bool) {
    if let Type::Path(p) = ty
        && p.qself.is_none()
        && let Some(last) = p.path.segments.last()
        && last.ident == "Option"
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && args.args.len() == 1
        && let Some(syn::GenericArgument::Type(inner)) = args.args.first()
    {
        return (inner, true);
    }
    (ty, false)
}

fn parse_template(
    lit: &LitStr,
    fields: &[Field<'_>],
    key: &[Ident],
    errors: &mut Errors,
) -> Vec<Segment> {
    let text = lit.value();
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = text.as_str();
    let known = || {
        let mut names = vec!["{resource}".to_owned(), "{column}".to_owned()];
        for f in fields {
            match &f.encrypt {
                None => names.push(format!("{{{}}}", f.ident)),
                Some(e) => {
                    if let Some(h) = &e.hash {
                        names.push(format!("{{{}}}", h.column));
                    }
                }
            }
        }
        names.join(", ")
    };
    // Where a placeholder sits: its span on compilers that can point inside a literal, else the
    // literal's, and its character range for the message either way.
    let offset = |rest: &str, at: usize| text.len() - rest.len() + at;
    let place = |start: usize, end: usize| {
        // +1: the literal's token starts with its opening quote.
        let span = lit
            .token()
            .subspan(start + 1..end + 1)
            .unwrap_or_else(|| lit.span());
        (
            span,
            format!(" (characters {start}..{end} of the aad template)"),
        )
    };
    while let Some(start) = rest.find('{') {
        literal.push_str(&rest[..start]);
        let begin = offset(rest, start);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            let (span, at) = place(begin, text.len());
            errors.error(
                span,
                format!("unclosed `{{` in aad template; expected `{{name}}`{at}"),
            );
            return out;
        };
        let name = &after[..end];
        let (span, at) = place(begin, begin + end + 2);
        rest = &after[end + 1..];
        let segment = match name {
            "resource" => {
                literal.push_str(&lit_resource_placeholder());
                None
            }
            "column" => Some(Segment::Column),
            _ => {
                let hash = fields.iter().find_map(|f| {
                    f.encrypt
                        .as_ref()
                        .and_then(|e| e.hash.as_ref())
                        .filter(|h| h.column == name)
                        .map(|h| h.column.clone())
                });
                let plain = fields
                    .iter()
                    .find(|f| f.encrypt.is_none() && f.ident == name)
                    .map(|f| f.ident.clone());
                let hmac_hash = fields.iter().any(|f| {
                    f.encrypt
                        .as_ref()
                        .and_then(|e| e.hash.as_ref())
                        .is_some_and(|h| h.hmac && h.column == name)
                });
                if hmac_hash {
                    errors.error(
                        span,
                        format!(
                            "aad placeholder `{{{name}}}` names an `hmac` hash column{at}: \
                             rotating the lookup key would change every value's context; use a \
                             plain field or a SHA-256 hash column"
                        ),
                    );
                    None
                } else if let Some(ident) = hash.or(plain) {
                    if key.contains(&ident) {
                        Some(Segment::Key(ident))
                    } else {
                        Some(Segment::Value(ident))
                    }
                } else if fields
                    .iter()
                    .any(|f| f.encrypt.is_some() && f.ident == name)
                {
                    errors.error(
                        span,
                        format!(
                            "aad placeholder `{{{name}}}` names an encrypted field{at}; use its \
                             hash column or a plain field: {}",
                            known()
                        ),
                    );
                    None
                } else {
                    errors.error(
                        span,
                        format!(
                            "unknown placeholder `{{{name}}}` in aad{at}; expected one of {}",
                            known()
                        ),
                    );
                    None
                }
            }
        };
        if let Some(segment) = segment {
            out.push(Segment::Literal(std::mem::take(&mut literal)));
            out.push(segment);
        }
    }
    literal.push_str(rest);
    out.push(Segment::Literal(literal));
    out
}

/// Marker replaced by the resource name during expansion.
pub(crate) fn lit_resource_placeholder() -> String {
    "\u{0}resource\u{0}".to_owned()
}
