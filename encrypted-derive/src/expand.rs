//! Code generation for a validated [`Model`].
//!
//! The model gets a hidden record type carrying Diesel's own derives (`Queryable`, `Selectable`,
//! `Insertable`, `AsChangeset`) whose encrypted fields hold stored values and which has the
//! hash and flag columns; the model's Diesel impls delegate to it, sealing on the way in and
//! opening on the way out. Each encrypted field is described by a `Spec` constant and each hash
//! column by a `HashSpec`: the rules live in `encrypted_diesel::__private`, the generated code
//! only lists fields. For the rotation engine the derive also implements `Rotate` (what the
//! engine reads of a record), a changeset type writing the encrypted columns back, and
//! `Table<Connection>` for every backend (kept or dropped by `encrypted-diesel`'s features
//! through its `__if_*!` macros).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::ast::{Encrypt, Field, Hash, Model, Segment};
use crate::attr::Normalize;

/// Paths and names shared by the generators.
struct Ctx<'m, 'a> {
    m: &'m Model<'a>,
    p: TokenStream,
    d: TokenStream,
    model_name: String,
    record: Ident,
    rewrite: Ident,
}

impl Ctx<'_, '_> {
    /// `<table::column as Expression>::SqlType`.
    fn sql_type(&self, column: &Ident) -> TokenStream {
        let (d, table) = (&self.d, &self.m.table);
        quote!(<#table::#column as #d::Expression>::SqlType)
    }

    /// The type alias of an encrypted field's stored value.
    fn slot_alias(f: &Field<'_>) -> Ident {
        format_ident!("__Slot_{}", f.ident.unraw())
    }

    fn spec_const(f: &Field<'_>) -> Ident {
        format_ident!("__SPEC_{}", f.ident.unraw())
    }

    fn hash_const(f: &Field<'_>) -> Ident {
        format_ident!("__HASH_{}", f.ident.unraw())
    }
}

pub(crate) fn expand(m: &Model<'_>) -> TokenStream {
    let cx = Ctx {
        m,
        p: quote!(::encrypted_diesel::__private),
        d: quote!(::encrypted_diesel::__private::diesel),
        model_name: m.ident.unraw().to_string(),
        record: Ident::new("__EncryptedRecord", Span::call_site()),
        rewrite: Ident::new("__EncryptedRewrite", Span::call_site()),
    };
    let ident = m.ident;
    let debug = debug_impl(&cx);
    let helpers = helpers(&cx);
    let checks = column_checks(&cx);
    let record = record_struct(&cx);
    let consts = spec_consts(&cx);
    let seal_open = seal_open(&cx);
    let diesel_impls = diesel_impls(&cx);
    let rotate = rotate_impl(&cx);
    let backends = backend_impls(&cx);
    quote! {
        #debug

        #[automatically_derived]
        impl #ident {
            #(#helpers)*
        }

        const _: () = {
            // Checked before the record's impls, so this error comes first.
            #(#checks)*
            #record
            #consts
            #seal_open
            #diesel_impls
            #rotate
            #backends
        };
    }
}

fn encrypted<'m, 'a>(m: &'m Model<'a>) -> impl Iterator<Item = (&'m Field<'a>, &'m Encrypt<'a>)> {
    m.fields
        .iter()
        .filter_map(|f| f.encrypt.as_ref().map(|e| (f, e)))
}

fn hashed<'m, 'a>(
    m: &'m Model<'a>,
) -> impl Iterator<Item = (&'m Field<'a>, &'m Encrypt<'a>, &'m Hash)> {
    encrypted(m).filter_map(|(f, e)| e.hash.as_ref().map(|h| (f, e, h)))
}

fn normalize(n: Normalize) -> TokenStream {
    let variant = match n {
        Normalize::None => quote!(None),
        Normalize::Lowercase => quote!(Lowercase),
        Normalize::Trim => quote!(Trim),
        Normalize::LowercaseTrim => quote!(LowercaseTrim),
    };
    quote!(::encrypted_diesel::__private::Normalize::#variant)
}

fn debug_impl(cx: &Ctx<'_, '_>) -> TokenStream {
    let ident = cx.m.ident;
    let model_name = &cx.model_name;
    let fields = cx.m.fields.iter().map(|f| {
        let field = f.ident;
        let name = field.unraw().to_string();
        if f.encrypt.is_some() {
            quote!(.field(#name, &::core::format_args!("[REDACTED]")))
        } else {
            quote!(.field(#name, &self.#field))
        }
    });
    quote! {
        #[automatically_derived]
        impl ::core::fmt::Debug for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#model_name) #(#fields)* .finish()
            }
        }
    }
}

/// A `HashSpec` literal for a hashed field.
fn hash_spec(cx: &Ctx<'_, '_>, f: &Field<'_>, h: &Hash) -> TokenStream {
    let p = &cx.p;
    let model_name = &cx.model_name;
    let field_name = f.ident.unraw().to_string();
    let column = h.column.unraw().to_string();
    let resource = &cx.m.resource;
    let hmac = h.hmac;
    let norm = normalize(h.normalize);
    let blank = h.blank_if_empty;
    quote! {
        #p::HashSpec {
            model: #model_name,
            field: #field_name,
            column: #column,
            resource: #resource,
            hmac: #hmac,
            normalize: #norm,
            blank_if_empty: #blank,
        }
    }
}

/// `field_hash` and `field_eq` for each hashed field.
fn helpers(cx: &Ctx<'_, '_>) -> Vec<TokenStream> {
    let (p, d, m) = (&cx.p, &cx.d, cx.m);
    let (table, vis) = (&m.table, m.vis);
    hashed(m)
        .map(|(f, e, h)| {
            let field_name = f.ident.unraw().to_string();
            let col = &h.column;
            let col_name = col.unraw().to_string();
            let eq = format_ident!("{}_eq", f.ident.unraw());
            let hash_fn = format_ident!("{}_hash", f.ident.unraw());
            let inner = e.inner;
            let spec = hash_spec(cx, f, h);
            let doc_eq = format!(
                " `{col_name} = hash(value)`: finds rows whose `{field_name}` equals `value` \
                 (after normalisation) without decrypting."
            );
            let doc_hash = format!(" The `{col_name}` lookup hash of a `{field_name}` value.");
            if h.hmac {
                quote! {
                    #[doc = #doc_hash]
                    ///
                    /// An HMAC under the current lookup key, so this returns a `Result`.
                    ///
                    /// # Errors
                    /// `NoKeyring`, or `NoLookupKey` when the keys have no lookup key.
                    #vis fn #hash_fn(value: &<#inner as #p::Plain>::Borrowed) -> ::core::result::Result<::std::string::String, #p::Error> {
                        const SPEC: #p::HashSpec = #spec;
                        #p::lookup_hash::<#inner>(&SPEC, value)
                    }
                    #[doc = #doc_eq]
                    ///
                    /// The condition is `IN (...)` over the hash under every active lookup key,
                    /// so rows hashed under an older key are found while a rotation runs.
                    ///
                    /// # Errors
                    /// `NoKeyring`, or `NoLookupKey` when the keys have no lookup key.
                    #vis fn #eq(value: &<#inner as #p::Plain>::Borrowed) -> ::core::result::Result<#d::dsl::EqAny<#table::#col, ::std::vec::Vec<::std::string::String>>, #p::Error> {
                        const SPEC: #p::HashSpec = #spec;
                        ::core::result::Result::Ok(#d::ExpressionMethods::eq_any(#table::#col, #p::lookup_hashes::<#inner>(&SPEC, value)?))
                    }
                }
            } else {
                quote! {
                    #[doc = #doc_hash]
                    #[must_use]
                    #vis fn #hash_fn(value: &<#inner as #p::Plain>::Borrowed) -> ::std::string::String {
                        const SPEC: #p::HashSpec = #spec;
                        SPEC.compute(::core::option::Option::None, &<#inner as #p::Plain>::hash_borrowed(value, SPEC.normalize))
                            .unwrap_or_default()
                    }
                    #[doc = #doc_eq]
                    #[must_use]
                    #vis fn #eq(value: &<#inner as #p::Plain>::Borrowed) -> #d::dsl::Eq<#table::#col, ::std::string::String> {
                        #d::ExpressionMethods::eq(#table::#col, Self::#hash_fn(value))
                    }
                }
            }
        })
        .collect()
}

/// Each encrypted field's column must be text or binary (JSON for `each`): one clear error on
/// the field before any other.
fn column_checks(cx: &Ctx<'_, '_>) -> Vec<TokenStream> {
    let p = &cx.p;
    encrypted(cx.m)
        .map(|(f, e)| {
            // Every token spanned at the field, so that a column of the wrong type is reported
            // there.
            let st = cx.sql_type(&f.column);
            let check = if e.each {
                quote!(CheckListColumn)
            } else {
                quote!(CheckColumn)
            };
            respan(
                quote! {
                    const _: #p::#check<#st> = #p::#check::OK;
                },
                f.ident.span(),
            )
        })
        .collect()
}

/// `tokens` with every token (and group) given `span`.
fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            if let proc_macro2::TokenTree::Group(g) = &t {
                let mut inner = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                inner.set_span(span);
                t = proc_macro2::TokenTree::Group(inner);
            } else {
                t.set_span(span);
            }
            t
        })
        .collect()
}

fn record_struct(cx: &Ctx<'_, '_>) -> TokenStream {
    let (p, m, record) = (&cx.p, cx.m, &cx.record);
    let table = &m.table;
    let mut fields = Vec::new();
    let mut aliases = Vec::new();
    for f in &m.fields {
        let name = f.ident;
        let attrs = &f.diesel_attrs;
        let ty = match &f.encrypt {
            Some(e) => {
                let alias = Ctx::slot_alias(f);
                let st = cx.sql_type(&f.column);
                aliases.push(quote! {
                    #[allow(non_camel_case_types)]
                    type #alias = <#st as #p::StoredAs>::Value;
                });
                if e.nullable {
                    quote_spanned!(f.ty.span()=> ::core::option::Option<#alias>)
                } else {
                    quote_spanned!(f.ty.span()=> #alias)
                }
            }
            None => {
                let ty = f.ty;
                quote!(#ty)
            }
        };
        fields.push(quote!(#(#attrs)* pub #name: #ty));
    }
    for (_, _, h) in hashed(m) {
        let col = &h.column;
        let st = cx.sql_type(col);
        fields.push(quote!(pub #col: <#st as #p::HashSql>::Value));
    }
    if let Some(flag) = &m.flag {
        let st = cx.sql_type(flag);
        fields.push(quote!(pub #flag: <#st as #p::FlagSql>::Value));
    }
    let primary_key = m
        .primary_key
        .as_ref()
        .map(|keys| quote!(#[diesel(primary_key(#(#keys),*))]));
    quote! {
        #(#aliases)*

        #[derive(diesel::prelude::Queryable, diesel::prelude::Selectable, diesel::prelude::Insertable, diesel::prelude::AsChangeset)]
        #[diesel(table_name = #table)]
        #[diesel(treat_none_as_null = true)]
        #[diesel(treat_none_as_default_value = false)]
        #primary_key
        #[doc(hidden)]
        pub struct #record {
            #(#fields,)*
        }
    }
}

fn spec_consts(cx: &Ctx<'_, '_>) -> TokenStream {
    let (p, d, m) = (&cx.p, &cx.d, cx.m);
    let model_name = &cx.model_name;
    let flagged = m.flag.is_some();
    let mut out = Vec::new();
    let mut specs = Vec::new();
    for (f, e) in encrypted(m) {
        let name = Ctx::spec_const(f);
        let field_name = f.ident.unraw().to_string();
        let column = f.column.unraw().to_string();
        let st = cx.sql_type(&f.column);
        let base64 = e.base64;
        let skip_empty = e.skip_empty;
        let wrap = match &e.wrap {
            Some(w) => quote!(::core::option::Option::Some(#w)),
            None => quote!(::core::option::Option::None),
        };
        out.push(quote! {
            #[allow(non_upper_case_globals)]
            const #name: #p::Spec = #p::Spec {
                model: #model_name,
                field: #field_name,
                column: #column,
                binary_column: <#st as #p::ColumnKind>::BINARY,
                base64: #base64,
                wrap: #wrap,
                skip_empty: #skip_empty,
                flagged: #flagged,
            };
        });
        specs.push(name);
    }
    let values: Vec<&Field<'_>> = encrypted(m).map(|(f, _)| f).collect();
    let mut hashes = Vec::new();
    for (f, e, h) in hashed(m) {
        let name = Ctx::hash_const(f);
        let spec = hash_spec(cx, f, h);
        let inner = e.inner;
        let index = values
            .iter()
            .position(|v| v.ident == f.ident)
            .unwrap_or_default();
        out.push(quote! {
            #[allow(non_upper_case_globals)]
            const #name: #p::HashSpec = #spec;
        });
        let in_aad = m
            .aad
            .iter()
            .any(|s| matches!(s, Segment::Value(i) | Segment::Key(i) if *i == h.column));
        hashes.push(quote! {
            ::encrypted_diesel::rotate::Hashed {
                value: #index,
                spec: #name,
                text: <#inner as #p::Plain>::TEXT,
                in_aad: #in_aad,
            }
        });
    }
    let _ = d;
    quote! {
        #(#out)*
        const __SPECS: &[#p::Spec] = &[#(#specs),*];
        const __HASHES: &[::encrypted_diesel::rotate::Hashed] = &[#(#hashes),*];
    }
}

/// Where a template value comes from in a generated body.
type Source<'s> = &'s dyn Fn(&Ident) -> TokenStream;

/// The expression building the AAD of `column` for reading: a `&'static str` when the template
/// names no value, else a `String`.
fn aad_read(m: &Model<'_>, column: &str, source: Source<'_>) -> TokenStream {
    let p = quote!(::encrypted_diesel::__private);
    let mut parts = Vec::new();
    let mut literal = String::new();
    for segment in &m.aad {
        match segment {
            Segment::Literal(l) => literal.push_str(l),
            Segment::Column => literal.push_str(column),
            Segment::Value(i) | Segment::Key(i) => {
                if !literal.is_empty() {
                    let l = std::mem::take(&mut literal);
                    parts.push(quote!(__aad.push_str(#l);));
                }
                let value = source(i);
                parts.push(quote!(#p::push_aad(&mut __aad, &#value);));
            }
        }
    }
    if parts.is_empty() {
        // A constant context: no allocation per value.
        return quote!(#literal);
    }
    if !literal.is_empty() {
        parts.push(quote!(__aad.push_str(#literal);));
    }
    quote! {{
        let mut __aad = ::std::string::String::with_capacity(96);
        #(#parts)*
        __aad
    }}
}

/// The AAD of `column` for sealing, as `Result<Cow<'static, str>, Error>`: a key field that is
/// not assigned yet is an error.
fn aad_seal(cx: &Ctx<'_, '_>, column: &str, source: Source<'_>) -> TokenStream {
    let p = &cx.p;
    let model_name = &cx.model_name;
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut dynamic = false;
    for segment in &cx.m.aad {
        match segment {
            Segment::Literal(l) => literal.push_str(l),
            Segment::Column => literal.push_str(column),
            Segment::Value(i) | Segment::Key(i) => {
                dynamic = true;
                if !literal.is_empty() {
                    let l = std::mem::take(&mut literal);
                    parts.push(quote!(__aad.push_str(#l);));
                }
                let value = source(i);
                if matches!(segment, Segment::Key(_)) {
                    let field = i.unraw().to_string();
                    parts
                        .push(quote!(#p::push_aad_key(&mut __aad, &#value, #model_name, #field)?;));
                } else {
                    parts.push(quote!(#p::push_aad(&mut __aad, &#value);));
                }
            }
        }
    }
    if !dynamic {
        return quote!(::core::result::Result::<_, #p::Error>::Ok(::std::borrow::Cow::Borrowed(#literal)));
    }
    if !literal.is_empty() {
        parts.push(quote!(__aad.push_str(#literal);));
    }
    quote! {
        (|| -> ::core::result::Result<::std::borrow::Cow<'static, str>, #p::Error> {
            let mut __aad = ::std::string::String::with_capacity(96);
            #(#parts)*
            ::core::result::Result::Ok(::std::borrow::Cow::Owned(__aad))
        })()
    }
}

fn shared_aad(m: &Model<'_>) -> bool {
    !m.aad.contains(&Segment::Column)
}

fn is_hash(m: &Model<'_>, i: &Ident) -> bool {
    hashed(m).any(|(_, _, h)| h.column == *i)
}

fn seal_open(cx: &Ctx<'_, '_>) -> TokenStream {
    let (p, m, record) = (&cx.p, cx.m, &cx.record);
    let ident = m.ident;
    let model_name = &cx.model_name;
    let resource = &m.resource;
    let shared = shared_aad(m);

    // Sealing: model → record.
    let mut seal = Vec::new();
    for (f, e, h) in hashed(m) {
        let field = f.ident;
        let col = &h.column;
        let spec = Ctx::hash_const(f);
        let inner = e.inner;
        let st = cx.sql_type(col);
        let result = format_ident!("__hash_result_{}", field.unraw());
        let err = format_ident!("__hash_error_{}", field.unraw());
        let value = if e.nullable {
            quote!(__model.#field.as_ref())
        } else {
            quote!(::core::option::Option::Some(&__model.#field))
        };
        seal.push(quote! {
            let #result = #p::hash::<#inner>(&#spec, __row, #value);
            let #col = <#st as #p::HashSql>::from_hash(#result.as_ref().ok().cloned().flatten());
            let #err: ::core::option::Option<#p::Error> = #result.err();
        });
    }
    let seal_source = |i: &Ident| {
        if is_hash(m, i) {
            quote!(#i)
        } else {
            quote!(__model.#i)
        }
    };
    if shared {
        let aad = aad_seal(cx, "", &seal_source);
        seal.push(quote!(let __aad: ::core::result::Result<::std::borrow::Cow<'static, str>, #p::Error> = #aad;));
    }
    for (f, e) in encrypted(m) {
        let field = f.ident;
        let field_name = field.unraw().to_string();
        let inner = e.inner;
        let spec = Ctx::spec_const(f);
        let alias = Ctx::slot_alias(f);
        let aad_var = format_ident!("__aad_{}", field.unraw());
        if shared {
            seal.push(quote!(let #aad_var = &__aad;));
        } else {
            let aad = aad_seal(cx, &f.column.unraw().to_string(), &seal_source);
            seal.push(quote!(let #aad_var: &::core::result::Result<::std::borrow::Cow<'static, str>, #p::Error> = &#aad;));
        }
        let seal_one = if e.each {
            quote_spanned!(inner.span()=> <#alias as #p::Slot>::from_list(
                #p::seal_each(&#spec, __row, <#inner as #p::Each>::items(__v), #aad_var)))
        } else {
            let plain = if e.json {
                quote_spanned!(inner.span()=> #p::json_plain::<#inner>(__v, #model_name, #field_name))
            } else {
                quote_spanned!(inner.span()=> #p::plain::<#inner>(__v))
            };
            quote!(<#alias as #p::Slot>::from_value(#p::seal(&#spec, __row, #plain, #aad_var)))
        };
        let hash_error = e.hash.as_ref().map(|_| {
            let err = format_ident!("__hash_error_{}", field.unraw());
            quote! {
                if let ::core::option::Option::Some(__e) = &#err {
                    <#alias as #p::Slot>::from_value(#p::Encrypted::failed(::core::clone::Clone::clone(__e)))
                } else
            }
        });
        if e.nullable && e.each {
            // `None` is JSON `null`, as GORM writes a nil slice.
            seal.push(quote! {
                let #field = ::core::option::Option::Some(match __model.#field.as_ref() {
                    ::core::option::Option::Some(__v) => #seal_one,
                    ::core::option::Option::None => <#alias as #p::Slot>::from_list(#p::EncryptedList::null()),
                });
            });
        } else if e.nullable {
            seal.push(quote! {
                let #field = __model.#field.as_ref().map(|__v| #hash_error { #seal_one });
            });
        } else {
            seal.push(quote! {
                let #field = { let __v = &__model.#field; #hash_error { #seal_one } };
            });
        }
    }
    let mut seal_init = Vec::new();
    for f in &m.fields {
        let field = f.ident;
        if f.encrypt.is_some() {
            seal_init.push(quote!(#field));
        } else {
            seal_init.push(quote!(#field: ::core::clone::Clone::clone(&__model.#field)));
        }
    }
    for (_, _, h) in hashed(m) {
        let col = &h.column;
        seal_init.push(quote!(#col));
    }
    if let Some(flag) = &m.flag {
        let st = cx.sql_type(flag);
        seal_init.push(quote!(#flag: <#st as #p::FlagSql>::from_bool(#p::sealed_flag(__row))));
    }

    // Opening: record → model.
    let record_names: Vec<&Ident> = m
        .fields
        .iter()
        .map(|f| f.ident)
        .chain(hashed(m).map(|(_, _, h)| &h.column))
        .chain(m.flag.as_ref())
        .collect();
    let mut open = Vec::new();
    open.push(quote!(let Self { #(#record_names),* } = self;));
    let legacy = match &m.flag {
        Some(flag) => {
            let st = cx.sql_type(flag);
            quote!(!<#st as #p::FlagSql>::get(&#flag))
        }
        None => quote!(false),
    };
    open.push(quote!(let __legacy: bool = #legacy;));
    let open_source = |i: &Ident| quote!(#i);
    if shared {
        let aad = aad_read(m, "", &open_source);
        open.push(quote!(let __aad = #aad;));
    }
    let mut open_aads = Vec::new();
    let mut open_fields = Vec::new();
    for (f, e) in encrypted(m) {
        let field = f.ident;
        let field_name = field.unraw().to_string();
        let inner = e.inner;
        let spec = Ctx::spec_const(f);
        let alias = Ctx::slot_alias(f);
        let aad_var = format_ident!("__aad_{}", field.unraw());
        if shared {
            open_aads.push(quote!(let #aad_var: &str = &__aad;));
        } else {
            let aad = aad_read(m, &f.column.unraw().to_string(), &open_source);
            open_aads.push(quote!(let #aad_var: &str = &#aad;));
        }
        let open_one = if e.each {
            quote_spanned! {inner.span()=> {
                <#inner as #p::Each>::from_items(#p::open_each(&#spec, __row, #resource,
                    <#alias as #p::Slot>::into_list(__v), #aad_var, __legacy)?)
            }}
        } else {
            let convert = if e.json {
                quote_spanned!(inner.span()=> #p::from_json::<#inner>(&__b, #model_name, #field_name)?)
            } else {
                quote_spanned!(inner.span()=> #p::from_plain::<#inner>(__b, #model_name, #field_name)?)
            };
            quote! {{
                let __b = #p::open(&#spec, __row, #resource, <#alias as #p::Slot>::into_value(__v), #aad_var, __legacy)?;
                #convert
            }}
        };
        if e.nullable && e.each {
            // SQL NULL and JSON `null` are both `None`.
            open_fields.push(quote! {
                let #field = match #field {
                    ::core::option::Option::Some(__v) if !#p::Slot::is_json_null(&__v) => ::core::option::Option::Some(#open_one),
                    _ => ::core::option::Option::None,
                };
            });
        } else if e.nullable {
            open_fields.push(quote! {
                let #field = match #field {
                    ::core::option::Option::Some(__v) => ::core::option::Option::Some(#open_one),
                    ::core::option::Option::None => ::core::option::Option::None,
                };
            });
        } else {
            open_fields.push(quote!(let #field = { let __v = #field; #open_one };));
        }
    }
    open.extend(open_aads);
    open.extend(open_fields);
    let unused: Vec<&Ident> = hashed(m)
        .map(|(_, _, h)| &h.column)
        .chain(m.flag.as_ref())
        .collect();
    open.push(quote!(let _ = (#(&#unused,)*);));
    let model_fields: Vec<&Ident> = m.fields.iter().map(|f| f.ident).collect();
    open.push(quote!(::core::result::Result::Ok(#ident { #(#model_fields),* })));

    quote! {
        #[automatically_derived]
        impl #record {
            fn __seal(__model: &#ident) -> Self {
                Self::__seal_with(__model, &<#ident as #p::Model>::keys())
            }

            fn __seal_with(__model: &#ident, __row: &::core::result::Result<#p::Row, #p::Error>) -> Self {
                #(#seal)*
                Self { #(#seal_init),* }
            }

            fn __open(self, __row: &#p::Row) -> ::core::result::Result<#ident, #p::Error> {
                #(#open)*
            }
        }
    }
}

fn diesel_impls(cx: &Ctx<'_, '_>) -> TokenStream {
    let (p, d, m, record) = (&cx.p, &cx.d, cx.m, &cx.record);
    let ident = m.ident;
    let table = &m.table;
    let model_name = &cx.model_name;
    let resource = &m.resource;
    let fallback = match &m.fallback_resource {
        Some(f) => quote!(::core::option::Option::Some(#f)),
        None => quote!(::core::option::Option::None),
    };
    let flagged = m.flag.is_some();
    quote! {
        #[automatically_derived]
        impl<__ST, __DB> #d::deserialize::Queryable<__ST, __DB> for #ident
        where
            __DB: #d::backend::Backend,
            #record: #d::deserialize::Queryable<__ST, __DB>,
        {
            type Row = <#record as #d::deserialize::Queryable<__ST, __DB>>::Row;

            fn build(row: Self::Row) -> #d::deserialize::Result<Self> {
                let __record = <#record as #d::deserialize::Queryable<__ST, __DB>>::build(row)?;
                let __row = <#ident as #p::Model>::keys().map_err(#p::deserialize_error)?;
                __record.__open(&__row).map_err(#p::deserialize_error)
            }
        }

        #[automatically_derived]
        impl #p::Model for #ident {
            type Record = #record;
            const NAME: &'static str = #model_name;
            const RESOURCE: &'static str = #resource;

            fn keys() -> ::core::result::Result<#p::Row, #p::Error> {
                #p::row_keys(#model_name, #resource, #fallback, #flagged)
            }

            fn decrypt(__record: #record, __row: &#p::Row) -> ::core::result::Result<Self, #p::Error> {
                __record.__open(__row)
            }

            fn encrypt(&self, __row: &::core::result::Result<#p::Row, #p::Error>) -> #record {
                #record::__seal_with(self, __row)
            }
        }

        #[automatically_derived]
        impl<__DB> #d::Selectable<__DB> for #ident
        where
            __DB: #d::backend::Backend,
            #record: #d::Selectable<__DB>,
        {
            type SelectExpression = <#record as #d::Selectable<__DB>>::SelectExpression;

            fn construct_selection() -> Self::SelectExpression {
                <#record as #d::Selectable<__DB>>::construct_selection()
            }
        }

        #[automatically_derived]
        impl<'__a> #d::Insertable<#table::table> for &'__a #ident {
            type Values = <#record as #d::Insertable<#table::table>>::Values;

            fn values(self) -> Self::Values {
                #d::Insertable::<#table::table>::values(#record::__seal(self))
            }
        }

        #[automatically_derived]
        impl #d::Insertable<#table::table> for #ident {
            type Values = <#record as #d::Insertable<#table::table>>::Values;

            fn values(self) -> Self::Values {
                #d::Insertable::<#table::table>::values(#record::__seal(&self))
            }
        }

        #[automatically_derived]
        impl #d::internal::derives::insertable::UndecoratedInsertRecord<#table::table> for #ident {}

        #[automatically_derived]
        impl<'__a> #d::AsChangeset for &'__a #ident {
            type Target = #table::table;
            type Changeset = <#record as #d::AsChangeset>::Changeset;

            fn as_changeset(self) -> Self::Changeset {
                #d::AsChangeset::as_changeset(#record::__seal(self))
            }
        }
    }
}

/// The record field holding table column `column`: a model field, a hash column or the flag.
fn record_field<'m>(m: &'m Model<'_>, column: &Ident) -> Option<(&'m Ident, KeyKind<'m>)> {
    if let Some(f) = m.fields.iter().find(|f| f.column == *column) {
        return Some((f.ident, KeyKind::Field(f)));
    }
    if let Some((_, _, h)) = hashed(m).find(|(_, _, h)| h.column == *column) {
        return Some((&h.column, KeyKind::Hash));
    }
    None
}

enum KeyKind<'m> {
    Field(&'m Field<'m>),
    Hash,
}

fn rotate_impl(cx: &Ctx<'_, '_>) -> TokenStream {
    let (p, d, m, record, rewrite) = (&cx.p, &cx.d, cx.m, &cx.record, &cx.rewrite);
    let ident = m.ident;
    let table = &m.table;
    let table_name = table
        .segments
        .last()
        .map(|s| s.ident.unraw().to_string())
        .unwrap_or_default();

    // The key.
    let mut key_types = Vec::new();
    let mut key_values = Vec::new();
    let mut key_names = Vec::new();
    let mut errors = Vec::new();
    for column in &m.key {
        key_names.push(column.unraw().to_string());
        match record_field(m, column) {
            Some((field, KeyKind::Field(f))) if f.encrypt.is_none() => {
                let ty = f.ty;
                key_types.push(quote!(#ty));
                key_values.push(quote!(::core::clone::Clone::clone(&__r.#field)));
            }
            Some((field, KeyKind::Hash)) => {
                let st = cx.sql_type(column);
                key_types.push(quote!(<#st as #p::HashSql>::Value));
                key_values.push(quote!(::core::clone::Clone::clone(&__r.#field)));
            }
            _ => errors.push(
                syn::Error::new(
                    column.span(),
                    format!(
                        "primary key column `{column}` must be a plain field or a hash column \
                         of the model (write `primary_key(...)` in #[encrypted(...)] when the \
                         key is not `id`)"
                    ),
                )
                .to_compile_error(),
            ),
        }
    }
    if !errors.is_empty() {
        return quote!(#(#errors)*);
    }
    let rows = match &m.rows {
        Some((column, value)) => {
            let column = column.unraw().to_string();
            quote!(::core::option::Option::Some((#column, #value)))
        }
        None => quote!(::core::option::Option::None),
    };
    let fallback = match &m.fallback_resource {
        Some(f) => quote!(::core::option::Option::Some(#f)),
        None => quote!(::core::option::Option::None),
    };
    let flagged = m.flag.is_some();

    // aad(record, i), stored(record, i).
    let shared = shared_aad(m);
    let rw_source = |i: &Ident| quote!(__r.#i);
    let mut aad_arms = Vec::new();
    let mut stored_arms = Vec::new();
    let mut rewrite_fields = Vec::new();
    let mut rewrite_init = Vec::new();
    for (index, (f, e)) in encrypted(m).enumerate() {
        let aad = if shared {
            aad_read(m, "", &rw_source)
        } else {
            aad_read(m, &f.column.unraw().to_string(), &rw_source)
        };
        let wrap_cow = if aad.to_string().starts_with('"') {
            quote!(::std::borrow::Cow::Borrowed(#aad))
        } else {
            quote!(::std::borrow::Cow::Owned(#aad))
        };
        aad_arms.push(quote!(#index => #wrap_cow,));
        let field = f.ident;
        let alias = Ctx::slot_alias(f);
        stored_arms.push(if e.nullable {
            quote!(#index => __r.#field.as_ref().and_then(#p::Slot::stored),)
        } else {
            quote!(#index => #p::Slot::stored(&__r.#field),)
        });
        let column = &f.column;
        if e.nullable {
            rewrite_fields.push(quote!(pub #column: ::core::option::Option<#alias>));
            rewrite_init.push(quote!(#column: #p::take_optional::<#alias>(&mut __v)));
        } else {
            rewrite_fields.push(quote!(pub #column: #alias));
            rewrite_init.push(quote!(#column: #p::take_value::<#alias>(&mut __v)));
        }
    }
    let mut hash_arms = Vec::new();
    for (index, (_, _, h)) in hashed(m).enumerate() {
        let col = &h.column;
        let st = cx.sql_type(col);
        hash_arms.push(quote!(#index => <#st as #p::HashSql>::get(&__r.#col),));
        rewrite_fields.push(quote!(pub #col: <#st as #p::HashSql>::Value));
        rewrite_init.push(quote!(#col: <#st as #p::HashSql>::from_hash(::core::iter::Iterator::next(&mut __h).flatten())));
    }
    let flag_value = match &m.flag {
        Some(flag) => {
            let st = cx.sql_type(flag);
            rewrite_fields.push(quote!(pub #flag: <#st as #p::FlagSql>::Value));
            rewrite_init.push(quote!(#flag: <#st as #p::FlagSql>::from_bool(true)));
            quote!(::core::option::Option::Some(<#st as #p::FlagSql>::get(&__r.#flag)))
        }
        None => quote!(::core::option::Option::None),
    };
    let _ = d;
    quote! {
        #[derive(diesel::prelude::AsChangeset)]
        #[diesel(table_name = #table)]
        #[diesel(treat_none_as_null = true)]
        #[doc(hidden)]
        pub struct #rewrite {
            #(#rewrite_fields,)*
        }

        #[automatically_derived]
        impl ::encrypted_diesel::rotate::Rotate for #ident {
            type Key = (#(#key_types,)*);
            type Rewrite = #rewrite;
            const TABLE: &'static str = #table_name;
            const KEY_COLUMNS: &'static [&'static str] = &[#(#key_names),*];
            const ROWS: ::core::option::Option<(&'static str, &'static str)> = #rows;
            const VALUES: &'static [#p::Spec] = __SPECS;
            const HASHES: &'static [::encrypted_diesel::rotate::Hashed] = __HASHES;
            const FLAGGED: bool = #flagged;
            const FALLBACK: ::core::option::Option<&'static str> = #fallback;

            fn key(__r: &#record) -> Self::Key {
                (#(#key_values,)*)
            }

            #[allow(unreachable_patterns, clippy::match_same_arms)]
            fn aad(__r: &#record, __value: usize) -> ::std::borrow::Cow<'_, str> {
                match __value {
                    #(#aad_arms)*
                    _ => ::std::borrow::Cow::Borrowed(""),
                }
            }

            fn stored(__r: &#record, __value: usize) -> ::core::option::Option<::encrypted_diesel::rotate::Stored<'_>> {
                match __value {
                    #(#stored_arms)*
                    _ => ::core::option::Option::None,
                }
            }

            fn stored_hash(__r: &#record, __hash: usize) -> ::core::option::Option<&str> {
                let _ = __r;
                match __hash {
                    #(#hash_arms)*
                    _ => ::core::option::Option::None,
                }
            }

            fn flag(__r: &#record) -> ::core::option::Option<bool> {
                let _ = __r;
                #flag_value
            }

            fn rewrite(
                __r: &#record,
                __values: ::std::vec::Vec<::core::option::Option<::encrypted_diesel::rotate::NewValue>>,
                __hashes: ::std::vec::Vec<::core::option::Option<::std::string::String>>,
            ) -> #rewrite {
                let _ = __r;
                let mut __v = ::core::iter::IntoIterator::into_iter(__values);
                let mut __h = ::core::iter::IntoIterator::into_iter(__hashes);
                let _ = (&mut __v, &mut __h);
                #rewrite { #(#rewrite_init,)* }
            }
        }
    }
}

/// The columns a rewrite sets, in order: encrypted columns, hash columns, the flag.
fn set_columns(m: &Model<'_>) -> Vec<(Ident, bool)> {
    let mut out: Vec<(Ident, bool)> = encrypted(m)
        .map(|(f, e)| (f.column.clone(), e.nullable))
        .collect();
    out.extend(hashed(m).map(|(_, _, h)| (h.column.clone(), false)));
    out
}

/// A rewrite's value of `column` (in `__w`), as bound: borrowed, `Option<&_>` when nullable.
fn rewrite_value(column: &Ident, nullable: bool) -> TokenStream {
    if nullable {
        quote!(__w.#column.as_ref())
    } else {
        quote!(&__w.#column)
    }
}

/// The PostgreSQL statement writing a batch: `UPDATE .. FROM unnest(<one array per column>)`,
/// each row matched by its key; one parameter per column whatever the batch size.
fn pg_batch_sql(m: &Model<'_>, table_name: &str) -> String {
    let quote_ident = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut n = 0;
    let mut params = Vec::new();
    let mut names = Vec::new();
    let mut set = Vec::new();
    for (column, _) in set_columns(m) {
        n += 1;
        let c = column.unraw().to_string();
        params.push(format!("${n}"));
        names.push(quote_ident(&format!("n_{c}")));
        set.push(format!(
            "{} = __v.{}",
            quote_ident(&c),
            quote_ident(&format!("n_{c}"))
        ));
    }
    if let Some(flag) = &m.flag {
        set.push(format!("{} = TRUE", quote_ident(&flag.unraw().to_string())));
    }
    let mut cond = Vec::new();
    for k in &m.key {
        n += 1;
        let k = k.unraw().to_string();
        params.push(format!("${n}"));
        names.push(quote_ident(&format!("k_{k}")));
        cond.push(format!(
            "__t.{} = __v.{}",
            quote_ident(&k),
            quote_ident(&format!("k_{k}"))
        ));
    }
    format!(
        "UPDATE {} AS __t SET {} FROM unnest({}) AS __v({}) WHERE {}",
        quote_ident(table_name),
        set.join(", "),
        params.join(", "),
        names.join(", "),
        cond.join(" AND ")
    )
}

/// The backends the derive emits `Table` impls for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Pg,
    Sqlite,
    Mysql,
}

fn backend_impls(cx: &Ctx<'_, '_>) -> TokenStream {
    if cx.m.key.iter().any(|k| record_field(cx.m, k).is_none()) {
        return TokenStream::new();
    }
    let mut out = TokenStream::new();
    for (backend, name) in [
        (Backend::Pg, "postgres"),
        (Backend::Sqlite, "sqlite"),
        (Backend::Mysql, "mysql"),
    ] {
        if cx
            .m
            .backends
            .as_ref()
            .is_some_and(|list| !list.iter().any(|b| b == name))
        {
            continue;
        }
        for asyncness in [false, true] {
            out.extend(table_impl(cx, backend, asyncness));
        }
    }
    out
}

/// `Table<Connection>` (or `AsyncTable<AsyncConnection>`) of one backend, inside the
/// `__if_*!` macro that keeps it when `encrypted-diesel` has the backend's feature.
#[allow(clippy::too_many_lines, reason = "one impl, generated in one place")]
fn table_impl(cx: &Ctx<'_, '_>, backend: Backend, asyncness: bool) -> TokenStream {
    let (d, m, record, rewrite) = (&cx.d, cx.m, &cx.record, &cx.rewrite);
    let ident = m.ident;
    let table = &m.table;
    let rot = quote!(::encrypted_diesel::rotate);
    let da = quote!(::encrypted_diesel::__private::diesel_async);
    let table_name = table
        .segments
        .last()
        .map(|s| s.ident.unraw().to_string())
        .unwrap_or_default();
    let (db, conn, gate) = match (backend, asyncness) {
        (Backend::Pg, false) => (
            quote!(#d::pg::Pg),
            quote!(#d::PgConnection),
            quote!(::encrypted_diesel::__if_postgres),
        ),
        (Backend::Pg, true) => (
            quote!(#d::pg::Pg),
            quote!(#da::AsyncPgConnection),
            quote!(::encrypted_diesel::__if_async_postgres),
        ),
        (Backend::Sqlite, false) => (
            quote!(#d::sqlite::Sqlite),
            quote!(#d::SqliteConnection),
            quote!(::encrypted_diesel::__if_sqlite),
        ),
        (Backend::Sqlite, true) => (
            quote!(#d::sqlite::Sqlite),
            quote!(#da::sync_connection_wrapper::SyncConnectionWrapper<#d::SqliteConnection>),
            quote!(::encrypted_diesel::__if_async_sqlite),
        ),
        (Backend::Mysql, false) => (
            quote!(#d::mysql::Mysql),
            quote!(#d::MysqlConnection),
            quote!(::encrypted_diesel::__if_mysql),
        ),
        (Backend::Mysql, true) => (
            quote!(#d::mysql::Mysql),
            quote!(#da::AsyncMysqlConnection),
            quote!(::encrypted_diesel::__if_async_mysql),
        ),
    };
    // How a query runs: `RunQueryDsl::load(q, conn)` or `...(q, conn).await`.
    let run = |method: TokenStream, q: TokenStream| {
        if asyncness {
            quote!(#da::RunQueryDsl::#method(#q, &mut *__conn).await)
        } else {
            quote!(#d::RunQueryDsl::#method(#q, &mut *__conn))
        }
    };
    let locks = backend != Backend::Sqlite;

    let key_cols: Vec<TokenStream> = m.key.iter().map(|k| quote!(#table::#k)).collect();
    let order = quote!((#(#d::ExpressionMethods::asc(#key_cols),)*));
    let key_tuple = quote!((#(#key_cols,)*));
    let bound_key = |var: &Ident| {
        let parts = m.key.iter().enumerate().map(|(i, k)| {
            let st = cx.sql_type(k);
            let index = syn::Index::from(i);
            quote!(<_ as #d::expression::AsExpression<#st>>::as_expression(::core::clone::Clone::clone(&#var.#index)))
        });
        quote!((#(#parts,)*))
    };
    let after_key = bound_key(&Ident::new("__after", Span::call_site()));
    let upto_key = bound_key(&Ident::new("__upto", Span::call_site()));
    let rows_filter = m
        .rows
        .as_ref()
        .map(|(column, value)| quote!(.filter(#d::ExpressionMethods::eq(#table::#column, #value))));
    let key_match: Vec<TokenStream> = m
        .key
        .iter()
        .filter_map(|k| record_field(m, k).map(|(field, _)| (k, field)))
        .map(|(k, field)| quote!(.filter(#d::ExpressionMethods::eq(#table::#k, &__old.#field))))
        .collect();

    // load_page
    let lock_arms = |q: TokenStream| {
        if locks {
            let plain = run(quote!(load), q.clone());
            let wait = run(quote!(load), quote!(#d::QueryDsl::for_update(#q)));
            let skip = run(
                quote!(load),
                quote!(#d::QueryDsl::skip_locked(#d::QueryDsl::for_update(#q))),
            );
            quote! {
                match __lock {
                    #rot::Lock::None => #plain,
                    #rot::Lock::Wait => #wait,
                    #rot::Lock::SkipLocked => #skip,
                }
            }
        } else {
            let plain = run(quote!(load), q);
            quote! {{
                let _ = __lock;
                #plain
            }}
        }
    };
    let first = lock_arms(quote!(__q));
    let next = lock_arms(quote!(__q));
    let load_body = quote! {
        #[allow(unused_imports)]
        use #d::QueryDsl as _;
        let __select = #d::QueryDsl::select(#table::table, <#record as #d::SelectableHelper<#db>>::as_select()) #rows_filter;
        match __after {
            ::core::option::Option::None => {
                let __q = #d::QueryDsl::limit(#d::QueryDsl::order(__select, #order), __limit);
                #first
            }
            ::core::option::Option::Some(__after) => {
                let __q = #d::QueryDsl::limit(
                    #d::QueryDsl::order(
                        #d::QueryDsl::filter(__select, #rot::RowGt::new(#key_tuple, #after_key)),
                        #order,
                    ),
                    __limit,
                );
                #next
            }
        }
    };
    let count_run = run(
        quote!(get_result),
        quote!(#d::QueryDsl::count(#table::table #rows_filter)),
    );
    let count_body = quote! {
        #[allow(unused_imports)]
        use #d::QueryDsl as _;
        #count_run
    };
    let range_run = run(quote!(get_result), quote!(__q));
    let range_body = quote! {
        #[allow(unused_imports)]
        use #d::QueryDsl as _;
        let mut __q = #d::QueryDsl::into_boxed::<'_, #db>(#d::QueryDsl::count(#table::table #rows_filter));
        if let ::core::option::Option::Some(__after) = &__after {
            __q = #d::QueryDsl::filter(__q, #rot::RowGt::new(#key_tuple, #after_key));
        }
        if let ::core::option::Option::Some(__upto) = &__upto {
            __q = #d::QueryDsl::filter(__q, #rot::RowLe::new(#key_tuple, #upto_key));
        }
        #range_run
    };

    // write
    let write_body = match backend {
        Backend::Pg => {
            // One statement per batch: the batch's rows are locked.
            let sql = pg_batch_sql(m, &table_name);
            let mut binds = Vec::new();
            for (column, nullable) in set_columns(m) {
                let st = cx.sql_type(&column);
                let value = rewrite_value(&column, nullable);
                binds.push(quote! {
                    .bind::<#d::sql_types::Array<#st>, _>(
                        __rows.iter().map(|(_, __w)| #value).collect::<::std::vec::Vec<_>>())
                });
            }
            for k in &m.key {
                let st = cx.sql_type(k);
                if let Some((field, _)) = record_field(m, k) {
                    binds.push(quote! {
                        .bind::<#d::sql_types::Array<#st>, _>(
                            __rows.iter().map(|(__old, _)| &__old.#field).collect::<::std::vec::Vec<_>>())
                    });
                }
            }
            let exec = run(quote!(execute), quote!(#d::sql_query(#sql) #(#binds)*));
            quote! {
                if __rows.is_empty() {
                    return ::core::result::Result::Ok(0);
                }
                #exec
            }
        }
        Backend::Mysql => {
            // One statement per batch (the batch's rows are locked), split where the values
            // would make it too large for one packet or too many placeholders.
            let p = quote!(::encrypted_diesel::__private);
            let mut binds = Vec::new();
            let mut key_names = Vec::new();
            for k in &m.key {
                let st = cx.sql_type(k);
                if let Some((field, _)) = record_field(m, k) {
                    binds.push(quote!(.bind::<#st, _>(&__old.#field)));
                }
                key_names.push(k.unraw().to_string());
            }
            let mut lens = Vec::new();
            let mut sets = Vec::new();
            for (column, nullable) in set_columns(m) {
                let st = cx.sql_type(&column);
                let value = rewrite_value(&column, nullable);
                binds.push(quote!(.bind::<#st, _>(#value)));
                lens.push(quote!(#p::BoundLen::bound_len(&__w.#column)));
                let name = column.unraw().to_string();
                sets.push(quote!((#name, <#st as #p::ColumnKind>::BINARY)));
            }
            let flag = match &m.flag {
                Some(f) => {
                    let f = f.unraw().to_string();
                    quote!(::core::option::Option::Some(#f))
                }
                None => quote!(::core::option::Option::None),
            };
            let exec = run(quote!(execute), quote!(__q));
            quote! {
                static __BATCH: ::std::sync::OnceLock<#p::MysqlBatch> = ::std::sync::OnceLock::new();
                let __batch = __BATCH.get_or_init(|| {
                    #p::MysqlBatch::new(#table_name, &[#(#key_names),*], &[#(#sets),*], #flag)
                });
                let mut __n = 0;
                let mut __rest = __rows;
                while !__rest.is_empty() {
                    let __take = __batch.chunk(__rest, #p::MYSQL_BATCH_BYTES, |(_, __w)| {
                        0 #(+ #lens)*
                    });
                    let (__chunk, __tail) = __rest.split_at(__take);
                    __rest = __tail;
                    let mut __q = #d::query_builder::SqlQuery::into_boxed::<'_, #db>(
                        #d::sql_query(__batch.sql(__chunk.len())),
                    );
                    for (__old, __w) in __chunk {
                        __q = __q #(#binds)*;
                    }
                    __n += #exec?;
                }
                ::core::result::Result::Ok(__n)
            }
        }
        Backend::Sqlite => {
            // One statement per row (a prepared statement, cached): SQLite runs in process, and
            // the batch holds the database's write lock (`BEGIN IMMEDIATE`) from its read on.
            let update = run(
                quote!(execute),
                quote!(#d::update(#table::table #(#key_match)*).set(__w)),
            );
            quote! {
                #[allow(unused_imports)]
                use #d::QueryDsl as _;
                let mut __n = 0;
                for (__old, __w) in __rows {
                    __n += #update?;
                }
                ::core::result::Result::Ok(__n)
            }
        }
    };

    let body = if asyncness {
        quote! {
            #[automatically_derived]
            impl #rot::r#async::AsyncTable<#conn> for #ident {
                fn load_page(
                    __conn: &mut #conn,
                    __after: ::core::option::Option<<Self as #rot::Rotate>::Key>,
                    __limit: i64,
                    __lock: #rot::Lock,
                ) -> #rot::r#async::BoxFuture<'_, #d::QueryResult<::std::vec::Vec<#record>>> {
                    ::std::boxed::Box::pin(async move {
                        let __after = __after.as_ref();
                        #load_body
                    })
                }

                fn count(__conn: &mut #conn) -> #rot::r#async::BoxFuture<'_, #d::QueryResult<i64>> {
                    ::std::boxed::Box::pin(async move { #count_body })
                }

                fn count_range(
                    __conn: &mut #conn,
                    __after: ::core::option::Option<<Self as #rot::Rotate>::Key>,
                    __upto: ::core::option::Option<<Self as #rot::Rotate>::Key>,
                ) -> #rot::r#async::BoxFuture<'_, #d::QueryResult<i64>> {
                    ::std::boxed::Box::pin(async move { #range_body })
                }

                fn write<'__c>(
                    __conn: &'__c mut #conn,
                    __rows: &'__c [(&'__c #record, #rewrite)],
                ) -> #rot::r#async::BoxFuture<'__c, #d::QueryResult<usize>> {
                    ::std::boxed::Box::pin(async move { #write_body })
                }
            }
        }
    } else {
        quote! {
            #[automatically_derived]
            impl #rot::Table<#conn> for #ident {
                fn load_page(
                    __conn: &mut #conn,
                    __after: ::core::option::Option<&<Self as #rot::Rotate>::Key>,
                    __limit: i64,
                    __lock: #rot::Lock,
                ) -> #d::QueryResult<::std::vec::Vec<#record>> {
                    #load_body
                }

                fn count(__conn: &mut #conn) -> #d::QueryResult<i64> {
                    #count_body
                }

                fn count_range(
                    __conn: &mut #conn,
                    __after: ::core::option::Option<&<Self as #rot::Rotate>::Key>,
                    __upto: ::core::option::Option<&<Self as #rot::Rotate>::Key>,
                ) -> #d::QueryResult<i64> {
                    #range_body
                }

                fn write(
                    __conn: &mut #conn,
                    __rows: &[(&#record, #rewrite)],
                ) -> #d::QueryResult<usize> {
                    #write_body
                }
            }
        }
    };
    quote!(#gate! { #body })
}
