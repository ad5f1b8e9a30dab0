//! Reading a file into its sections while collecting every problem at once:
//! unknown keys (with the closest accepted key), values of the wrong type,
//! and, afterwards, what validation finds (OP11).
//!
//! No problem quotes a value written in the file: the line a problem points
//! at may hold a secret written where a reference belongs.
use super::{
    CcaiFile, ClickToCallFile, ConfigError, FileConfig, KustomerFile, PipelineFile, SecretTable,
    ServerFile, StatusSyncFile, StoreFile, TenantFile,
};
use crate::runtime::RuntimeConfig;
use serde::de::DeserializeOwned;
use std::ops::Range;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// One problem of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// TOML path of the key at fault, e.g. `tenant[0].kustomer.api_key`.
    pub key: Option<String>,
    /// Line and column (from 1) the problem points at, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong; never the value written in the file.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.key, self.position) {
            (Some(key), Some((line, column))) => {
                write!(f, "{key} (line {line}, column {column}): ")?
            }
            (Some(key), None) => write!(f, "{key}: ")?,
            (None, Some((line, column))) => write!(f, "line {line}, column {column}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

/// The problems found so far, with the parsed document to place them.
pub(super) struct Report<'i> {
    text: &'i str,
    doc: Option<Spanned<DeTable<'i>>>,
    problems: Vec<(Option<Range<usize>>, Problem)>,
}

impl<'i> Report<'i> {
    /// Whether nothing is wrong so far.
    pub(super) fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Adds a validation error, placed at the key it names when the file
    /// has it.
    pub(super) fn add(&mut self, error: ConfigError) {
        match error {
            ConfigError::Invalid { key, message } => {
                let span = self.doc.as_ref().and_then(|doc| locate(doc, &key));
                let message = match span.as_ref() {
                    Some(span) => scrub(self.text, span, &message),
                    None => message,
                };
                self.push(span, Some(key), message);
            }
            ConfigError::Problems { problems, .. } => {
                for problem in problems {
                    self.problems.push((None, problem));
                }
            }
            other => self.push(None, None, other.to_string()),
        }
    }

    fn push(&mut self, span: Option<Range<usize>>, key: Option<String>, message: String) {
        let position = span.as_ref().map(|s| line_column(self.text, s.start));
        let problem = Problem {
            key,
            position,
            message,
        };
        if !self.problems.iter().any(|(_, p)| *p == problem) {
            self.problems.push((span, problem));
        }
    }

    /// The problems in the order of the file; those not placed last.
    pub(super) fn into_problems(mut self) -> Vec<Problem> {
        self.problems
            .sort_by_key(|(span, _)| span.as_ref().map_or(usize::MAX, |s| s.start));
        self.problems.into_iter().map(|(_, p)| p).collect()
    }
}

/// Parses `text` and deserializes each section on its own, so that one bad
/// section does not hide the problems of another.
pub(super) fn read(text: &str) -> (FileConfig, Report<'_>) {
    let mut report = Report {
        text,
        doc: None,
        problems: Vec::new(),
    };
    let mut sections = FileConfig {
        server: None,
        pipeline: None,
        runtime: None,
        store: None,
        tenants: Vec::new(),
    };
    let (doc, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        // A syntax error: what follows it cannot be trusted.
        for e in errors {
            report.push(e.span(), None, toml_message(text, &e));
        }
        return (sections, report);
    }
    report.doc = Some(doc.clone());
    let mut root = doc.into_inner();
    strip_unknown(&mut root, &file_shape(), "", &mut report);

    let mut section = |name: &str| root.remove(name);
    match section("server") {
        Some(v) => sections.server = deserialize(v, "server", &mut report),
        None => sections.server = Some(ServerFile::default()),
    }
    match section("pipeline") {
        Some(v) => sections.pipeline = deserialize(v, "pipeline", &mut report),
        None => sections.pipeline = Some(PipelineFile::default()),
    }
    match section("store") {
        Some(v) => sections.store = deserialize(v, "store", &mut report),
        None => sections.store = Some(StoreFile::default()),
    }
    match section("runtime") {
        Some(v) => sections.runtime = deserialize(v, "runtime", &mut report),
        None => sections.runtime = Some(RuntimeConfig::default()),
    }
    match section("tenant").map(Spanned::into_inner) {
        None => {}
        Some(DeValue::Array(tenants)) => {
            for (i, tenant) in tenants.into_iter().enumerate() {
                sections.tenants.push(read_tenant(tenant, i, &mut report));
            }
        }
        Some(_) => {
            let span = report.doc.as_ref().and_then(|doc| locate(doc, "tenant"));
            report.push(
                span,
                Some("tenant".into()),
                "write each tenant as a `[[tenant]]` table".into(),
            );
        }
    }
    (sections, report)
}

/// One `[[tenant]]`: its sub-tables are checked on their own first, so a
/// problem in one does not hide those of another.
fn read_tenant(
    tenant: Spanned<DeValue<'_>>,
    i: usize,
    report: &mut Report<'_>,
) -> Option<TenantFile> {
    let path = format!("tenant[{i}]");
    if let DeValue::Table(table) = tenant.get_ref() {
        let sub = |name: &str| table.get(name).cloned();
        let at = |name: &str| format!("{path}.{name}");
        if let Some(v) = sub("kustomer") {
            deserialize::<KustomerFile>(v, &at("kustomer"), report);
        }
        if let Some(v) = sub("ccai") {
            deserialize::<CcaiFile>(v, &at("ccai"), report);
        }
        if let Some(v) = sub("status_sync") {
            deserialize::<StatusSyncFile>(v, &at("status_sync"), report);
        }
        if let Some(v) = sub("click_to_call") {
            deserialize::<ClickToCallFile>(v, &at("click_to_call"), report);
        }
    }
    deserialize(tenant, &path, report)
}

/// Deserializes one section. On a problem, the key at fault is recorded,
/// taken out and the rest tried again, until what is left deserializes or
/// only the keys taken out are missing.
fn deserialize<T: DeserializeOwned>(
    mut value: Spanned<DeValue<'_>>,
    path: &str,
    report: &mut Report<'_>,
) -> Option<T> {
    let mut removed: Vec<String> = Vec::new();
    loop {
        let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(section) if removed.is_empty() => return Some(section),
            Ok(_) => return None,
            Err(e) => e,
        };
        let message = error.message().trim_end();
        let span = error.span();
        let missing = backticked(message, "missing field `");
        let nested = span.as_ref().is_some_and(|s| *s != value.span());
        if let (Some(field), false) = (missing, nested) {
            if !removed.iter().any(|r| r == field) {
                report.push(Some(value.span()), Some(join(path, field)), message.into());
            }
            return None;
        }
        let mut key_path = span
            .as_ref()
            .and_then(|s| path_at(&value, path, s))
            .unwrap_or_else(|| path.to_string());
        if let Some(field) = missing {
            key_path = join(&key_path, field);
        }
        let message = match span.as_ref() {
            Some(span) => scrub(report.text, span, &plain_serde_message(message)),
            None => plain_serde_message(message),
        };
        report.push(span.clone(), Some(key_path), message);
        // Take out the key at fault and try the rest.
        let DeValue::Table(table) = value.get_mut() else {
            return None;
        };
        let at_fault = span.and_then(|span| {
            table
                .iter()
                .find(|(k, v)| {
                    contains(&k.span(), &span)
                        || contains(&v.span(), &span)
                        || path_at(v, "", &span).is_some()
                })
                .map(|(k, _)| k.get_ref().to_string())
        });
        match at_fault {
            Some(key) => {
                table.remove(key.as_str());
                removed.push(key);
            }
            None => return None,
        }
    }
}

// ------------------------------------------------------------- unknown keys

/// The keys a table accepts, taken from the struct it is deserialized into,
/// and the nested tables among them.
pub(super) struct Shape {
    pub(super) keys: &'static [&'static str],
    pub(super) nested: Vec<(&'static str, Nested)>,
}

/// A nested table of a [`Shape`].
pub(super) enum Nested {
    /// One table (or inline table).
    Table(Shape),
    /// An array of tables (`[[tenant]]`).
    Tables(Shape),
}

fn shape<T: DeserializeOwned>(nested: Vec<(&'static str, Nested)>) -> Shape {
    Shape {
        keys: fields_of::<T>(),
        nested,
    }
}

fn secret() -> Nested {
    Nested::Table(shape::<SecretTable>(Vec::new()))
}

/// The keys of the whole file. Maps with keys of the operator's choosing
/// (`field_mapping`, `options`, the status maps) are not listed: any key
/// goes there.
pub(super) fn file_shape() -> Shape {
    let secrets = |names: &[&'static str]| names.iter().map(|n| (*n, secret())).collect();
    Shape {
        keys: fields_of::<FileConfig>(),
        nested: vec![
            (
                "server",
                Nested::Table(shape::<ServerFile>(secrets(&["admin_token"]))),
            ),
            ("pipeline", Nested::Table(shape::<PipelineFile>(Vec::new()))),
            ("runtime", Nested::Table(shape::<RuntimeConfig>(Vec::new()))),
            (
                "store",
                Nested::Table(shape::<StoreFile>(secrets(&["url"]))),
            ),
            (
                "tenant",
                Nested::Tables(shape::<TenantFile>(vec![
                    (
                        "kustomer",
                        Nested::Table(shape::<KustomerFile>(secrets(&[
                            "api_key",
                            "webhook_token",
                        ]))),
                    ),
                    (
                        "ccai",
                        Nested::Table(shape::<CcaiFile>(secrets(&[
                            "api_token",
                            "company_secret",
                            "events_password",
                            "webhook_primary_secret",
                            "webhook_secondary_secret",
                        ]))),
                    ),
                    (
                        "status_sync",
                        Nested::Table(shape::<StatusSyncFile>(secrets(&["token"]))),
                    ),
                    (
                        "click_to_call",
                        Nested::Table(shape::<ClickToCallFile>(secrets(&["token"]))),
                    ),
                ])),
            ),
        ],
    }
}

/// Records and removes every key the shape does not accept, in this table
/// and the nested ones.
fn strip_unknown(table: &mut DeTable<'_>, shape: &Shape, path: &str, report: &mut Report<'_>) {
    let unknown: Vec<(String, Range<usize>)> = table
        .iter()
        .filter(|(k, _)| !shape.keys.contains(&k.get_ref().as_ref()))
        .map(|(k, _)| (k.get_ref().to_string(), k.span()))
        .collect();
    for (key, span) in unknown {
        let mut message = format!("unknown field `{key}`");
        match suggest(&key, shape.keys) {
            Some(close) => message.push_str(&format!(", did you mean `{close}`?")),
            None => message.push_str(&format!(", expected {}", one_of(shape.keys))),
        }
        report.push(Some(span), Some(join(path, &key)), message);
        table.remove(key.as_str());
    }
    for (name, nested) in &shape.nested {
        let Some(value) = table.get_mut(*name) else {
            continue;
        };
        let here = join(path, name);
        match (nested, value.get_mut()) {
            (Nested::Table(shape), DeValue::Table(t)) => strip_unknown(t, shape, &here, report),
            (Nested::Tables(shape), DeValue::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    if let DeValue::Table(t) = item.get_mut() {
                        strip_unknown(t, shape, &format!("{here}[{i}]"), report);
                    }
                }
            }
            // A value of the wrong type is reported when it is deserialized.
            _ => {}
        }
    }
}

fn one_of(keys: &[&str]) -> String {
    match keys {
        [] => "no keys here".to_string(),
        [one] => format!("`{one}`"),
        _ => {
            let list: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            format!("one of {}", list.join(", "))
        }
    }
}

/// The accepted key closest to `key`: at most two edits away (one for keys
/// of up to four letters), or one of them starts with the other.
pub(super) fn suggest<'k>(key: &str, accepted: &[&'k str]) -> Option<&'k str> {
    let key = key.to_ascii_lowercase();
    accepted
        .iter()
        .filter_map(|&candidate| {
            let distance = levenshtein(&key, candidate);
            let limit = if key.chars().count() <= 4 { 1 } else { 2 };
            let prefix = key.len() >= 4
                && (candidate.starts_with(key.as_str()) || key.starts_with(candidate));
            (distance <= limit || prefix).then_some((distance, candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edits (insertions, deletions, substitutions) from `a` to `b`.
pub(super) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The keys a struct accepts, as its `Deserialize` implementation names
/// them (renames applied): the same list that refuses unknown keys.
pub(super) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let fields = std::cell::Cell::new(&[][..]);
    // The probe always fails once it has seen the field names.
    let _ = T::deserialize(Probe(&fields));
    fields.get()
}

struct Probe<'a>(&'a std::cell::Cell<&'static [&'static str]>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a struct")
    }
}

impl std::error::Error for Stop {}

impl serde::de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> serde::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.set(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

// ------------------------------------------------------------ placing them

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// The path of the deepest key whose key or value holds `span`. Every
/// table is searched: a `[section]` table's own span is its header only.
fn path_at(value: &Spanned<DeValue<'_>>, path: &str, span: &Range<usize>) -> Option<String> {
    let deeper =
        |child: &Spanned<DeValue<'_>>, here: String, holds: bool| match path_at(child, &here, span)
        {
            Some(found) => Some(found),
            None => holds.then_some(here),
        };
    match value.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(k, v)| {
            let holds = contains(&k.span(), span) || contains(&v.span(), span);
            deeper(v, join(path, k.get_ref()), holds)
        }),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            deeper(item, format!("{path}[{i}]"), contains(&item.span(), span))
        }),
        _ => None,
    }
}

/// Where a key such as `tenant[0].kustomer.api_key` is written: its value.
fn locate(doc: &Spanned<DeTable<'_>>, key: &str) -> Option<Range<usize>> {
    let mut table = doc.get_ref();
    let mut found: Option<&Spanned<DeValue<'_>>> = None;
    for segment in key.split('.') {
        if let Some(DeValue::Table(t)) = found.map(Spanned::get_ref) {
            table = t;
        } else if found.is_some() {
            return None;
        }
        let (name, indices) = match segment.find('[') {
            Some(i) => segment.split_at(i),
            None => (segment, ""),
        };
        let mut value = table.get(name)?;
        for index in indices
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .map(str::parse::<usize>)
        {
            let DeValue::Array(items) = value.get_ref() else {
                return None;
            };
            value = items.get(index.ok()?)?;
        }
        found = Some(value);
    }
    found.map(Spanned::span)
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

// ------------------------------------------------------- never the values

/// The parser's message (without the line it points at, which toml's own
/// display would print).
fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => scrub(text, &span, message),
        None => message.to_string(),
    }
}

/// The text between the first pair of backticks after `prefix`.
fn backticked<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// serde's messages without the value they quote: `invalid type: string
/// "…", expected u64` becomes `invalid type: string, expected u64`; an
/// unknown variant keeps the accepted ones and the closest of them.
fn plain_serde_message(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let kind = rest
                .split(['`', '"', ','])
                .next()
                .unwrap_or_default()
                .trim();
            let expected = rest
                .rfind(", expected ")
                .map_or("", |i| rest.get(i..).unwrap_or_default());
            return format!("{prefix}{kind}{expected}");
        }
    }
    if let Some(variant) = backticked(message, "unknown variant `") {
        let expected = message
            .rfind(", expected ")
            .map_or("", |i| message.get(i..).unwrap_or_default());
        let accepted: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let mut plain = format!("unknown value{expected}");
        if let Some(close) = suggest(variant, &accepted) {
            plain.push_str(&format!("; did you mean `{close}`?"));
        }
        return plain;
    }
    message.to_string()
}

/// `message` without the text written at `span`, nor any string value
/// written there (a secret may sit where a reference belongs).
pub(super) fn scrub(text: &str, span: &Range<usize>, message: &str) -> String {
    let Some(written) = text.get(span.clone()) else {
        return message.to_string();
    };
    let mut values: Vec<String> = vec![written.trim().to_string()];
    if let Ok(value) = DeValue::parse(written) {
        collect_strings(value.get_ref(), &mut values);
    }
    values.retain(|v| v.chars().count() >= 3);
    // Longest first, so a value is not left half-replaced by a shorter one.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut message = message.to_string();
    for value in values {
        let escaped = format!("{value:?}");
        let escaped = escaped.trim_matches('"');
        for written in [value.as_str(), escaped] {
            if message.contains(written) {
                message = message.replace(written, "…");
            }
        }
    }
    message
}

fn collect_strings(value: &DeValue<'_>, into: &mut Vec<String>) {
    match value {
        DeValue::String(s) => into.push(s.to_string()),
        DeValue::Array(items) => items
            .iter()
            .for_each(|i| collect_strings(i.get_ref(), into)),
        // A table is a secret's reference (or a section): its strings name
        // where a value is, which a message may well need to say.
        _ => {}
    }
}
