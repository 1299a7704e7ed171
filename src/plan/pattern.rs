//! Tensor-name patterns for the planner's rules (pin, keep, bit bounds): globs by default,
//! regular expressions after `re:`.
//!
//! - A glob (`*`, `?`, `[abc]`, `{a,b}`; globset syntax) must match the WHOLE name, and `*`
//!   crosses dots: `*.attention.*` matches `encoder.layer.0.attention.self.query.weight`.
//! - `re:REGEX` is a Rust `regex` searched anywhere in the name (add `^…$` to anchor), as
//!   llama-quantize searches its `--tensor-type` patterns.
//!
//! Matching is case-sensitive in both forms (use `re:(?i)…` for the other).

use std::fmt;

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

/// A compiled tensor-name pattern and the text it came from.
#[derive(Debug, Clone)]
pub struct NamePattern {
    text: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    Glob(GlobMatcher),
    Regex(Regex),
}

/// A pattern that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad tensor-name pattern '{pattern}': {message}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// The compiler's message.
    pub message: String,
}

impl NamePattern {
    /// Compiles `text`: `re:REGEX`, else a whole-name glob.
    pub fn new(text: &str) -> Result<NamePattern, PatternError> {
        let error = |message: String| PatternError {
            pattern: text.to_string(),
            message,
        };
        let matcher = match text.strip_prefix("re:") {
            Some(re) => Matcher::Regex(Regex::new(re).map_err(|e| error(e.to_string()))?),
            None => Matcher::Glob(
                GlobBuilder::new(text)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| error(e.kind().to_string()))?
                    .compile_matcher(),
            ),
        };
        Ok(NamePattern {
            text: text.to_string(),
            matcher,
        })
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        match &self.matcher {
            Matcher::Glob(g) => g.is_match(name),
            Matcher::Regex(r) => r.is_match(name),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names_across_dots() {
        let p = NamePattern::new("*.attention.*").expect("valid glob");
        assert!(p.matches("encoder.layer.0.attention.self.query.weight"));
        assert!(!p.matches("encoder.layer.0.intermediate.dense.weight"));
        let exact = NamePattern::new("embeddings.word_embeddings.weight").expect("valid");
        assert!(exact.matches("embeddings.word_embeddings.weight"));
        assert!(!exact.matches("x.embeddings.word_embeddings.weight"));
        let alt = NamePattern::new("*.{query,key}.weight").expect("valid");
        assert!(alt.matches("a.key.weight") && !alt.matches("a.value.weight"));
        let q = NamePattern::new("layer.?.w").expect("valid");
        assert!(q.matches("layer.3.w") && !q.matches("layer.10.w"));
    }

    #[test]
    fn regexes_search_and_report_errors() {
        let p = NamePattern::new(r"re:attn_(q|k)\.").expect("valid regex");
        assert!(p.matches("blk.0.attn_q.weight"));
        assert!(!p.matches("blk.0.attn_v.weight"));
        let anchored = NamePattern::new(r"re:^blk\.1\.").expect("valid");
        assert!(anchored.matches("blk.1.ffn_up.weight") && !anchored.matches("blk.11.x"));
        let e = NamePattern::new("re:(").expect_err("unbalanced");
        assert_eq!(e.pattern, "re:(");
        assert!(NamePattern::new("[").is_err());
        assert_eq!(p.as_str(), r"re:attn_(q|k)\.");
    }
}
