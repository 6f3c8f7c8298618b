//! Where keys are in the file, so that a refusal can carry its dotted key and line.

use super::ConfigProblem;

/// A step on the way to a key: a table name or an index into an array of tables.
#[derive(Clone, Copy)]
pub(super) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Finds where keys are in the file, from the TOML parser's spans, so that an error can name the
/// line without repeating the value.
pub(super) struct Locator<'a> {
    text: &'a str,
    doc: Option<toml_edit::ImDocument<&'a str>>,
}

impl<'a> Locator<'a> {
    pub(super) fn new(text: &'a str) -> Locator<'a> {
        Locator { text, doc: toml_edit::ImDocument::parse(text).ok() }
    }

    pub(super) fn line(&self, path: &[Seg]) -> Option<usize> {
        let mut item = self.doc.as_ref()?.as_item();
        let mut table_in_array: Option<&toml_edit::Table> = None;
        for seg in path {
            match *seg {
                Seg::Key(k) => {
                    item = match table_in_array.take() {
                        Some(t) => t.get(k)?,
                        None => item.get(k)?,
                    }
                }
                Seg::Index(i) => table_in_array = Some(item.as_array_of_tables()?.get(i)?),
            }
        }
        let span = match table_in_array {
            Some(t) => t.span()?,
            None => item.span()?,
        };
        Some(line_of_offset(self.text, span.start))
    }

    /// " (line N)", or "" when the key is not in the file (a default).
    pub(super) fn at_line(&self, path: &[Seg]) -> String {
        self.line(path).map(|n| format!(" (line {n})")).unwrap_or_default()
    }

    /// `connections[0].entities[1].page_size (line 14)`: the key as the error names it.
    pub(super) fn key(&self, table: &[Seg], key: &str) -> String {
        let path = [table, &[Seg::Key(key)]].concat();
        format!("{}{}", dotted(table, key), self.at_line(&path))
    }

    /// A refusal of `key` in `table`, carrying the key and its line.
    pub(super) fn problem(&self, table: &[Seg], key: &str, message: String) -> ConfigProblem {
        let line = self.line(&[table, &[Seg::Key(key)]].concat());
        ConfigProblem { key: Some(dotted(table, key)), line, message }
    }

    /// The dotted key written on 1-based `line`, for what the TOML parser and the secret scan
    /// report by position only.
    pub(super) fn key_at_line(&self, line: usize) -> Option<String> {
        self.key_lines().into_iter().find(|(_, l)| *l == line).map(|(key, _)| key)
    }

    /// Every key written in the file, dotted, with its 1-based line, in the order of the file.
    pub(super) fn key_lines(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        if let Some(doc) = self.doc.as_ref() {
            self.collect_keys(doc.as_table(), &mut Vec::new(), &mut out);
        }
        out
    }

    fn collect_keys<'d>(&self, table: &'d toml_edit::Table, path: &mut Vec<Seg<'d>>, out: &mut Vec<(String, usize)>) {
        for (k, item) in table.iter() {
            match item {
                toml_edit::Item::Table(t) => {
                    path.push(Seg::Key(k));
                    self.collect_keys(t, path, out);
                    path.pop();
                }
                toml_edit::Item::ArrayOfTables(a) => {
                    for (i, t) in a.iter().enumerate() {
                        path.extend([Seg::Key(k), Seg::Index(i)]);
                        self.collect_keys(t, path, out);
                        path.truncate(path.len() - 2);
                    }
                }
                _ => {
                    if let Some(line) = table.key(k).and_then(|key| key.span()).map(|s| line_of_offset(self.text, s.start)) {
                        out.push((dotted(path, k), line));
                    }
                }
            }
        }
    }
}

/// `connections[0].entities[1].page_size`: `connection`, `entity` and `target` tables are named
/// like the fields that hold them.
fn dotted(table: &[Seg], key: &str) -> String {
    let mut name = String::new();
    for seg in table {
        match *seg {
            Seg::Key(k) => {
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(match k {
                    "connection" => "connections",
                    "entity" => "entities",
                    "target" => "targets",
                    other => other,
                });
            }
            Seg::Index(i) => name.push_str(&format!("[{i}]")),
        }
    }
    if name.is_empty() {
        key.to_string()
    } else {
        format!("{name}.{key}")
    }
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// A TOML or type error as "line N: `key`: reason", built from the error's span: the parser's
/// own display quotes the source line, and with it a value that may be a secret.
pub(super) fn toml_error(at: &Locator, e: &toml::de::Error) -> ConfigProblem {
    let text = at.text;
    let message = e.message().trim_end();
    // serde names the value in "invalid type: string \"…\", expected …": keep what was expected.
    let reason = match message.split_once(", expected ") {
        Some((head, expected)) if head.starts_with("invalid type") || head.starts_with("invalid value") => {
            format!("wrong kind of value: expected {expected}")
        }
        Some((head, expected)) if head.starts_with("unknown variant") => format!("unknown value: expected {expected}"),
        _ => message.to_string(),
    };
    let Some(span) = e.span() else { return ConfigProblem::unplaced(reason) };
    let n = line_of_offset(text, span.start);
    let line = text.lines().nth(n - 1).unwrap_or("");
    let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches(['"', '\''])).filter(|k| !k.is_empty() && !k.starts_with('['));
    let message = match key {
        Some(k) if !reason.contains(&format!("`{k}`")) => format!("line {n}: `{k}`: {reason}"),
        _ => format!("line {n}: {reason}"),
    };
    ConfigProblem { key: at.key_at_line(n), line: Some(n), message }
}
