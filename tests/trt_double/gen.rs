//! The stub generator of the TensorRT test double.
//!
//! TensorRT's public classes are thin wrappers whose inline methods call `mImpl->method(...)` on
//! an `apiv::V*` object (NvInferImpl.h) full of pure virtuals, and the ONNX parser is a plain
//! pure-virtual interface (NvOnnxParser.h). Those lists differ between every TensorRT release,
//! so instead of writing them by hand this reads the headers in use and emits, for every class
//! with pure virtuals, a stub subclass overriding each of them: the body records
//! "unexpected call Class::method(types)" and returns a value-initialised result, or aborts when
//! the result cannot be made up (references, types without a default constructor). The
//! hand-written double (cpp/*.cpp) derives from these stubs and implements only what the shim
//! really calls, so any other call fails a test loudly instead of hitting a missing vtable slot.
//!
//! The parser is deliberately small: it understands what these headers contain (namespaces,
//! classes, access labels, conditional directives, inline bodies to skip, one declaration per
//! `;`), drops parameter names and default arguments, keeps qualifiers (`const`, `noexcept`)
//! verbatim and passes `#if`/`#endif` lines through, so a class the header compiles out
//! (`#if !STRIP_TRT_RTX_INTERNAL_API`) is compiled out of the stubs too. Nothing of NVIDIA's
//! text is copied beyond the signatures an override must repeat.

use std::fmt::Write as _;
use std::path::Path;

/// One pure virtual, as an override must spell it.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    /// Return type (attributes and `virtual` removed); empty for a destructor.
    pub ret: String,
    /// Method name, `~Class` for a destructor.
    pub name: String,
    /// Parameter types, names and default arguments removed.
    pub params: Vec<String>,
    /// What follows the parameter list (`const noexcept`, ...), without `= 0`/`override`.
    pub quals: String,
}

impl Method {
    pub fn is_destructor(&self) -> bool {
        self.name.starts_with('~')
    }

    /// `name(type, type)`: what an unexpected call is recorded as (overloads stay apart).
    pub fn signature(&self) -> String {
        format!("{}({})", self.name, self.params.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A conditional directive (`#if`, `#elif`, `#else`, `#endif`, ...), passed through.
    Directive(String),
    Method(Method),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub name: String,
    /// Enclosing namespaces, outermost first.
    pub namespace: Vec<String>,
    /// Base class names as written.
    pub bases: Vec<String>,
    pub items: Vec<Item>,
}

impl Class {
    pub fn methods(&self) -> impl Iterator<Item = &Method> {
        self.items.iter().filter_map(|i| match i {
            Item::Method(m) => Some(m),
            Item::Directive(_) => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Top {
    Directive(String),
    Class(Class),
}

/// The generated header and what went into it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub header: String,
    /// Stub classes emitted.
    pub classes: Vec<String>,
    /// Pure virtuals overridden, over all classes.
    pub methods: usize,
}

// ---------------------------------------------------------------------------------------------
// Lexing helpers

/// `src` without comments; newlines are kept (so directives stay at line starts) and string
/// and character literals are left alone.
pub fn strip_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    if b[i] == b'\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
                i += 2;
                out.push(' ');
            }
            q @ (b'"' | b'\'') => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                out.push_str(&src[start..i]);
            }
            _ => {
                // Copy one whole UTF-8 character.
                let len = src[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&src[i..i + len]);
                i += len;
            }
        }
    }
    // Directive continuation lines become one line.
    out.replace("\\\n", " ")
}

/// Tokens of a declaration: identifiers/numbers, `::`, string literals, single punctuation.
fn tokens(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(s[start..i].to_string());
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push("::".into());
            i += 2;
        } else if c == b'"' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
            out.push(s[start..i].to_string());
        } else {
            let len = s[i..].chars().next().map_or(1, char::len_utf8);
            out.push(s[i..i + len].to_string());
            i += len;
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
}

/// Tokens joined back into C++ (spaces only where two words would otherwise merge).
fn join(toks: &[String]) -> String {
    let mut out = String::new();
    for t in toks {
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if word(out.chars().last()) && word(t.chars().next()) {
            out.push(' ');
        } else if !out.is_empty() && (t == "*" || t == "&") && !out.ends_with(['*', '&', '(']) {
            // `char const*` reads better than `char const *`; no effect on meaning.
        } else if out.ends_with(',') {
            out.push(' ');
        }
        out.push_str(t);
    }
    out
}

/// Macro-like attributes TensorRT puts on declarations (`TRT_DEPRECATED`, `TRT_NODISCARD`,
/// `TENSORRTAPI`, ...) and keywords an override does not repeat.
fn is_decoration(t: &str) -> bool {
    t.starts_with("TRT_")
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        || matches!(t, "TENSORRTAPI" | "virtual" | "inline" | "explicit")
}

/// Drop decorations, `[[...]]` attributes and `MACRO(...)` decorations from a token list.
fn undecorate(toks: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if toks[i] == "[" && toks.get(i + 1).is_some_and(|t| t == "[") {
            // [[attribute]]: skip to the matching ]].
            let mut depth = 0;
            while i < toks.len() {
                match toks[i].as_str() {
                    "[" => depth += 1,
                    "]" => depth -= 1,
                    _ => {}
                }
                i += 1;
                if depth == 0 {
                    break;
                }
            }
            continue;
        }
        if is_decoration(&toks[i]) {
            i += 1;
            if toks.get(i).is_some_and(|t| t == "(") {
                let mut depth = 0;
                while i < toks.len() {
                    match toks[i].as_str() {
                        "(" => depth += 1,
                        ")" => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

/// Split at top-level commas (outside (), <>, [], {}).
fn split_commas(toks: &[String]) -> Vec<Vec<String>> {
    let mut parts = vec![Vec::new()];
    let mut depth = 0i32;
    for t in toks {
        match t.as_str() {
            "(" | "<" | "[" | "{" => depth += 1,
            ")" | ">" | "]" | "}" => depth -= 1,
            "," if depth == 0 => {
                parts.push(Vec::new());
                continue;
            }
            _ => {}
        }
        parts.last_mut().expect("never empty").push(t.clone());
    }
    parts.retain(|p| !p.is_empty());
    parts
}

/// Words that end a type rather than name a parameter.
fn is_type_keyword(t: &str) -> bool {
    matches!(
        t,
        "const"
            | "volatile"
            | "int"
            | "char"
            | "short"
            | "long"
            | "unsigned"
            | "signed"
            | "float"
            | "double"
            | "bool"
            | "void"
            | "auto"
            | "wchar_t"
            | "char16_t"
            | "char32_t"
    )
}

/// A parameter's type: default argument and name removed (`Dims const& dims = {}` ->
/// `Dims const&`, `void* bindings[]` -> `void*[]`, `void (*fn)(int)` -> `void(*)(int)`).
fn param_type(toks: &[String]) -> String {
    let mut t: Vec<String> = toks.to_vec();
    // Default argument: everything from a top-level `=`.
    let mut depth = 0;
    if let Some(eq) = t.iter().position(|x| {
        match x.as_str() {
            "(" | "<" | "[" => depth += 1,
            ")" | ">" | "]" => depth -= 1,
            _ => {}
        }
        depth == 0 && x == "="
    }) {
        t.truncate(eq);
    }
    // Function pointer: `( * name )`.
    if let Some(p) = t
        .windows(4)
        .position(|w| w[0] == "(" && w[1] == "*" && is_ident(&w[2]) && w[3] == ")")
    {
        t.remove(p + 2);
        return join(&t);
    }
    // Array suffix.
    let mut suffix = Vec::new();
    while t.last().is_some_and(|x| x == "]") {
        let open = t.iter().rposition(|x| x == "[").unwrap_or(0);
        let mut tail = t.split_off(open);
        tail.append(&mut suffix);
        suffix = tail;
    }
    let named = t.len() >= 2 && {
        let last = &t[t.len() - 1];
        let before = &t[..t.len() - 1];
        is_ident(last)
            && !is_type_keyword(last)
            && t[t.len() - 2] != "::"
            && before.iter().any(|x| {
                !matches!(
                    x.as_str(),
                    "const" | "volatile" | "struct" | "class" | "enum" | "typename"
                )
            })
    };
    if named {
        t.pop();
    }
    t.extend(suffix);
    join(&t)
}

/// A pure virtual declaration (one statement, `;` removed), or `None` if it is not one.
pub fn parse_pure_virtual(stmt: &str) -> Option<Method> {
    let toks = tokens(stmt);
    if !toks.iter().any(|t| t == "virtual") {
        return None;
    }
    // `= 0` at the end.
    let n = toks.len();
    if n < 3 || toks[n - 1] != "0" || toks[n - 2] != "=" {
        return None;
    }
    let toks = undecorate(&toks[..n - 2]);
    let open = toks.iter().position(|t| t == "(")?;
    let mut depth = 0;
    let close = open
        + toks[open..].iter().position(|t| {
            match t.as_str() {
                "(" => depth += 1,
                ")" => depth -= 1,
                _ => {}
            }
            depth == 0
        })?;
    let name_at = open.checked_sub(1)?;
    if !is_ident(&toks[name_at]) {
        return None; // operators are not in these headers
    }
    let destructor = name_at > 0 && toks[name_at - 1] == "~";
    let name = if destructor {
        format!("~{}", toks[name_at])
    } else {
        toks[name_at].clone()
    };
    let ret_end = if destructor { name_at - 1 } else { name_at };
    let ret = join(&toks[..ret_end]);
    let mut params: Vec<String> = split_commas(&toks[open + 1..close])
        .iter()
        .map(|p| param_type(p))
        .collect();
    if params.len() == 1 && params[0] == "void" {
        params.clear();
    }
    let quals: Vec<String> = toks[close + 1..]
        .iter()
        .filter(|t| !matches!(t.as_str(), "override" | "final"))
        .cloned()
        .collect();
    Some(Method {
        ret,
        name,
        params,
        quals: join(&quals),
    })
}

// ---------------------------------------------------------------------------------------------
// Scanning

struct Scanner<'a> {
    s: &'a str,
    i: usize,
}

fn is_conditional(directive: &str) -> bool {
    let word: String = directive
        .trim_start_matches('#')
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    matches!(
        word.as_str(),
        "if" | "ifdef" | "ifndef" | "elif" | "else" | "endif"
    )
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn at_line_start(&self) -> bool {
        self.s[..self.i]
            .rsplit('\n')
            .next()
            .is_none_or(|l| l.trim().is_empty())
    }

    fn line(&mut self) -> String {
        let rest = &self.s[self.i..];
        let end = rest.find('\n').unwrap_or(rest.len());
        self.i += end;
        rest[..end].trim().to_string()
    }

    /// Text up to a `;` or `{` outside parentheses; returns it and the terminator: `#` when a
    /// directive line starts first (left unread, like an unmatched `}`), None at the end.
    fn head(&mut self) -> (String, Option<u8>) {
        let start = self.i;
        let mut depth = 0i32;
        while let Some(c) = self.peek() {
            match c {
                b'\n' => {
                    let rest = self.s[self.i + 1..].trim_start_matches([' ', '\t']);
                    if rest.starts_with('#') {
                        let text = self.s[start..self.i].to_string();
                        self.i += 1;
                        return (text, Some(b'#'));
                    }
                }
                b'(' => depth += 1,
                b')' => depth -= 1,
                b'"' | b'\'' => {
                    self.i += 1;
                    while self.peek().is_some_and(|x| x != c) {
                        self.i += if self.peek() == Some(b'\\') { 2 } else { 1 };
                    }
                }
                b';' | b'{' if depth == 0 => {
                    let text = self.s[start..self.i].to_string();
                    self.i += 1;
                    return (text, Some(c));
                }
                b'}' if depth == 0 => return (self.s[start..self.i].to_string(), None),
                _ => {}
            }
            self.i += 1;
        }
        (self.s[start..self.i].to_string(), None)
    }

    /// After an opening `{`: the text up to its matching `}` (consumed).
    fn block(&mut self) -> Result<&'a str, String> {
        let start = self.i;
        let mut depth = 1;
        while let Some(c) = self.peek() {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        let body = &self.s[start..self.i];
                        self.i += 1;
                        return Ok(body);
                    }
                }
                b'"' | b'\'' => {
                    self.i += 1;
                    while self.peek().is_some_and(|x| x != c) {
                        self.i += if self.peek() == Some(b'\\') { 2 } else { 1 };
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err(format!("unbalanced braces after byte {start}"))
    }

    /// Consume an optional `;` after a block.
    fn semicolon(&mut self) {
        self.skip_ws();
        if self.peek() == Some(b';') {
            self.i += 1;
        }
    }
}

/// Class name and bases from a class head (`class TRT_DEPRECATED IFoo final : public Bar`).
fn class_head(head: &[String]) -> Option<(String, Vec<String>)> {
    let kw = head.iter().position(|t| t == "class" || t == "struct")?;
    let colon = head.iter().position(|t| t == ":").unwrap_or(head.len());
    let name = undecorate(&head[kw + 1..colon])
        .into_iter()
        .rfind(|t| t != "final" && is_ident(t))?;
    let bases = if colon < head.len() {
        split_commas(&head[colon + 1..])
            .iter()
            .map(|b| {
                let b: Vec<String> = b
                    .iter()
                    .filter(|t| {
                        !matches!(t.as_str(), "public" | "protected" | "private" | "virtual")
                    })
                    .cloned()
                    .collect();
                join(&b)
            })
            .collect()
    } else {
        Vec::new()
    };
    Some((name, bases))
}

/// The items of a class body.
fn class_items(body: &str) -> Result<Vec<Item>, String> {
    let mut sc = Scanner { s: body, i: 0 };
    let mut items = Vec::new();
    loop {
        sc.skip_ws();
        let Some(c) = sc.peek() else { break };
        if c == b'#' && sc.at_line_start() {
            let d = sc.line();
            if is_conditional(&d) {
                items.push(Item::Directive(d));
            }
            continue;
        }
        if c == b'}' {
            return Err("unexpected } in a class body".into());
        }
        let (text, end) = sc.head();
        let mut text = text.trim();
        // Access labels (`public:` but not `public::`).
        loop {
            let mut stripped = false;
            for label in ["public", "protected", "private"] {
                if let Some(rest) = text.strip_prefix(label) {
                    let rest = rest.trim_start();
                    if rest.starts_with(':') && !rest.starts_with("::") {
                        text = rest[1..].trim_start();
                        stripped = true;
                    }
                }
            }
            if !stripped {
                break;
            }
        }
        match end {
            // A directive after an access label (`public:` then `#if`): read it next.
            Some(b'#') if text.is_empty() => {}
            Some(b'#') => return Err(format!("a directive interrupts a declaration: {text:?}")),
            Some(b'{') => {
                // Inline body or nested type: not a pure virtual.
                sc.block()?;
                sc.semicolon();
            }
            Some(_) => {
                if let Some(m) = parse_pure_virtual(text) {
                    items.push(Item::Method(m));
                }
            }
            None => {
                if !text.is_empty() {
                    return Err(format!(
                        "unterminated declaration in a class body: {text:?}"
                    ));
                }
                break;
            }
        }
    }
    Ok(items)
}

/// Every class (and conditional directive between them) defined inside a namespace whose path
/// ends with `target` (e.g. `["nvinfer1", "apiv"]`; anonymous namespaces never match).
pub fn parse_header(src: &str, target: &[&str]) -> Result<Vec<Top>, String> {
    let text = strip_comments(src);
    let mut sc = Scanner { s: &text, i: 0 };
    let mut out = Vec::new();
    let mut ns: Vec<String> = Vec::new();
    // One entry per open block we descend into: Some(number of namespace names it opened),
    // or None for a transparent block (`extern "C" {`).
    let mut scopes: Vec<Option<usize>> = Vec::new();
    let inside = |ns: &[String]| {
        ns.len() >= target.len()
            && ns[ns.len() - target.len()..]
                .iter()
                .zip(target)
                .all(|(a, b)| a == b)
    };
    loop {
        sc.skip_ws();
        let Some(c) = sc.peek() else { break };
        if c == b'#' && sc.at_line_start() {
            let d = sc.line();
            if inside(&ns) && is_conditional(&d) {
                out.push(Top::Directive(d));
            }
            continue;
        }
        if c == b'}' {
            sc.i += 1;
            match scopes.pop() {
                Some(Some(n)) => ns.truncate(ns.len() - n),
                Some(None) => {}
                None => return Err("unbalanced } at namespace level".into()),
            }
            sc.semicolon();
            continue;
        }
        let (head, end) = sc.head();
        let toks = tokens(&head);
        match end {
            Some(b'#') if head.trim().is_empty() => {}
            Some(b'#') => {
                return Err(format!(
                    "a directive interrupts a declaration: {:?}",
                    head.trim()
                ))
            }
            Some(b'{') => {
                let first = toks.iter().position(|t| t != "inline");
                if first.is_some_and(|f| toks[f] == "namespace") {
                    // `namespace a::b {` opens two at once; an anonymous one is "".
                    let mut parts: Vec<String> = toks[first.unwrap_or(0) + 1..]
                        .iter()
                        .filter(|t| *t != "::")
                        .cloned()
                        .collect();
                    if parts.is_empty() {
                        parts.push(String::new());
                    }
                    scopes.push(Some(parts.len()));
                    ns.extend(parts);
                } else if toks.first().is_some_and(|t| t == "extern")
                    && toks.get(1).is_some_and(|t| t.starts_with('"'))
                    && toks.len() == 2
                {
                    scopes.push(None);
                } else if !toks.iter().any(|t| t == "enum")
                    && toks.iter().any(|t| t == "class" || t == "struct")
                    && !toks.iter().any(|t| t == "(")
                {
                    let body = sc.block()?;
                    sc.semicolon();
                    if inside(&ns) {
                        if let Some((name, bases)) = class_head(&toks) {
                            out.push(Top::Class(Class {
                                name,
                                namespace: ns.clone(),
                                bases,
                                items: class_items(body)?,
                            }));
                        }
                    }
                } else {
                    // Function bodies, enums, initialisers.
                    sc.block()?;
                    sc.semicolon();
                }
            }
            Some(_) => {}
            None => {
                if !head.trim().is_empty() {
                    return Err(format!("unterminated declaration: {:?}", head.trim()));
                }
            }
        }
    }
    if !scopes.is_empty() {
        return Err("unclosed namespace at end of header".into());
    }
    Ok(out)
}

/// Whether the declaration of the C function `name` in `texts` says `noexcept`; `None` when
/// no text declares it.
pub fn entry_noexcept(texts: &[String], name: &str) -> Option<bool> {
    for t in texts {
        let t = strip_comments(t);
        let mut from = 0;
        while let Some(at) = t[from..].find(name) {
            let at = from + at;
            from = at + name.len();
            let rest = &t[from..];
            if !rest.trim_start().starts_with('(') {
                continue;
            }
            // A declaration, not a call: the statement starts with `extern` or the type.
            let line_start = t[..at].rfind(['\n', ';', '{', '}']).map_or(0, |p| p + 1);
            let before = t[line_start..at].trim();
            if before.contains("return") || before.is_empty() {
                continue;
            }
            let end = rest.find([';', '{']).unwrap_or(rest.len());
            return Some(tokens(&rest[..end]).iter().any(|x| x == "noexcept"));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Emitting

/// `" quals"`, or nothing when there are none.
fn spaced(quals: &str) -> String {
    if quals.is_empty() {
        String::new()
    } else {
        format!(" {quals}")
    }
}

fn cpp_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Pure virtuals of `class` and of its bases (by name within `all`) that `class` does not
/// override itself, deepest base first.
fn all_methods<'c>(class: &'c Class, all: &'c [Class]) -> Vec<Item> {
    let mut items = Vec::new();
    for base in &class.bases {
        let short = base.rsplit("::").next().unwrap_or(base);
        if let Some(b) = all.iter().find(|c| c.name == short && c.name != class.name) {
            for item in all_methods(b, all) {
                if let Item::Method(m) = &item {
                    let overridden = class.methods().any(|own| {
                        own.name == m.name && own.params == m.params && own.quals == m.quals
                    });
                    if overridden || m.is_destructor() {
                        continue;
                    }
                    items.push(item);
                }
            }
        }
    }
    items.extend(class.items.iter().cloned());
    items
}

fn emit_class(out: &mut String, class: &Class, all: &[Class], original: &str) -> usize {
    let qualified = format!("::{}::{}", class.namespace.join("::"), class.name);
    let items = all_methods(class, all);
    // Stubs are named Stub<Name>: a stub named like its base would shadow the header's class
    // in the signatures of the stubs after it (IParser::getError returns an IParserError*).
    let _ = writeln!(
        out,
        "class Stub{} : public {qualified} {{\npublic:",
        class.name
    );
    let mut n = 0;
    for item in &items {
        match item {
            Item::Directive(d) => {
                let _ = writeln!(out, "{d}");
            }
            Item::Method(m) if m.is_destructor() => {
                let _ = writeln!(
                    out,
                    "    ~Stub{}(){} override {{}}",
                    class.name,
                    spaced(&m.quals)
                );
            }
            Item::Method(m) => {
                n += 1;
                let what = cpp_string(&format!("{}::{}", class.name, m.signature()));
                let _ = writeln!(
                    out,
                    "    {} {}({}){} override {{ return ::trtforge_double::unexpected_return<{}>({what}); }}",
                    m.ret,
                    m.name,
                    m.params.join(", "),
                    spaced(&m.quals),
                    m.ret
                );
            }
        }
    }
    let _ = writeln!(out, "}};");
    // A pure virtual destructor still needs a body for the stub's destructor to call; emit one
    // unless the header defines it (TensorRT 11's public classes do, inline).
    let dtor = format!("{0}::~{0}", class.name);
    if let Some(m) = class.methods().find(|m| m.is_destructor()) {
        if !original.contains(&dtor) {
            out.push_str(&format!("}} // namespace trtforge_stub\ninline {qualified}::~{}(){} {{}}\nnamespace trtforge_stub {{\n", class.name, spaced(&m.quals)));
        }
    }
    n
}

fn emit_group(
    out: &mut String,
    tops: &[Top],
    original: &str,
    gen: &mut Generated,
) -> Result<(), String> {
    let classes: Vec<Class> = tops
        .iter()
        .filter_map(|t| match t {
            Top::Class(c) => Some(c.clone()),
            Top::Directive(_) => None,
        })
        .collect();
    let Some(first) = classes.first() else {
        return Err("no class found".into());
    };
    let ns = first.namespace.clone();
    let mut depth = 0i32;
    for ns_part in &ns {
        let _ = write!(out, "namespace {ns_part} {{ ");
    }
    out.push_str("namespace trtforge_stub {\n");
    for t in tops {
        match t {
            Top::Directive(d) => {
                let word = d.trim_start_matches('#').trim_start();
                if word.starts_with("if") {
                    depth += 1;
                } else if word.starts_with("endif") {
                    depth -= 1;
                }
                let _ = writeln!(out, "{d}");
            }
            Top::Class(c) => {
                if c.namespace != ns {
                    return Err(format!(
                        "class {} is in another namespace than {}",
                        c.name, first.name
                    ));
                }
                if all_methods(c, &classes)
                    .iter()
                    .any(|i| matches!(i, Item::Method(_)))
                {
                    gen.methods += emit_class(out, c, &classes, original);
                    gen.classes
                        .push(format!("{}::trtforge_stub::Stub{}", ns.join("::"), c.name));
                }
            }
        }
    }
    if depth != 0 {
        return Err("conditional directives do not balance inside the namespace".into());
    }
    out.push_str("} // namespace trtforge_stub\n");
    for _ in &ns {
        out.push_str("} ");
    }
    out.push('\n');
    Ok(())
}

/// Stubs for the NvInferImpl.h and NvOnnxParser.h texts given, plus `TRTFORGE_DOUBLE_NOEXCEPT_*`
/// macros saying how each C entry point is declared (`entry_texts`: the headers declaring them).
pub fn generate_from(
    impl_h: &str,
    parser_h: &str,
    entry_texts: &[String],
) -> Result<Generated, String> {
    let mut gen = Generated {
        header: String::new(),
        classes: Vec::new(),
        methods: 0,
    };
    let mut out = String::from(
        "// Generated by tests/trt_double/gen.rs from the TensorRT headers in use: do not edit.\n\
         // One stub per class with pure virtuals; every override records an unexpected call.\n\
         #pragma once\n#include \"support.hpp\"\n\n\
         #pragma GCC diagnostic push\n\
         // Overriding a deprecated virtual is how its vtable slot gets filled.\n\
         #pragma GCC diagnostic ignored \"-Wdeprecated-declarations\"\n\n",
    );
    let impl_tops =
        parse_header(impl_h, &["nvinfer1", "apiv"]).map_err(|e| format!("NvInferImpl.h: {e}"))?;
    emit_group(&mut out, &impl_tops, impl_h, &mut gen)
        .map_err(|e| format!("NvInferImpl.h: {e}"))?;
    let parser_tops =
        parse_header(parser_h, &["nvonnxparser"]).map_err(|e| format!("NvOnnxParser.h: {e}"))?;
    emit_group(&mut out, &parser_tops, parser_h, &mut gen)
        .map_err(|e| format!("NvOnnxParser.h: {e}"))?;
    out.push_str("\n#pragma GCC diagnostic pop\n\n");
    let mut texts = entry_texts.to_vec();
    texts.push(parser_h.to_string());
    for entry in [
        "createInferBuilder_INTERNAL",
        "createInferRuntime_INTERNAL",
        "createNvOnnxParser_INTERNAL",
        "getInferLibVersion",
    ] {
        let ne = entry_noexcept(&texts, entry)
            .ok_or_else(|| format!("no declaration of {entry} found"))?;
        let _ = writeln!(
            out,
            "#define TRTFORGE_DOUBLE_NOEXCEPT_{entry} {}",
            if ne { "noexcept" } else { "" }
        );
    }
    gen.header = out;
    Ok(gen)
}

/// Stubs for the headers in `include` (a TensorRT include folder).
pub fn generate(include: &Path) -> Result<Generated, String> {
    let read = |name: &str| {
        std::fs::read_to_string(include.join(name))
            .map_err(|e| format!("{}: {e}", include.join(name).display()))
    };
    let entry_texts: Vec<String> = [
        "NvInfer.h",
        "NvInferRuntime.h",
        "NvInferRuntimeBase.h",
        "NvInferRuntimeCommon.h",
    ]
    .iter()
    .filter_map(|n| read(n).ok())
    .collect();
    generate_from(
        &read("NvInferImpl.h")?,
        &read("NvOnnxParser.h")?,
        &entry_texts,
    )
}
