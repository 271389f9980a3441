//! Code generation: the traced function.
//!
//! Every shape starts the same way: `lstrace::recorder::is_enabled()` is checked first, and
//! only when a tracer is recording are the span's name and tags evaluated and the span
//! started. Locals are `__lstrace_`-prefixed; generated tokens carry the call site's hygiene
//! (so lints treat them as macro output) but point at the user's tokens where an error about
//! them can occur.

use crate::args::{Args, Format, Outcome, TagArg};
use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{
    AttrStyle, Block, Expr, ExprAsync, ExprCall, FnArg, GenericArgument, Item, ItemFn, Lit, LitStr,
    Pat, PathArguments, ReturnType, Signature, Stmt, TraitItemFn, Type, TypeParamBound, UnOp,
};

/// Expands `#[traced(args)]` on `item`.
pub(crate) fn traced(args: &Args, item: TokenStream) -> syn::Result<TokenStream> {
    let function = parse_function(item)?;
    if let Some(constness) = &function.sig.constness {
        return Err(syn::Error::new(
            constness.span,
            "`#[traced]` cannot trace a `const fn`: spans start and finish at run time",
        ));
    }
    check_params(args, &function.sig)?;
    check_err_value(args, &function)?;
    Ok(gen_function(args, &function))
}

/// `err` on a function whose value is written `Option<..>` (by any path): an error at the
/// return type that says what to write instead. An `Option` behind an alias is caught later,
/// by the `TracedResult` bound and its message.
fn check_err_value(args: &Args, function: &ItemFn) -> syn::Result<()> {
    let (Some(_), Some(value)) = (&args.err, value_type(function)) else {
        return Ok(());
    };
    if last_segment(value).is_none_or(|s| s.ident != "Option") {
        return Ok(());
    }
    let instead = if args.ret.is_some() {
        "remove `err` (`ret` records the value)"
    } else {
        "write `ret` to record its value (a `None` as \"None\")"
    };
    Err(syn::Error::new_spanned(
        value,
        format!(
            "`#[traced(err)]` needs a `Result`, and this function returns an `Option`: \
             {instead}, or call `lstrace::record_error` where it fails"
        ),
    ))
}

/// The type of the function's value as `err` and `ret` see it: what it returns, or, for a
/// function returning a boxed future, what that future resolves to.
fn value_type(function: &ItemFn) -> Option<&Type> {
    match shape(function) {
        Shape::Sync | Shape::Async => return_type(&function.sig),
        Shape::PinnedAsyncBlock { .. } | Shape::BoxedFuture => {
            boxed_future_output(&function.sig.output)
        }
    }
}

fn parse_function(item: TokenStream) -> syn::Result<ItemFn> {
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(function)) => Ok(function),
        parsed => {
            if let Ok(TraitItemFn {
                default: None, sig, ..
            }) = syn::parse2(item.clone())
            {
                return Err(syn::Error::new(
                    sig.ident.span(),
                    "`#[traced]` needs a function body: put it on an implementation of this \
                     method (or on a default body)",
                ));
            }
            let head = match &parsed {
                Ok(item) => item_head(item),
                Err(_) => item,
            };
            Err(syn::Error::new_spanned(
                head,
                "`#[traced]` can only be applied to functions and methods",
            ))
        }
    }
}

/// Where to point at an item that is not a function: its keyword and name.
fn item_head(item: &Item) -> TokenStream {
    fn head(keyword: &impl ToTokens, name: &impl ToTokens) -> TokenStream {
        quote!(#keyword #name)
    }
    match item {
        Item::Struct(i) => head(&i.struct_token, &i.ident),
        Item::Enum(i) => head(&i.enum_token, &i.ident),
        Item::Union(i) => head(&i.union_token, &i.ident),
        Item::Const(i) => head(&i.const_token, &i.ident),
        Item::Static(i) => head(&i.static_token, &i.ident),
        Item::Trait(i) => head(&i.trait_token, &i.ident),
        Item::Mod(i) => head(&i.mod_token, &i.ident),
        Item::Type(i) => head(&i.type_token, &i.ident),
        Item::Impl(i) => head(&i.impl_token, &i.self_ty),
        other => other.to_token_stream(),
    }
}

/// Every name `args(...)` mentions must be a parameter of the function.
fn check_params(args: &Args, sig: &Signature) -> syn::Result<()> {
    let mut names = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(_) => names.push("self".to_owned()),
            FnArg::Typed(typed) => pattern_names(&typed.pat, &mut names),
        }
    }
    for param in &args.params {
        let name = param.ident.unraw().to_string();
        if !names.contains(&name) {
            let known = if names.is_empty() {
                "it has none".to_owned()
            } else {
                format!("it has: {}", names.join(", "))
            };
            return Err(syn::Error::new(
                param.ident.span(),
                format!("`args`: the function has no parameter named `{name}` ({known})"),
            ));
        }
    }
    Ok(())
}

/// The names a parameter pattern binds (`(a, mut b)` binds `a` and `b`; `_` binds nothing).
fn pattern_names(pat: &Pat, names: &mut Vec<String>) {
    match pat {
        Pat::Ident(p) => {
            names.push(p.ident.unraw().to_string());
            if let Some((_, sub)) = &p.subpat {
                pattern_names(sub, names);
            }
        }
        Pat::Reference(p) => pattern_names(&p.pat, names),
        Pat::Paren(p) => pattern_names(&p.pat, names),
        Pat::Type(p) => pattern_names(&p.pat, names),
        Pat::Tuple(p) => p.elems.iter().for_each(|e| pattern_names(e, names)),
        Pat::TupleStruct(p) => p.elems.iter().for_each(|e| pattern_names(e, names)),
        Pat::Slice(p) => p.elems.iter().for_each(|e| pattern_names(e, names)),
        Pat::Struct(p) => p.fields.iter().for_each(|f| pattern_names(&f.pat, names)),
        _ => {}
    }
}

/// A span located at `at` (so errors point there) with the macro's hygiene (so lints see
/// generated code as macro output, not as the user's).
fn at(at: Span) -> Span {
    Span::call_site().located_at(at)
}

/// How the function runs, which decides how its span is held.
enum Shape<'a> {
    /// A synchronous function: a span entered for the whole body.
    Sync,
    /// An `async fn`: the body runs in an instrumented future.
    Async,
    /// A function whose body ends in `Box::pin(async { ... })` (what `#[async_trait]`
    /// generates): the async block is instrumented in place, its span starting at the first
    /// poll as an `async fn`'s does.
    PinnedAsyncBlock {
        /// The statements before the tail.
        before: &'a [Stmt],
        /// The `Box::pin` call.
        call: &'a ExprCall,
        block: &'a ExprAsync,
    },
    /// A function returning a boxed future some other way: the span starts at the call, the
    /// body runs inside it, and the future it returns is wrapped.
    BoxedFuture,
}

fn shape(function: &ItemFn) -> Shape<'_> {
    if function.sig.asyncness.is_some() {
        return Shape::Async;
    }
    if let Some((before, call, block)) = pinned_async_tail(&function.block) {
        return Shape::PinnedAsyncBlock {
            before,
            call,
            block,
        };
    }
    if boxed_future_output(&function.sig.output).is_some() {
        return Shape::BoxedFuture;
    }
    Shape::Sync
}

/// `stmts...; Box::pin(async move { ... })`, with no `return` before the tail (a `return`
/// there would hand back a future the instrumented tail does not cover).
fn pinned_async_tail(block: &Block) -> Option<(&[Stmt], &ExprCall, &ExprAsync)> {
    let (Stmt::Expr(Expr::Call(call), None), before) = block.stmts.split_last()? else {
        return None;
    };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = func
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    let Expr::Async(async_block) = &call.args[0] else {
        return None;
    };
    let mut finder = ReturnFinder(false);
    for stmt in before {
        finder.visit_stmt(stmt);
    }
    (!finder.0).then_some((before, call, async_block))
}

/// Finds a `return` that leaves the function (not one inside a closure, an async block or a
/// nested item), including inside macro calls, whose tokens are searched.
struct ReturnFinder(bool);

impl Visit<'_> for ReturnFinder {
    fn visit_expr_return(&mut self, _: &syn::ExprReturn) {
        self.0 = true;
    }
    fn visit_expr_closure(&mut self, _: &syn::ExprClosure) {}
    fn visit_expr_async(&mut self, _: &ExprAsync) {}
    fn visit_item(&mut self, _: &Item) {}
    fn visit_macro(&mut self, mac: &syn::Macro) {
        fn has_return(tokens: TokenStream) -> bool {
            tokens.into_iter().any(|t| match t {
                TokenTree::Ident(i) => i == "return",
                TokenTree::Group(g) => has_return(g.stream()),
                _ => false,
            })
        }
        self.0 |= has_return(mac.tokens.clone());
    }
}

/// The `Output` of a boxed-future return type: `Pin<Box<dyn Future<Output = T> + ...>>`, or
/// the `futures` aliases `BoxFuture<'a, T>` / `LocalBoxFuture<'a, T>`.
fn boxed_future_output(output: &ReturnType) -> Option<&Type> {
    let ReturnType::Type(_, ty) = output else {
        return None;
    };
    let last = last_segment(ty)?;
    if last.ident == "BoxFuture" || last.ident == "LocalBoxFuture" {
        return generic_types(&last.arguments).first().copied();
    }
    if last.ident != "Pin" {
        return None;
    }
    let boxed = *generic_types(&last.arguments).first()?;
    let boxed = last_segment(boxed).filter(|s| s.ident == "Box")?;
    let Type::TraitObject(object) = *generic_types(&boxed.arguments).first()? else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let future = t.path.segments.last().filter(|s| s.ident == "Future")?;
        let PathArguments::AngleBracketed(a) = &future.arguments else {
            return None;
        };
        a.args.iter().find_map(|a| match a {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(&assoc.ty),
            _ => None,
        })
    })
}

/// The type arguments of a path segment: `T` and `U` in `X<'a, T, U>`.
fn generic_types(args: &PathArguments) -> Vec<&Type> {
    match args {
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Paren(p) => last_segment(&p.elem),
        Type::Group(g) => last_segment(&g.elem),
        _ => None,
    }
}

fn gen_function(args: &Args, function: &ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = function;
    let (inner_attrs, outer_attrs): (Vec<_>, Vec<_>) = attrs
        .iter()
        .partition(|a| matches!(a.style, AttrStyle::Inner(_)));
    let builder = span_builder(args, &sig.ident);
    let body = match shape(function) {
        Shape::Sync => gen_sync(args, &builder, sig, block),
        Shape::Async => gen_async(args, &builder, sig, block),
        Shape::PinnedAsyncBlock {
            before,
            call,
            block: async_block,
        } => gen_pinned_async_block(args, &builder, sig, before, call, async_block),
        Shape::BoxedFuture => gen_boxed_future(args, &builder, sig, block),
    };
    let body = in_braces(&block.brace_token, &quote!(#(#inner_attrs)* #body));
    quote! {
        #(#outer_attrs)*
        #vis #sig #body
    }
}

/// `lstrace::span(name).with_tag(..)...`: evaluated only when a tracer is recording.
fn span_builder(args: &Args, fn_name: &syn::Ident) -> TokenStream {
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&fn_name.unraw().to_string(), fn_name.span()));
    let krate = args.krate();
    let tags = args.tags.iter().map(|TagArg { key, format, value }| {
        let value = tag_value(&krate, *format, value);
        quote!(.with_tag(#key, #value))
    });
    let params = args.params.iter().map(|param| {
        let key = param.key();
        let ident = &param.ident;
        let value = converted(
            &krate,
            param.format,
            &quote_spanned!(at(ident.span())=> &#ident),
            ident.span(),
        );
        quote!(.with_tag(#key, #value))
    });
    let kind = args.kind.as_ref().map(|k| {
        let variant = &k.variant;
        let krate = respanned(&krate, at(variant.span()));
        quote_spanned!(at(variant.span())=> .kind(#krate::SpanKind::#variant))
    });
    let follows_from = args
        .follows_from
        .map(|s| quote_spanned!(at(s)=> .follows_from_current()));
    let root = args.root.map(|s| quote_spanned!(at(s)=> .root()));
    quote! {
        #krate::span(#name) #(#tags)* #(#params)* #kind #follows_from #root
    }
}

/// A tag's value. A literal becomes its `TagValue` directly (no conversion, no allocation).
fn tag_value(krate: &TokenStream, format: Format, value: &Expr) -> TokenStream {
    if format == Format::Typed {
        if let Some(constant) = literal_tag_value(krate, value) {
            return constant;
        }
    }
    converted(
        krate,
        format,
        &quote_spanned!(at(value.span())=> &(#value)),
        value.span(),
    )
}

fn literal_tag_value(krate: &TokenStream, value: &Expr) -> Option<TokenStream> {
    let (negative, lit) = match value {
        Expr::Lit(l) => (false, &l.lit),
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => match &*u.expr {
            Expr::Lit(l) => (true, &l.lit),
            _ => return None,
        },
        _ => return None,
    };
    let span = at(value.span());
    let krate = &respanned(krate, span);
    match lit {
        Lit::Str(s) if !negative => Some(quote_spanned!(span=> #krate::TagValue::from_static(#s))),
        Lit::Bool(b) if !negative => Some(quote_spanned!(span=> #krate::TagValue::Bool(#b))),
        Lit::Int(i) => {
            let digits: i128 = i.base10_parse().ok()?;
            let value = if negative { -digits } else { digits };
            if !fits_suffix(value, i.suffix()) {
                // Left to the compiler, which points at the literal (`overflowing_literals`,
                // or a negated unsigned literal).
                return None;
            }
            let n = i64::try_from(value).ok()?;
            let n = proc_macro2::Literal::i64_suffixed(n);
            Some(quote_spanned!(span=> #krate::TagValue::Int(#n)))
        }
        Lit::Float(f) => {
            // An `f32` literal records the `f32` value, as a variable of that type would.
            let x = if f.suffix() == "f32" {
                f64::from(f.base10_parse::<f32>().ok()?)
            } else {
                f.base10_parse::<f64>().ok()?
            };
            let x = if negative { -x } else { x };
            if !x.is_finite() {
                return None;
            }
            let x = proc_macro2::Literal::f64_suffixed(x);
            Some(quote_spanned!(span=> #krate::TagValue::Float(#x)))
        }
        _ => None,
    }
}

/// True when `value` is a valid literal of the type its suffix names (any value for none).
fn fits_suffix(value: i128, suffix: &str) -> bool {
    match suffix {
        "i8" => i8::try_from(value).is_ok(),
        "i16" => i16::try_from(value).is_ok(),
        "i32" => i32::try_from(value).is_ok(),
        "i64" | "isize" => i64::try_from(value).is_ok(),
        "u8" => u8::try_from(value).is_ok(),
        "u16" => u16::try_from(value).is_ok(),
        "u32" => u32::try_from(value).is_ok(),
        "u64" | "usize" => u64::try_from(value).is_ok(),
        "u128" => u128::try_from(value).is_ok(),
        _ => true,
    }
}

/// Converts the value that `reference` (an expression of type `&T`) points to.
fn converted(
    krate: &TokenStream,
    format: Format,
    reference: &TokenStream,
    span: Span,
) -> TokenStream {
    let span = at(span);
    let krate = &respanned(krate, span);
    match format {
        Format::Typed => quote_spanned!(span=> #krate::ToTagValue::to_tag_value(#reference)),
        Format::Debug => quote_spanned!(span=> #krate::__private::debug(#reference)),
        Format::Display => quote_spanned!(span=> #krate::__private::display(#reference)),
    }
}

/// `tokens` (the path of lstrace) located at `span`, so that errors in the code around them
/// point at the user's tokens, as they would without `crate = path`.
fn respanned(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}

/// How the started span is held.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Entered for the rest of the function: `__lstrace_entered`, an `EnteredSpan`.
    Entered,
    /// Not entered: `mut __lstrace_span`, a `Span` that runs the body in its scope and
    /// instruments the future the body returns.
    Detached,
}

/// What starts the span: `is_enabled()` first, the builder only when it is true. With
/// `flag`, binds `__lstrace_on` to what `is_enabled()` said, for the end of the function.
fn start(krate: &TokenStream, builder: &TokenStream, hold: Hold, flag: bool) -> TokenStream {
    let enabled = quote!(#krate::recorder::is_enabled());
    let (flag, condition) = if flag {
        (quote!(let __lstrace_on = #enabled;), quote!(__lstrace_on))
    } else {
        (TokenStream::new(), enabled)
    };
    let started = match hold {
        Hold::Entered => quote! {
            let __lstrace_entered = if #condition {
                #builder.start()
            } else {
                #krate::EnteredSpan::noop()
            };
        },
        Hold::Detached => {
            quote! {
                let mut __lstrace_span = if #condition {
                    #builder.start_detached()
                } else {
                    #krate::Span::noop()
                };
            }
        }
    };
    quote!(#flag #started)
}

/// Records `err` / `ret` from `__lstrace_result`, on the current span (this function's).
fn record_outcome(args: &Args) -> TokenStream {
    let krate = args.krate();
    let record = match (&args.err, &args.ret) {
        (None, None) => return TokenStream::new(),
        (Some(err), ret) => {
            let error = record_error(&krate, err);
            let value = ret.as_ref().map(|ret| {
                record_return(
                    &krate,
                    ret,
                    &quote_spanned!(at(ret.keyword.span())=> __lstrace_value),
                )
            });
            let krate = respanned(&krate, at(err.keyword.span()));
            quote_spanned! {at(err.keyword.span())=>
                match #krate::__private::TracedResult::as_result(&__lstrace_result) {
                    ::core::result::Result::Ok(__lstrace_value) => { #value }
                    ::core::result::Result::Err(__lstrace_error) => { #error }
                }
            }
        }
        (None, Some(ret)) => record_return(
            &krate,
            ret,
            &quote_spanned!(at(ret.keyword.span())=> &__lstrace_result),
        ),
    };
    quote! {
        if __lstrace_on {
            #record
        }
    }
}

fn record_error(krate: &TokenStream, err: &Outcome) -> TokenStream {
    let span = at(err.keyword.span());
    let krate = &respanned(krate, span);
    match err.format {
        Format::Debug => quote_spanned! {span=>
            #krate::record_error(&::core::format_args!("{:?}", __lstrace_error));
        },
        Format::Typed | Format::Display => quote_spanned! {span=>
            #krate::record_error(#krate::__private::ErrorText::text(__lstrace_error));
        },
    }
}

fn record_return(krate: &TokenStream, ret: &Outcome, reference: &TokenStream) -> TokenStream {
    let value = converted(krate, ret.format, reference, ret.keyword.span());
    quote!(#krate::set_tag("return", #value);)
}

/// An unreachable `return` of the declared type, first in a closure or async block that
/// holds the body: it fixes the block's type from the start, so `?` conversions and
/// coercions (`Box<T>` to `Box<dyn Trait>`) work as they do in the function itself.
fn fake_return(output: Option<&Type>, fallback: Span) -> TokenStream {
    let (ty, span) = match output {
        Some(Type::Never(_)) => return TokenStream::new(),
        Some(ty) => {
            let mut erased = ty.clone();
            ImplTraitEraser.visit_type_mut(&mut erased);
            (erased.into_token_stream(), ty.span())
        }
        None => (quote!(()), fallback),
    };
    quote_spanned! {at(span)=>
        #[allow(
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::unreachable
        )]
        if false {
            let __lstrace_return: #ty = loop {};
            return __lstrace_return;
        }
    }
}

fn return_type(sig: &Signature) -> Option<&Type> {
    match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(ty),
    }
}

/// `impl Trait` cannot be written in a `let`: `_` infers it.
struct ImplTraitEraser;

impl VisitMut for ImplTraitEraser {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::ImplTrait(t) = ty {
            *ty = Type::Infer(syn::TypeInfer {
                underscore_token: syn::Token![_](t.span()),
            });
        } else {
            syn::visit_mut::visit_type_mut(self, ty);
        }
    }
}

/// A future from `future` (an expression) that records `err` / `ret` after it completes.
fn with_outcome(args: &Args, future: &TokenStream) -> TokenStream {
    if !args.records_outcome() {
        return future.clone();
    }
    let record = record_outcome(args);
    quote! {
        async move {
            let __lstrace_result = #future.await;
            #record
            __lstrace_result
        }
    }
}

/// The statements of `block` with `ours` inserted after its leading items: the body runs as
/// written (no nested block whose braces lints would flag), and items stay first.
fn spliced(stmts: &[Stmt], ours: &TokenStream) -> TokenStream {
    let items = stmts
        .iter()
        .take_while(|s| matches!(s, Stmt::Item(_)))
        .count();
    let (items, rest) = stmts.split_at(items);
    quote!(#(#items)* #ours #(#rest)*)
}

/// `{ ... }` with the span of the user's braces, so errors about the block's value point at
/// the user's block.
fn in_braces(brace: &syn::token::Brace, inside: &TokenStream) -> TokenStream {
    let mut tokens = TokenStream::new();
    brace.surround(&mut tokens, |t| t.extend(inside.clone()));
    tokens
}

/// The user's block with `ours` spliced in.
fn braced(block: &Block, ours: &TokenStream) -> TokenStream {
    in_braces(&block.brace_token, &spliced(&block.stmts, ours))
}

fn gen_sync(args: &Args, builder: &TokenStream, sig: &Signature, block: &Block) -> TokenStream {
    let start = start(
        &args.krate(),
        builder,
        Hold::Entered,
        args.records_outcome(),
    );
    if !args.records_outcome() {
        // The entered span lives until the function returns, however it returns.
        return spliced(&block.stmts, &start);
    }
    // The body runs in a closure, so that `return` and `?` still come back here with the
    // value to record.
    let body = braced(block, &fake_return(return_type(sig), sig.ident.span()));
    let record = record_outcome(args);
    quote! {
        #start
        #[allow(clippy::redundant_closure_call)]
        let __lstrace_result = (move || #body)();
        #record
        __lstrace_result
    }
}

/// The span started and the future awaited inside it: an `async fn`'s body, or the async
/// block of a `Box::pin(async { .. })` tail. The span starts at the first poll, entered as a
/// synchronous function's is; the future, awaited at once, takes it from there.
fn instrumented_await(args: &Args, builder: &TokenStream, future: &TokenStream) -> TokenStream {
    let krate = args.krate();
    let start = start(
        &args.krate(),
        builder,
        Hold::Entered,
        args.records_outcome(),
    );
    let future = with_outcome(args, future);
    quote! {
        #start
        #krate::Instrumented::__traced(__lstrace_entered, #future).await
    }
}

fn gen_async(args: &Args, builder: &TokenStream, sig: &Signature, block: &Block) -> TokenStream {
    let body = braced(block, &fake_return(return_type(sig), sig.ident.span()));
    instrumented_await(args, builder, &quote!(async move #body))
}

fn gen_pinned_async_block(
    args: &Args,
    builder: &TokenStream,
    sig: &Signature,
    before: &[Stmt],
    call: &ExprCall,
    async_block: &ExprAsync,
) -> TokenStream {
    let ExprAsync {
        attrs,
        async_token,
        capture,
        block,
    } = async_block;
    let fake_return = boxed_future_output(&sig.output)
        .map(|output| fake_return(Some(output), sig.ident.span()))
        .unwrap_or_default();
    let body = braced(block, &fake_return);
    let inner = instrumented_await(
        args,
        builder,
        &quote!(#(#attrs)* #async_token #capture #body),
    );
    let box_pin = &call.func;
    quote! {
        #(#before)*
        #box_pin(async move { #inner })
    }
}

fn gen_boxed_future(
    args: &Args,
    builder: &TokenStream,
    sig: &Signature,
    block: &Block,
) -> TokenStream {
    // `__lstrace_on` says whether to wrap: a span that records nothing but was started while
    // recording (an unsampled trace) still carries its context to the future's children.
    let start = start(&args.krate(), builder, Hold::Detached, true);
    let body = braced(block, &fake_return(return_type(sig), sig.ident.span()));
    let future = with_outcome(args, &quote!(__lstrace_future));
    let krate = args.krate();
    quote! {
        #start
        // The body runs inside the span: spans it starts while making the future are its
        // children too.
        let __lstrace_future = __lstrace_span.in_scope(move || #body);
        if __lstrace_on {
            ::std::boxed::Box::pin(#krate::Instrumented::new(__lstrace_span, #future))
        } else {
            __lstrace_future
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn output(ty: &str) -> Option<String> {
        let output: ReturnType = syn::parse_str(&format!("-> {ty}")).expect("a type");
        boxed_future_output(&output).map(|t| t.to_token_stream().to_string())
    }

    #[test]
    fn recognizes_boxed_future_return_types() {
        let send = "Pin<Box<dyn Future<Output = u32> + Send + 'a>>";
        assert_eq!(output(send).as_deref(), Some("u32"));
        let qualified = "std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), E>>>>";
        assert_eq!(output(qualified).as_deref(), Some("Result < () , E >"));
        assert_eq!(output("BoxFuture<'static, u8>").as_deref(), Some("u8"));
        assert_eq!(output("LocalBoxFuture<'a, ()>").as_deref(), Some("()"));
        assert_eq!(output("Pin<Box<u32>>"), None);
        assert_eq!(output("Box<dyn Future<Output = u32>>"), None);
        assert_eq!(output("u32"), None);
    }

    #[test]
    fn finds_a_pinned_async_tail_unless_the_body_returns_earlier() {
        let async_trait: Block = parse_quote!({ Box::pin(async move { 1 }) });
        assert!(pinned_async_tail(&async_trait).is_some());
        let with_statements: Block = parse_quote!({
            let x = 1;
            let f = || {
                return 2;
            };
            ::std::boxed::Box::pin(async move { x + f() })
        });
        assert!(pinned_async_tail(&with_statements).is_some());
        let early: Block = parse_quote!({
            if x {
                return Box::pin(ready(0));
            }
            Box::pin(async move { 1 })
        });
        assert!(pinned_async_tail(&early).is_none());
        let in_macro: Block = parse_quote!({
            check!(x, return Box::pin(ready(0)));
            Box::pin(async move { 1 })
        });
        assert!(pinned_async_tail(&in_macro).is_none());
        let not_async: Block = parse_quote!({ Box::pin(future) });
        assert!(pinned_async_tail(&not_async).is_none());
    }

    fn literal(expr: &str) -> Option<String> {
        literal_tag_value(
            &quote!(::lstrace),
            &syn::parse_str(expr).expect("an expression"),
        )
        .map(|t| t.to_string())
    }

    #[test]
    fn literals_become_tag_values_directly() {
        let direct = |value: &str| Some(format!(":: lstrace :: TagValue :: {value}"));
        assert_eq!(literal("\"GET\""), direct("from_static (\"GET\")"));
        assert_eq!(literal("7"), direct("Int (7i64)"));
        assert_eq!(literal("-7i8"), direct("Int (- 7i64)"));
        assert_eq!(literal("0x10"), direct("Int (16i64)"));
        assert_eq!(literal("2.5"), direct("Float (2.5f64)"));
        assert_eq!(literal("true"), direct("Bool (true)"));
        // What does not fit the typed value goes through `ToTagValue`, like any expression.
        assert_eq!(literal("18446744073709551615u64"), None);
        assert_eq!(literal("1e999"), None);
        assert_eq!(literal("'c'"), None);
        assert_eq!(literal("x"), None);
    }

    fn expand(args: &str, function: &str) -> syn::Result<TokenStream> {
        let args: Args = syn::parse_str(args).expect("arguments");
        traced(&args, syn::parse_str(function).expect("a function"))
    }

    /// `err` on a function whose value is an `Option`, however the path and the function are
    /// written, is an error at the return type; a `Result`, or `ret` alone, is not.
    #[test]
    fn err_on_an_option_is_an_error_at_the_return_type() {
        let options = [
            "fn f() -> Option<u32> { None }",
            "fn f() -> std::option::Option<u32> { None }",
            "async fn f() -> Option<u32> { None }",
            "fn f() -> Pin<Box<dyn Future<Output = Option<u8>> + Send>> { \
             Box::pin(async move { None }) }",
            "fn f() -> BoxFuture<'static, Option<u8>> { let x = None; \
             Box::pin(std::future::ready(x)) }",
        ];
        for function in options {
            let error = expand("err", function).expect_err(function);
            let message = error.to_string();
            assert!(message.contains("returns an `Option`"), "{message}");
            assert!(message.contains("write `ret`"), "{message}");
            let with_ret = expand("err(?), ret", function).expect_err(function);
            assert!(with_ret.to_string().contains("remove `err`"), "{with_ret}");
        }
        for function in [
            "fn f() -> Result<Option<u32>, String> { Ok(None) }",
            "fn f() -> Optional<u32> { todo!() }",
        ] {
            expand("err", function).expect(function);
        }
        expand("ret", "fn f() -> Option<u32> { None }").expect("`ret` alone");
    }

    /// Every path of the expansion, for every shape of function and every argument, goes
    /// through `crate = path` when it is given.
    #[test]
    fn crate_path_is_used_for_every_generated_path() {
        let functions = [
            "fn f(a: u32) -> Result<u32, String> { Ok(a) }",
            "async fn f(a: u32) -> Result<u32, String> { Ok(a) }",
            "fn f(a: u32) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> { \
             Box::pin(async move { Ok(a) }) }",
            "fn f(a: u32) -> BoxFuture<'static, Result<u32, String>> { let b = a; \
             Box::pin(std::future::ready(Ok(b))) }",
        ];
        let args = "crate = my_facade::lstrace, tags(n = 1, s = \"x\", d = ?a, t = %a, e = a), \
                    args(a), kind = server, err, ret, follows_from";
        for function in functions {
            let args: Args = syn::parse_str(args).expect("arguments");
            let item: TokenStream = syn::parse_str(function).expect("a function");
            let expanded = traced(&args, item).expect("an expansion").to_string();
            assert!(
                expanded.contains("my_facade :: lstrace :: span"),
                "{expanded}"
            );
            let elsewhere = expanded.replace("my_facade :: lstrace ::", "");
            assert!(!elsewhere.contains("lstrace ::"), "{expanded}");
        }
    }
}
