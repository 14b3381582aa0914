//! Resource names and the Kubernetes wildcards.

/// A `resources` pattern: an exact group-resource (`users.obot.obot.ai`, `credentials`), all
/// resources of a group (`*.obot.obot.ai`; `*.` for the core group) or everything (`*.*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourcePattern {
    text: String,
}

/// The group of a group-resource: what follows the first `.`, or `""` for the core group.
pub(crate) fn group_of(resource: &str) -> &str {
    resource.split_once('.').map_or("", |(_, group)| group)
}

impl ResourcePattern {
    /// Parses a pattern.
    ///
    /// # Errors
    /// A reason when the name is empty, has spaces or upper case, or uses `*` other than as
    /// `*.<group>`, `*.` or `*.*`.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err("expected a resource such as \"users.obot.obot.ai\", found an empty name");
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_ascii_uppercase())
        {
            return Err("resource names are lower case without spaces");
        }
        if text.contains('*') {
            let valid = text == "*.*" || (text.starts_with("*.") && !text[2..].contains('*'));
            if !valid {
                return Err(
                    "wildcards must be \"*.*\" (all), \"*.<group>\" or \"*.\" (core group)",
                );
            }
        }
        Ok(Self {
            text: text.to_owned(),
        })
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when this is a wildcard.
    #[must_use]
    pub fn is_wildcard(&self) -> bool {
        self.text.starts_with("*.")
    }

    /// Does the pattern apply to this group-resource?
    ///
    /// ```
    /// use encrypted_core::config::ResourcePattern;
    /// let p = ResourcePattern::parse("*.obot.obot.ai").unwrap();
    /// assert!(p.matches("users.obot.obot.ai"));
    /// assert!(!p.matches("credentials"));
    /// assert!(ResourcePattern::parse("*.").unwrap().matches("credentials"));
    /// assert!(ResourcePattern::parse("*.*").unwrap().matches("anything.at.all"));
    /// ```
    #[must_use]
    pub fn matches(&self, resource: &str) -> bool {
        match self.text.as_str() {
            "*.*" => true,
            t => match t.strip_prefix("*.") {
                Some(group) => group_of(resource) == group,
                None => t == resource,
            },
        }
    }

    /// What the pattern matches, by group.
    pub(crate) fn group(&self) -> Group<'_> {
        match self.text.as_str() {
            "*.*" => Group::All,
            t => match t.strip_prefix("*.") {
                Some(group) => Group::Wildcard(group),
                None => Group::Exact(group_of(t)),
            },
        }
    }

    /// True when every resource `other` matches is already matched by `self` (and they differ):
    /// the reference the indexed check in `validate` is tested against.
    #[cfg(test)]
    pub(crate) fn covers(&self, other: &Self) -> bool {
        if self.text == other.text || !self.is_wildcard() {
            return false;
        }
        if self.text == "*.*" {
            return true;
        }
        if other.is_wildcard() {
            return false;
        }
        self.matches(&other.text)
    }
}

/// What a [`ResourcePattern`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group<'a> {
    /// `*.*`: everything.
    All,
    /// `*.<group>` (`""` for `*.`): every resource of the group.
    Wildcard(&'a str),
    /// One resource, of this group.
    Exact(&'a str),
}

impl std::fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}
