//! A bound on nesting, checked on the text before any parser sees it.
//!
//! The YAML parser reads a whole document into events before serde looks at it, and deeply
//! nested input is slow there (100 000 nested flow sequences take half a minute). An
//! `EncryptionConfiguration` nests about 8 levels deep, so [`exceeds`] refuses anything deeper
//! than [`MAX_DEPTH`](super::MAX_DEPTH) after one linear scan.
//!
//! The scan over-estimates rather than misses: it counts every flow collection (`[`, `{`) and
//! every block level (a deeper indentation, each `- ` or `? ` indicator) that is open at once,
//! skipping quoted scalars, comments and block scalars (`|`, `>`). It works for JSON too (JSON is
//! flow YAML).

/// The 1-based line where nesting first goes deeper than `limit`, if it does.
pub(crate) fn exceeds(text: &str, limit: usize) -> Option<usize> {
    let mut scan = Scan {
        limit,
        flow: 0,
        quote: None,
        indents: Vec::new(),
        block_scalar: None,
    };
    for (n, line) in text.split('\n').enumerate() {
        if scan.line(line.strip_suffix('\r').unwrap_or(line)) {
            return Some(n + 1);
        }
    }
    None
}

struct Scan {
    limit: usize,
    /// Open flow collections.
    flow: usize,
    /// Inside a quoted scalar that goes on to the next line.
    quote: Option<char>,
    /// Columns of the open block levels.
    indents: Vec<usize>,
    /// Inside a block scalar whose parent line is indented this much: more indented lines are
    /// its content.
    block_scalar: Option<usize>,
}

impl Scan {
    /// Scans one line; true when the limit is exceeded.
    fn line(&mut self, line: &str) -> bool {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = &line[indent..];
        if let Some(parent) = self.block_scalar {
            if content.trim().is_empty() || indent > parent {
                return false;
            }
            self.block_scalar = None;
        }
        let mut rest = content;
        if self.flow == 0 && self.quote.is_none() {
            if rest.trim().is_empty() || rest.starts_with('#') {
                return false;
            }
            // Block levels: this line's column, then one per `- ` / `? ` indicator on it.
            while self.indents.last().is_some_and(|&top| top > indent) {
                self.indents.pop();
            }
            let mut column = indent;
            loop {
                if self.indents.last() != Some(&column) {
                    self.indents.push(column);
                }
                let Some(after) = rest
                    .strip_prefix("- ")
                    .or_else(|| rest.strip_prefix("? "))
                    .or_else(|| (rest == "-").then_some(""))
                else {
                    break;
                };
                let inner = after.trim_start_matches(' ');
                column += rest.len() - inner.len();
                rest = inner;
                if self.depth() > self.limit {
                    return true;
                }
                if rest.is_empty() {
                    break;
                }
            }
            if self.depth() > self.limit {
                return true;
            }
        }
        self.inline(rest, indent)
    }

    fn depth(&self) -> usize {
        self.indents.len() + self.flow
    }

    /// Flow collections and quotes within a line; true when the limit is exceeded.
    fn inline(&mut self, text: &str, indent: usize) -> bool {
        // Whether the next character starts a node (so `[`, `{`, `"` and `'` open something
        // there rather than being part of a plain scalar).
        let mut at_start = true;
        let mut chars = text.chars().peekable();
        let mut previous = ' ';
        while let Some(c) = chars.next() {
            if let Some(q) = self.quote {
                if c == '\\' && q == '"' {
                    chars.next();
                } else if c == q {
                    if q == '\'' && chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        self.quote = None;
                    }
                }
                previous = c;
                at_start = false;
                continue;
            }
            match c {
                '#' if previous == ' ' || previous == '\t' => return false,
                '"' | '\'' if at_start || (self.flow > 0 && "[{,:".contains(previous)) => {
                    self.quote = Some(c);
                }
                '[' | '{' if at_start || self.flow > 0 => {
                    self.flow += 1;
                    if self.depth() > self.limit {
                        return true;
                    }
                    at_start = true;
                    previous = c;
                    continue;
                }
                ']' | '}' if self.flow > 0 => self.flow -= 1,
                '|' | '>' if at_start && self.flow == 0 => {
                    // A block scalar: what follows on this line is its header.
                    self.block_scalar = Some(indent);
                    return false;
                }
                _ => {}
            }
            at_start = match c {
                ' ' | '\t' => at_start || ":-?,".contains(previous),
                ',' => self.flow > 0,
                _ => false,
            };
            previous = c;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::exceeds;

    #[test]
    fn configurations_pass() {
        let yaml = include_str!("../../tests/fixtures/configs/obot-kms.yaml");
        assert_eq!(exceeds(yaml, 12), None);
        let json = include_str!("../../tests/fixtures/configs/obot-kms.json");
        assert_eq!(exceeds(json, 12), None);
        // Brackets, quotes and comments inside scalars do not nest.
        let text = "a: 'x [[[['\nb: \"[[[[\\\" {{{\"\nc: plain[[[[\nd: # [[[[\ne: |\n  [[[[\n    [[[[\nf: [x, '[[[[', \"{{\"]\n";
        assert_eq!(exceeds(text, 3), None, "{text}");
    }

    #[test]
    fn deep_nesting_is_found_early() {
        for (text, line) in [
            ("[".repeat(100_000), 1),
            (format!("a:\n  b: {}", "{x: ".repeat(100)), 2),
            ("- ".repeat(100_000), 1),
            (
                (0..40)
                    .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                    .collect::<String>(),
                33,
            ),
            (format!("a: [{}]", "[".repeat(40)), 1),
        ] {
            assert_eq!(
                exceeds(&text, 32),
                Some(line),
                "{}",
                &text[..text.len().min(80)]
            );
        }
        // At the limit passes (the line itself is one level), one more does not.
        assert_eq!(exceeds(&"[".repeat(31), 32), None);
        assert_eq!(exceeds(&"[".repeat(32), 32), Some(1));
    }
}
