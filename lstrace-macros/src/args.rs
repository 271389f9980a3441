//! Parsing of the attribute's arguments: `#[traced(name = "op", tags(k = v), args(a), err, ...)]`.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{parenthesized, Expr, Ident, LitStr, Token};

/// The argument names, as listed in error messages.
const ARGUMENTS: &str = "name, tags, args, err, ret, kind, follows_from, root, crate";

/// How a value becomes a tag value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Keeps its type (integer, float, bool, string) through `ToTagValue`.
    Typed,
    /// `?value`: the `Debug` text.
    Debug,
    /// `%value`: the `Display` text.
    Display,
}

impl Format {
    /// An optional leading `?` or `%`.
    fn parse_sigil(input: ParseStream<'_>) -> syn::Result<Format> {
        if input.peek(Token![?]) {
            input.parse::<Token![?]>()?;
            Ok(Format::Debug)
        } else if input.peek(Token![%]) {
            input.parse::<Token![%]>()?;
            Ok(Format::Display)
        } else {
            Ok(Format::Typed)
        }
    }
}

/// `key = value` in `tags(...)`.
pub(crate) struct TagArg {
    pub(crate) key: LitStr,
    pub(crate) format: Format,
    pub(crate) value: Expr,
}

impl Parse for TagArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = if input.peek(LitStr) {
            input.parse::<LitStr>()?
        } else if input.peek(Ident::peek_any) {
            let ident = input.call(Ident::parse_any)?;
            LitStr::new(&ident.unraw().to_string(), ident.span())
        } else {
            return Err(input.error(
                "expected a tag: `key = value`, where the key is an identifier or a string literal",
            ));
        };
        if key.value().is_empty() {
            return Err(syn::Error::new(key.span(), "a tag key must not be empty"));
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "expected `=` after the tag key: `{k} = value` (to record a parameter under \
                     its own name, use `args({k})`)",
                    k = key.value()
                ),
            ));
        }
        let eq: Token![=] = input.parse()?;
        let format = Format::parse_sigil(input)?;
        if input.is_empty() || input.peek(Token![,]) {
            return Err(syn::Error::new(
                eq.span,
                "expected the tag's value after `=`",
            ));
        }
        let value = input.parse()?;
        Ok(TagArg { key, format, value })
    }
}

/// A parameter named in `args(...)`: `a`, `?a` or `%a`.
pub(crate) struct ParamArg {
    pub(crate) ident: Ident,
    pub(crate) format: Format,
}

impl ParamArg {
    /// The tag key: the parameter's name (without `r#`).
    pub(crate) fn key(&self) -> LitStr {
        LitStr::new(&self.ident.unraw().to_string(), self.ident.span())
    }
}

impl Parse for ParamArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let format = Format::parse_sigil(input)?;
        if !input.peek(Ident::peek_any) {
            return Err(input.error("expected a parameter name, optionally after `?` or `%`"));
        }
        let ident = input.call(Ident::parse_any)?;
        Ok(ParamArg { ident, format })
    }
}

/// `err` or `ret`, with how its value is recorded.
pub(crate) struct Outcome {
    /// The keyword, where errors about the function's value point.
    pub(crate) keyword: Ident,
    pub(crate) format: Format,
}

/// The span kind named by `kind = ...`.
pub(crate) struct Kind {
    /// The variant of `lstrace::SpanKind`, spanned at the user's word.
    pub(crate) variant: Ident,
}

/// Everything `#[traced(...)]` was given.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) name: Option<LitStr>,
    pub(crate) tags: Vec<TagArg>,
    pub(crate) params: Vec<ParamArg>,
    pub(crate) err: Option<Outcome>,
    pub(crate) ret: Option<Outcome>,
    pub(crate) kind: Option<Kind>,
    pub(crate) follows_from: Option<Span>,
    pub(crate) root: Option<Span>,
    /// `crate = path`: where the generated code finds lstrace (a facade's re-export).
    pub(crate) krate: Option<syn::Path>,
}

impl Args {
    /// The path the generated code names lstrace's items by: `::lstrace` unless `crate = path`
    /// says otherwise.
    pub(crate) fn krate(&self) -> proc_macro2::TokenStream {
        match &self.krate {
            Some(path) => quote::ToTokens::to_token_stream(path),
            None => quote::quote!(::lstrace),
        }
    }

    /// Whether the function's value is inspected when it returns.
    pub(crate) fn records_outcome(&self) -> bool {
        self.err.is_some() || self.ret.is_some()
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            if !input.peek(Ident::peek_any) {
                return Err(input.error(format!("expected an argument: one of {ARGUMENTS}")));
            }
            let word = input.call(Ident::parse_any)?;
            let name = word.to_string();
            if seen.contains(&name) {
                return Err(syn::Error::new(
                    word.span(),
                    format!("duplicate argument `{name}`: each argument may be given once"),
                ));
            }
            match name.as_str() {
                "name" => args.name = Some(parse_name(input, &word)?),
                "tags" => args.tags = parse_list(input, &word, "tags(key = value, ...)")?,
                "args" => args.params = parse_list(input, &word, "args(a, ?b, %c)")?,
                "err" => args.err = Some(parse_outcome(input, word, Format::Display)?),
                "ret" => args.ret = Some(parse_outcome(input, word, Format::Typed)?),
                "kind" => args.kind = Some(parse_kind(input, &word)?),
                "follows_from" => args.follows_from = Some(parse_flag(input, &word)?),
                "root" => args.root = Some(parse_flag(input, &word)?),
                "crate" => args.krate = Some(parse_crate(input, &word)?),
                _ => {
                    return Err(syn::Error::new(
                        word.span(),
                        format!("unknown argument `{name}`; expected one of: {ARGUMENTS}"),
                    ))
                }
            }
            seen.push(name);
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        if let (Some(root), Some(_)) = (args.root, args.follows_from) {
            return Err(syn::Error::new(
                root,
                "`root` and `follows_from` cannot be used together: a root span references no \
                 other span",
            ));
        }
        check_unique_keys(&args)?;
        Ok(args)
    }
}

fn parse_name(input: ParseStream<'_>, word: &Ident) -> syn::Result<LitStr> {
    let usage = "expected a string literal: `name = \"operation\"`";
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(word.span(), usage));
    }
    input.parse::<Token![=]>()?;
    if !input.peek(LitStr) {
        return Err(input.error(usage));
    }
    let name: LitStr = input.parse()?;
    if name.value().is_empty() {
        return Err(syn::Error::new(
            name.span(),
            "the span name must not be empty",
        ));
    }
    Ok(name)
}

fn parse_list<T: Parse>(input: ParseStream<'_>, word: &Ident, usage: &str) -> syn::Result<Vec<T>> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            word.span(),
            format!("expected a parenthesized list: `{usage}`"),
        ));
    }
    let content;
    parenthesized!(content in input);
    let list = Punctuated::<T, Token![,]>::parse_terminated(&content)?;
    Ok(list.into_iter().collect())
}

/// `err`, `err(?)`, `err(%)`; `ret`, `ret(?)`, `ret(%)`.
fn parse_outcome(input: ParseStream<'_>, keyword: Ident, default: Format) -> syn::Result<Outcome> {
    if !input.peek(syn::token::Paren) {
        return Ok(Outcome {
            keyword,
            format: default,
        });
    }
    let content;
    parenthesized!(content in input);
    let format = Format::parse_sigil(&content)?;
    if format == Format::Typed || !content.is_empty() {
        return Err(content.error(format!(
            "expected `{keyword}(?)` (record with Debug) or `{keyword}(%)` (record with Display)"
        )));
    }
    Ok(Outcome { keyword, format })
}

fn parse_kind(input: ParseStream<'_>, word: &Ident) -> syn::Result<Kind> {
    let usage = "expected a span kind: `kind = server`, `client`, `producer` or `consumer`";
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(word.span(), usage));
    }
    input.parse::<Token![=]>()?;
    if !input.peek(Ident::peek_any) {
        return Err(input.error(usage));
    }
    let value = input.call(Ident::parse_any)?;
    let variant = match value.to_string().as_str() {
        "server" => "Server",
        "client" => "Client",
        "producer" => "Producer",
        "consumer" => "Consumer",
        other => {
            return Err(syn::Error::new(
                value.span(),
                format!(
                    "unknown span kind `{other}`; expected server, client, producer or consumer"
                ),
            ))
        }
    };
    Ok(Kind {
        variant: Ident::new(variant, value.span()),
    })
}

/// `crate = path`, the path of lstrace as a facade re-exports it (`my_facade::lstrace`).
fn parse_crate(input: ParseStream<'_>, word: &Ident) -> syn::Result<syn::Path> {
    let usage = "expected the path of the lstrace crate: `crate = my_facade::lstrace`";
    if !input.peek(Token![=]) {
        return Err(syn::Error::new(word.span(), usage));
    }
    input.parse::<Token![=]>()?;
    let path = input
        .call(syn::Path::parse_mod_style)
        .map_err(|e| syn::Error::new(e.span(), usage))?;
    Ok(path)
}

fn parse_flag(input: ParseStream<'_>, word: &Ident) -> syn::Result<Span> {
    if input.peek(Token![=]) || input.peek(syn::token::Paren) {
        Err(syn::Error::new(
            word.span(),
            format!("`{word}` takes no value"),
        ))
    } else {
        Ok(word.span())
    }
}

/// A key set twice (in `tags`, or by `tags` and `args` together) is almost surely a mistake.
fn check_unique_keys(args: &Args) -> syn::Result<()> {
    let keys = args
        .tags
        .iter()
        .map(|t| t.key.clone())
        .chain(args.params.iter().map(ParamArg::key));
    let mut seen: Vec<String> = Vec::new();
    for key in keys {
        let value = key.value();
        if seen.contains(&value) {
            return Err(syn::Error::new(
                key.span(),
                format!("tag `{value}` is set twice"),
            ));
        }
        seen.push(value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> syn::Result<Args> {
        syn::parse_str(args)
    }

    fn error(args: &str) -> String {
        match parse(args) {
            Ok(_) => panic!("`{args}` parsed"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_arguments_are_all_defaults() {
        let args = parse("").unwrap();
        assert!(args.name.is_none() && args.tags.is_empty() && args.params.is_empty());
        assert!(args.err.is_none() && args.ret.is_none() && args.kind.is_none());
        assert!(args.follows_from.is_none() && args.root.is_none());
        assert!(!args.records_outcome());
    }

    #[test]
    fn every_argument_in_any_order() {
        let args = parse(
            r#"ret(%), kind = client, tags(a = 1, "http.method" = "GET", r#type = ?x, d = %y.z),
               follows_from, args(p, ?q, %r), err(?), name = "op","#,
        )
        .unwrap();
        assert_eq!(args.name.unwrap().value(), "op");
        let tags: Vec<(String, Format)> = args
            .tags
            .iter()
            .map(|t| (t.key.value(), t.format))
            .collect();
        assert_eq!(
            tags,
            [
                ("a".to_owned(), Format::Typed),
                ("http.method".to_owned(), Format::Typed),
                ("type".to_owned(), Format::Debug),
                ("d".to_owned(), Format::Display),
            ]
        );
        let params: Vec<(String, Format)> = args
            .params
            .iter()
            .map(|p| (p.key().value(), p.format))
            .collect();
        assert_eq!(
            params,
            [
                ("p".to_owned(), Format::Typed),
                ("q".to_owned(), Format::Debug),
                ("r".to_owned(), Format::Display),
            ]
        );
        assert_eq!(args.err.unwrap().format, Format::Debug);
        assert_eq!(args.ret.unwrap().format, Format::Display);
        assert_eq!(args.kind.unwrap().variant, "Client");
        assert!(args.follows_from.is_some() && args.root.is_none());
    }

    #[test]
    fn bare_err_is_display_and_bare_ret_is_typed() {
        let args = parse("err, ret, root").unwrap();
        assert_eq!(args.err.unwrap().format, Format::Display);
        assert_eq!(args.ret.unwrap().format, Format::Typed);
        assert!(args.root.is_some());
    }

    #[test]
    fn tag_values_are_any_expression() {
        let args = parse("tags(n = a.len() + 1, s = if b { 1 } else { 2 }, t = x?)").unwrap();
        assert_eq!(args.tags.len(), 3);
        assert!(matches!(args.tags[2].value, Expr::Try(_)));
    }

    #[test]
    fn misuse_is_explained() {
        let cases = [
            ("level = 3", "unknown argument `level`; expected one of: name, tags"),
            ("err, err", "duplicate argument `err`"),
            ("name = op", "expected a string literal: `name = \"operation\"`"),
            ("name", "expected a string literal"),
            (r#"name = """#, "the span name must not be empty"),
            ("tags(a)", "expected `=` after the tag key: `a = value` (to record a parameter under its own name, use `args(a)`)"),
            ("tags(a = )", "expected the tag's value after `=`"),
            ("tags(1 = 2)", "expected a tag: `key = value`"),
            (r#"tags("" = 2)"#, "a tag key must not be empty"),
            ("tags = 1", "expected a parenthesized list: `tags(key = value, ...)`"),
            ("tags(a = 1, a = 2)", "tag `a` is set twice"),
            ("tags(a = 1), args(a)", "tag `a` is set twice"),
            ("args(1)", "expected a parameter name"),
            ("ret(Debug)", "expected `ret(?)` (record with Debug) or `ret(%)`"),
            ("err(?x)", "expected `err(?)`"),
            ("kind = server2", "unknown span kind `server2`"),
            ("kind", "expected a span kind"),
            ("root = true", "`root` takes no value"),
            ("follows_from(x)", "`follows_from` takes no value"),
            ("root, follows_from", "`root` and `follows_from` cannot be used together"),
            ("\"x\"", "expected an argument: one of name, tags"),
            ("root follows_from", "expected `,`"),
        ];
        for (args, expected) in cases {
            let message = error(args);
            assert!(
                message.starts_with(expected),
                "`{args}`: got {message:?}, expected it to start with {expected:?}"
            );
        }
    }
}
