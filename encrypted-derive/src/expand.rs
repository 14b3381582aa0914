//! Code generation for a validated [`Model`].
//!
//! The model gets a hidden record type carrying Diesel's own derives (`Queryable`, `Selectable`,
//! `Insertable`, `AsChangeset`) whose encrypted fields are `Encrypted` values and which has the
//! hash and flag columns; the model's Diesel impls delegate to it, sealing on the way in and
//! opening on the way out.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::ast::{Encrypt, Field, Model, Segment};
use crate::attr::Normalize;

pub(crate) fn expand(m: &Model<'_>) -> TokenStream {
    let p = quote!(::encrypted_diesel::__private);
    let d = quote!(::encrypted_diesel::__private::diesel);
    let ident = m.ident;
    let vis = m.vis;
    let model_name = ident.unraw().to_string();
    let resource = &m.resource;
    let table = &m.table;
    let record = Ident::new("__EncryptedRecord", Span::call_site());

    // The record's fields.
    let mut record_fields = Vec::new();
    let mut record_names = Vec::new();
    for f in &m.fields {
        let name = f.ident;
        let attrs = &f.diesel_attrs;
        let ty = match &f.encrypt {
            Some(e) if e.nullable => {
                quote_spanned!(f.ty.span()=> ::core::option::Option<#p::Encrypted>)
            }
            Some(_) => quote_spanned!(f.ty.span()=> #p::Encrypted),
            None => {
                let ty = f.ty;
                quote!(#ty)
            }
        };
        record_fields.push(quote!(#(#attrs)* pub #name: #ty));
        record_names.push(name.clone());
    }
    for (_, e, h) in hashed(m) {
        let col = &h.column;
        let ty = if e.nullable {
            quote!(::core::option::Option<::std::string::String>)
        } else {
            quote!(::std::string::String)
        };
        record_fields.push(quote!(pub #col: #ty));
        record_names.push(col.clone());
    }
    if let Some(flag) = &m.flag {
        record_fields.push(quote!(pub #flag: bool));
        record_names.push(flag.clone());
    }
    let primary_key = m
        .primary_key
        .as_ref()
        .map(|keys| quote!(#[diesel(primary_key(#(#keys),*))]));

    let shared_aad = !m.aad.contains(&Segment::Column);
    let is_hash = |i: &Ident| hashed(m).any(|(_, _, h)| h.column == *i);

    // Sealing: model → record.
    let mut seal = Vec::new();
    for (f, e, h) in hashed(m) {
        let field = f.ident;
        let col = &h.column;
        let field_name = field.unraw().to_string();
        let col_name = col.unraw().to_string();
        let norm = normalize(h.normalize);
        let inner = e.inner;
        let err = format_ident!("__hash_error_{}", field.unraw());
        let compute = if h.hmac {
            quote!(#p::hash_hmac::<#inner>(
                __row.as_ref().ok().map(|__r| &*__r.0), __v, #norm, #resource, #col_name,
                #model_name, #field_name))
        } else {
            quote!(::core::result::Result::<_, #p::Error>::Ok(#p::hash_sha256::<#inner>(__v, #norm)))
        };
        if e.nullable {
            seal.push(quote! {
                let (#col, #err) = match __model.#field.as_ref().map(|__v| #compute).transpose() {
                    ::core::result::Result::Ok(__h) => (__h, ::core::option::Option::None),
                    ::core::result::Result::Err(__e) => (::core::option::Option::None, ::core::option::Option::Some(__e)),
                };
            });
        } else {
            seal.push(quote! {
                let (#col, #err) = match { let __v = &__model.#field; #compute } {
                    ::core::result::Result::Ok(__h) => (__h, ::core::option::Option::None),
                    ::core::result::Result::Err(__e) => (::std::string::String::new(), ::core::option::Option::Some(__e)),
                };
            });
        }
    }
    let seal_source = |i: &Ident| {
        if is_hash(i) {
            quote!(#i)
        } else {
            quote!(__model.#i)
        }
    };
    if shared_aad {
        let aad = aad_expr(m, "", &seal_source);
        seal.push(quote!(let __aad = #aad;));
    }
    for (f, e) in encrypted(m) {
        let field = f.ident;
        let field_name = field.unraw().to_string();
        let inner = e.inner;
        let base64 = e.base64;
        let aad_var = format_ident!("__aad_{}", field.unraw());
        if shared_aad {
            seal.push(quote!(let #aad_var: &str = &__aad;));
        } else {
            let aad = aad_expr(m, &f.column.unraw().to_string(), &seal_source);
            seal.push(quote!(let #aad_var: &str = &#aad;));
        }
        let plain = if e.json {
            quote_spanned!(inner.span()=> #p::json_plain::<#inner>(__v, #model_name, #field_name))
        } else {
            quote_spanned!(inner.span()=> #p::plain::<#inner>(__v))
        };
        let column = &f.column;
        let binary_column =
            quote!(<<#table::#column as #d::Expression>::SqlType as #p::ColumnKind>::BINARY);
        let seal_one = quote!(#p::seal(__row, #plain, #aad_var, #base64, #binary_column, #model_name, #field_name));
        let hash_error = e.hash.as_ref().map(|_| {
            let err = format_ident!("__hash_error_{}", field.unraw());
            quote!(if let ::core::option::Option::Some(__e) = #err { #p::Encrypted::failed(__e) } else)
        });
        if e.nullable {
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
        seal_init.push(quote!(#flag: true));
    }

    // Opening: record → model.
    let mut open = Vec::new();
    open.push(quote!(let Self { #(#record_names),* } = self;));
    let legacy = match &m.flag {
        Some(flag) => quote!(!#flag),
        None => quote!(false),
    };
    open.push(quote!(let __legacy: bool = #legacy;));
    let open_source = |i: &Ident| quote!(#i);
    if shared_aad {
        let aad = aad_expr(m, "", &open_source);
        open.push(quote!(let __aad = #aad;));
    }
    let mut open_aads = Vec::new();
    let mut open_fields = Vec::new();
    for (f, e) in encrypted(m) {
        let field = f.ident;
        let field_name = field.unraw().to_string();
        let inner = e.inner;
        let base64 = e.base64;
        let aad_var = format_ident!("__aad_{}", field.unraw());
        if shared_aad {
            open_aads.push(quote!(let #aad_var: &str = &__aad;));
        } else {
            let aad = aad_expr(m, &f.column.unraw().to_string(), &open_source);
            open_aads.push(quote!(let #aad_var: &str = &#aad;));
        }
        let convert = if e.json {
            quote_spanned!(inner.span()=> #p::from_json::<#inner>(&__b, #model_name, #field_name)?)
        } else {
            quote_spanned!(inner.span()=> #p::from_plain::<#inner>(__b, #model_name, #field_name)?)
        };
        let open_one = quote! {{
            let __b = #p::open(&__ring, __v, #aad_var, #base64, __legacy, #model_name, #field_name)?;
            #convert
        }};
        if e.nullable {
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

    // Debug.
    let debug_fields = m.fields.iter().map(|f| {
        let field = f.ident;
        let name = field.unraw().to_string();
        if f.encrypt.is_some() {
            quote!(.field(#name, &::core::format_args!("[REDACTED]")))
        } else {
            quote!(.field(#name, &self.#field))
        }
    });

    // Query helpers.
    let helpers = hashed(m).map(|(f, e, h)| {
        let field = f.ident;
        let field_name = field.unraw().to_string();
        let col = &h.column;
        let col_name = col.unraw().to_string();
        let eq = format_ident!("{}_eq", field.unraw());
        let hash_fn = format_ident!("{}_hash", field.unraw());
        let inner = e.inner;
        let norm = normalize(h.normalize);
        let doc_eq = format!(
            " `{col_name} = hash(value)`: finds rows whose `{field_name}` equals `value` \
             (after normalisation) without decrypting."
        );
        let doc_hash = format!(" The `{col_name}` lookup hash of a `{field_name}` value.");
        if h.hmac {
            quote! {
                #[doc = #doc_hash]
                ///
                /// # Errors
                /// `NoKeyring`, or `NoLookupKey` when the keys have no lookup key.
                #vis fn #hash_fn(value: &<#inner as #p::Plain>::Borrowed) -> ::core::result::Result<::std::string::String, #p::Error> {
                    #p::hash_hmac_borrowed::<#inner>(value, #norm, #resource, #col_name, #model_name, #field_name)
                }
                #[doc = #doc_eq]
                ///
                /// # Errors
                /// `NoKeyring`, or `NoLookupKey` when the keys have no lookup key.
                #vis fn #eq(value: &<#inner as #p::Plain>::Borrowed) -> ::core::result::Result<#d::dsl::Eq<#table::#col, ::std::string::String>, #p::Error> {
                    ::core::result::Result::Ok(#d::ExpressionMethods::eq(#table::#col, Self::#hash_fn(value)?))
                }
            }
        } else {
            quote! {
                #[doc = #doc_hash]
                #[must_use]
                #vis fn #hash_fn(value: &<#inner as #p::Plain>::Borrowed) -> ::std::string::String {
                    #p::hash_sha256_borrowed::<#inner>(value, #norm)
                }
                #[doc = #doc_eq]
                #[must_use]
                #vis fn #eq(value: &<#inner as #p::Plain>::Borrowed) -> #d::dsl::Eq<#table::#col, ::std::string::String> {
                    #d::ExpressionMethods::eq(#table::#col, Self::#hash_fn(value))
                }
            }
        }
    });

    // Each encrypted field's column must be text or binary: one clear error on the field
    // before diesel's own trait errors.
    let column_checks = encrypted(m).map(|(f, _)| {
        let field = f.ident;
        let column = &f.column;
        quote_spanned! {field.span()=>
            const _: ::encrypted_diesel::__private::CheckColumn<
                <#table::#column as ::encrypted_diesel::__private::diesel::Expression>::SqlType,
            > = ::encrypted_diesel::__private::CheckColumn::OK;
        }
    });

    // Rewrap: inspect a loaded record and re-encrypt it.
    let rw_source = |i: &Ident| quote!(__r.#i);
    let mut rw = Vec::new();
    rw.push(quote!(let (_, __ring) = #p::row(#model_name, #resource)?;));
    let rw_legacy = match &m.flag {
        Some(flag) => quote!(!__r.#flag),
        None => quote!(false),
    };
    rw.push(quote!(let __legacy: bool = #rw_legacy;));
    rw.push(quote!(let mut __values = ::std::vec::Vec::new();));
    rw.push(quote!(let mut __state = #p::InspectState::default();));
    if shared_aad {
        let aad = aad_expr(m, "", &rw_source);
        rw.push(quote!(let __aad = #aad;));
    }
    let mut rw_reseal = Vec::new();
    let mut rw_columns = Vec::new();
    let mut rw_stored = Vec::new();
    for (f, e) in encrypted(m) {
        let field = f.ident;
        let field_name = field.unraw().to_string();
        let base64 = e.base64;
        let aad_var = format_ident!("__aad_{}", field.unraw());
        if shared_aad {
            rw.push(quote!(let #aad_var: &str = &__aad;));
        } else {
            let aad = aad_expr(m, &f.column.unraw().to_string(), &rw_source);
            rw.push(quote!(let #aad_var: &str = &#aad;));
        }
        let value = if e.nullable {
            quote!(__r.#field.as_ref())
        } else {
            quote!(::core::option::Option::Some(&__r.#field))
        };
        let plain = format_ident!("__plain_{}", field.unraw());
        rw.push(quote! {
            let #plain = #p::inspect_value(&__ring, #value, #aad_var, #base64, __legacy,
                #model_name, #field_name, &mut __values, &mut __state);
        });
        if e.nullable {
            rw_reseal.push(quote! {
                let #field = match &#plain {
                    ::core::option::Option::Some(__b) => ::core::option::Option::Some(
                        #p::reseal(&__ring, __b, #aad_var, #base64, #model_name, #field_name)?),
                    ::core::option::Option::None => ::core::option::Option::None,
                };
            });
            rw_stored.push(quote!(__r.#field.as_ref()));
        } else {
            rw_reseal.push(quote! {
                let #field = #p::reseal(&__ring, #plain.as_deref().unwrap_or_default(),
                    #aad_var, #base64, #model_name, #field_name)?;
            });
            rw_stored.push(quote!(::core::option::Option::Some(&__r.#field)));
        }
        let column = &f.column;
        let column_name = column.unraw().to_string();
        rw_columns.push(quote! {
            #p::Column {
                name: #column_name,
                binary: <<#table::#column as #d::Expression>::SqlType as #p::ColumnKind>::BINARY,
                nullable: <<#table::#column as #d::Expression>::SqlType as #p::ColumnKind>::NULLABLE,
            }
        });
    }
    let mut rw_init = Vec::new();
    for f in &m.fields {
        let field = f.ident;
        if f.encrypt.is_some() {
            rw_init.push(quote!(#field));
        } else {
            rw_init.push(quote!(#field: ::core::clone::Clone::clone(&__r.#field)));
        }
    }
    for (_, _, h) in hashed(m) {
        let col = &h.column;
        rw_init.push(quote!(#col: ::core::clone::Clone::clone(&__r.#col)));
    }
    let (rw_flag_const, rw_flag_value) = match &m.flag {
        Some(flag) => {
            rw_init.push(quote!(#flag: true));
            let name = flag.unraw().to_string();
            (
                quote!(::core::option::Option::Some(#name)),
                quote!(::core::option::Option::Some(__r.#flag)),
            )
        }
        None => (
            quote!(::core::option::Option::None),
            quote!(::core::option::Option::None),
        ),
    };
    let rewrap_impl = quote! {
        #[automatically_derived]
        impl #p::Rewrap for #ident {
            type Record = #record;
            const COLUMNS: &'static [#p::Column] = &[#(#rw_columns),*];
            const FLAG: ::core::option::Option<&'static str> = #rw_flag_const;

            fn inspect(__r: &#record) -> ::core::result::Result<#p::Inspected<#record>, #p::Error> {
                #(#rw)*
                if !__state.needs_rewrap || __state.failed {
                    return ::core::result::Result::Ok(#p::Inspected { values: __values, rewrapped: ::core::option::Option::None });
                }
                #(#rw_reseal)*
                ::core::result::Result::Ok(#p::Inspected {
                    values: __values,
                    rewrapped: ::core::option::Option::Some(#record { #(#rw_init),* }),
                })
            }

            fn stored(__r: &#record) -> ::std::vec::Vec<::core::option::Option<&#p::Encrypted>> {
                ::std::vec![#(#rw_stored),*]
            }

            fn flag(__r: &#record) -> ::core::option::Option<bool> {
                #rw_flag_value
            }
        }
    };

    quote! {
        #[automatically_derived]
        impl ::core::fmt::Debug for #ident {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#model_name) #(#debug_fields)* .finish()
            }
        }

        #[automatically_derived]
        impl #ident {
            #(#helpers)*
        }

        const _: () = {
            // Checked before the record's impls, so this error comes first.
            #(#column_checks)*

            #[derive(diesel::prelude::Queryable, diesel::prelude::Selectable, diesel::prelude::Insertable, diesel::prelude::AsChangeset)]
            #[diesel(table_name = #table)]
            #[diesel(treat_none_as_null = true)]
            #[diesel(treat_none_as_default_value = false)]
            #primary_key
            #[doc(hidden)]
            pub struct #record {
                #(#record_fields,)*
            }

            #[automatically_derived]
            impl #record {
                fn __seal(__model: &#ident) -> Self {
                    Self::__seal_with(__model, &#p::row(#model_name, #resource))
                }

                fn __seal_with(__model: &#ident, __row: &::core::result::Result<#p::Row, #p::Error>) -> Self {
                    #(#seal)*
                    Self { #(#seal_init),* }
                }

                fn __open(self, __ring: &#p::ResourceKeyring) -> ::core::result::Result<#ident, #p::Error> {
                    #(#open)*
                }
            }

            #[automatically_derived]
            impl<__ST, __DB> #d::deserialize::Queryable<__ST, __DB> for #ident
            where
                __DB: #d::backend::Backend,
                #record: #d::deserialize::Queryable<__ST, __DB>,
            {
                type Row = <#record as #d::deserialize::Queryable<__ST, __DB>>::Row;

                fn build(row: Self::Row) -> #d::deserialize::Result<Self> {
                    let __record = <#record as #d::deserialize::Queryable<__ST, __DB>>::build(row)?;
                    let (_, __ring) = #p::row(#model_name, #resource).map_err(#p::deserialize_error)?;
                    __record.__open(&__ring).map_err(#p::deserialize_error)
                }
            }

            #[automatically_derived]
            impl #p::Model for #ident {
                type Record = #record;
                const NAME: &'static str = #model_name;
                const RESOURCE: &'static str = #resource;

                fn decrypt(__record: #record, __ring: &#p::ResourceKeyring) -> ::core::result::Result<Self, #p::Error> {
                    __record.__open(__ring)
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

            #rewrap_impl
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
) -> impl Iterator<Item = (&'m Field<'a>, &'m Encrypt<'a>, &'m crate::ast::Hash)> {
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

/// The expression building the AAD of `column` from the template: a `&'static str` when the
/// template names no value, else a `String`.
fn aad_expr(m: &Model<'_>, column: &str, source: &dyn Fn(&Ident) -> TokenStream) -> TokenStream {
    let p = quote!(::encrypted_diesel::__private);
    let mut parts = Vec::new();
    let mut literal = String::new();
    for segment in &m.aad {
        match segment {
            Segment::Literal(l) => literal.push_str(l),
            Segment::Column => literal.push_str(column),
            Segment::Value(i) => {
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
