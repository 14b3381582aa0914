//! Parser messages without the values they quote.
//!
//! serde describes what it found where something else was expected by quoting it:
//! `invalid type: string "c2VjcmV0...", expected struct RawConfig`, `integer `42``,
//! `unknown field `c2VjcmV0...``. In a configuration file that value can be a key (a base64
//! secret given as the whole file, as the value of `keys:`, as a bare list item) or the content
//! of whatever file was passed by mistake (a key file, a password file). [`scrub`] rewrites such a
//! message so that the value is described by its type and length only, keeping what was expected
//! and where (line and column).
//!
//! What it replaces, wherever it occurs (serde's `Unexpected` and field messages, the same for
//! serde_json and serde_norway):
//! - `string "…"` (Debug-escaped) → `a string of N characters`;
//! - ``integer `…` ``, ``floating point `…` ``, ``boolean `…` ``, ``character `…` `` →
//!   `an integer`, `a number`, `a boolean`, `a character`;
//! - ``unknown field `…` `` and ``unknown variant `…` `` → the name is kept only when it is short
//!   and looks like an identifier (a typo such as `aesgmc` is worth showing; no 16-byte key fits
//!   in 20 base64 characters), otherwise `an unknown field of N characters (not shown)`.

/// A name shown in an `unknown field` message: at most this many characters.
const SHOWN_NAME_MAX: usize = 20;

/// The message with every quoted input value replaced by a description (see the module docs).
pub(crate) fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let next = MARKERS
            .iter()
            .filter_map(|m| rest.find(m.text).map(|at| (at, m)))
            .min_by_key(|(at, _)| *at);
        let Some((at, marker)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let after = &rest[at + marker.text.len()..];
        rest = match marker.kind {
            Quoted::DebugString => {
                let (len, tail) = debug_string(after);
                out.push_str(&format!("a string of {len} characters"));
                tail
            }
            Quoted::Backticks(description) => {
                out.push_str(description);
                after.find('`').map_or("", |end| &after[end + 1..])
            }
            Quoted::Character => {
                out.push_str("a character");
                // One character, then the closing backtick (the character may itself be one).
                let mut chars = after.chars();
                chars.next();
                chars.as_str().strip_prefix('`').unwrap_or(chars.as_str())
            }
            Quoted::Name(what) => {
                let (name, tail) = name(after);
                if shown(name, tail) {
                    out.push_str(&format!("unknown {what} `{name}`"));
                } else {
                    out.push_str(&format!(
                        "an unknown {what} of {} characters (not shown)",
                        name.chars().count()
                    ));
                }
                tail
            }
        };
    }
}

/// How a marker's value is quoted.
#[derive(Clone, Copy)]
enum Quoted {
    /// `"…"` with Rust Debug escapes.
    DebugString,
    /// `` `…` `` with a value that holds no backtick (a number, a boolean); the description.
    Backticks(&'static str),
    /// `` `c` ``: exactly one character.
    Character,
    /// `` `…` `` around a field or variant name, which may hold anything.
    Name(&'static str),
}

struct Marker {
    text: &'static str,
    kind: Quoted,
}

const MARKERS: &[Marker] = &[
    Marker {
        text: "string \"",
        kind: Quoted::DebugString,
    },
    Marker {
        text: "integer `",
        kind: Quoted::Backticks("an integer"),
    },
    Marker {
        text: "floating point `",
        kind: Quoted::Backticks("a number"),
    },
    Marker {
        text: "boolean `",
        kind: Quoted::Backticks("a boolean"),
    },
    Marker {
        text: "character `",
        kind: Quoted::Character,
    },
    Marker {
        text: "unknown field `",
        kind: Quoted::Name("field"),
    },
    Marker {
        text: "unknown variant `",
        kind: Quoted::Name("variant"),
    },
];

/// After an opening `"`: the number of characters up to the closing quote (an escape counts as
/// one), and what follows that quote.
fn debug_string(s: &str) -> (usize, &str) {
    let mut count = 0;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (count, &s[i + 1..]),
            '\\' => {
                // `\u{…}` is one character too.
                if let Some((_, 'u')) = chars.next() {
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
        count += 1;
    }
    (count, "")
}

/// After ``unknown field ` ``: the name and what follows its closing backtick. serde writes
/// ``unknown field `NAME`, expected …`` or ``…`, there are no fields``; the name may hold
/// backticks, the rest of the message (the expected names, a position) never holds these
/// endings, so the last one ends the name.
fn name(s: &str) -> (&str, &str) {
    let end = ["`, expected ", "`, there are no "]
        .iter()
        .filter_map(|ending| s.rfind(ending))
        .max();
    match end {
        Some(end) => (&s[..end], &s[end + 1..]),
        // Unknown shape: take everything up to the last backtick, or all of it.
        None => match s.rfind('`') {
            Some(end) => (&s[..end], &s[end + 1..]),
            None => (s, ""),
        },
    }
}

/// Whether a name can be shown: short, made of identifier characters, and a near miss (at most
/// two edits) of one of the names the message says were expected (`tail`: ``, expected `a` or
/// `b` …``). A typo such as `aesgmc` is worth showing; a fragment of a key is far from every
/// expected name, however short it is, and is never shown.
fn shown(name: &str, tail: &str) -> bool {
    let plausible = !name.is_empty()
        && name.chars().count() <= SHOWN_NAME_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    plausible && expected_names(tail).any(|e| edit_distance(name, e) <= 2)
}

/// The backticked names after ``, expected `` in the rest of a serde message.
fn expected_names(tail: &str) -> impl Iterator<Item = &str> {
    let list = tail
        .strip_prefix(", expected ")
        .map_or("", |l| l.split(" at line ").next().unwrap_or(l));
    list.split('`').skip(1).step_by(2)
}

/// Levenshtein distance of two short ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn quoted_values_are_described() {
        for (message, expected) in [
            (
                r#"invalid type: string "c2VjcmV0IGlz\"IHNl\\Y3VyZQ==", expected struct RawConfig at line 1 column 1"#,
                "invalid type: a string of 26 characters, expected struct RawConfig at line 1 column 1",
            ),
            (
                r#"resources[0]: invalid type: string "a\u{1f}b\nc", expected a sequence at line 3 column 5"#,
                "resources[0]: invalid type: a string of 5 characters, expected a sequence at line 3 column 5",
            ),
            (
                "invalid type: integer `918273645546372819`, expected a string at line 2 column 9",
                "invalid type: an integer, expected a string at line 2 column 9",
            ),
            (
                "invalid type: floating point `1.5`, expected a map",
                "invalid type: a number, expected a map",
            ),
            (
                "invalid type: boolean `true`, expected a map",
                "invalid type: a boolean, expected a map",
            ),
            (
                "invalid type: character ```, expected a map",
                "invalid type: a character, expected a map",
            ),
            (
                "unknown field `aesgmc`, expected one of `aesgcm`, `aescbc` at line 4 column 9",
                "unknown field `aesgmc`, expected one of `aesgcm`, `aescbc` at line 4 column 9",
            ),
            (
                "unknown field `c2VjcmV0IGlzIHNlY3VyZSwgSSB0aGluayBzbyEhISE=`, expected `name` or `secret`",
                "an unknown field of 44 characters (not shown), expected `name` or `secret`",
            ),
            (
                // A fragment of a key short enough to look like a name: far from every
                // expected name, so not shown (found by the config fuzz target).
                "unknown field `c0VDUmV09WNhbmFyeS1`, expected `name` or `secret` at line 5 column 101",
                "an unknown field of 19 characters (not shown), expected `name` or `secret` at line 5 column 101",
            ),
            (
                "unknown variant `identiy`, expected one of `aesgcm`, `identity`, `kms`",
                "unknown variant `identiy`, expected one of `aesgcm`, `identity`, `kms`",
            ),
            (
                "unknown field `a`, expected `b`, c`, there are no fields at line 1 column 2",
                "an unknown field of 19 characters (not shown), there are no fields at line 1 column 2",
            ),
            (
                "did not find expected key at line 2 column 1, while parsing a block mapping",
                "did not find expected key at line 2 column 1, while parsing a block mapping",
            ),
        ] {
            assert_eq!(scrub(message), expected, "{message}");
        }
    }

    #[test]
    fn a_marker_inside_a_quoted_string_is_part_of_it() {
        let message =
            r#"invalid type: string "x integer `SECRET` unknown field `SECRET`", expected a map"#;
        let scrubbed = scrub(message);
        assert!(!scrubbed.contains("SECRET"), "{scrubbed}");
        assert_eq!(
            scrubbed,
            "invalid type: a string of 41 characters, expected a map"
        );
    }
}
