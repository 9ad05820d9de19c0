//! A minimal JSON writer for the diagnostics' fixed schemas (reports, traces, dashboard
//! snapshots): strings escaped, numbers finite, no dependency.

use std::fmt::Write as _;

/// JSON text being written. Callers write commas and brackets themselves with [`Json::raw`];
/// values go through the typed methods, which escape and format them.
#[derive(Default)]
pub(crate) struct Json(pub(crate) String);

impl Json {
    pub(crate) fn new() -> Json {
        Json(String::new())
    }

    /// Literal JSON punctuation or an already valid fragment.
    pub(crate) fn raw(&mut self, s: &str) -> &mut Self {
        self.0.push_str(s);
        self
    }

    /// A string, escaped. `<` is written `\u003c` so the text can sit inside an HTML
    /// `<script>` element whatever it holds (`</script>`, `<!--`).
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.0.push('"');
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push_str("\\t"),
                '<' => self.0.push_str("\\u003c"),
                c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
        self
    }

    /// An integer.
    pub(crate) fn int(&mut self, v: impl Into<u128>) -> &mut Self {
        let _ = write!(self.0, "{}", v.into());
        self
    }

    /// A number with up to `digits` decimals (trailing zeros trimmed); `null` if not finite.
    pub(crate) fn num(&mut self, v: f64, digits: usize) -> &mut Self {
        if !v.is_finite() {
            self.0.push_str("null");
            return self;
        }
        let start = self.0.len();
        let _ = write!(self.0, "{v:.digits$}");
        if self.0[start..].contains('.') {
            let trimmed = self.0.trim_end_matches('0').trim_end_matches('.').len();
            self.0.truncate(trimmed);
        }
        if &self.0[start..] == "-0" {
            self.0.truncate(start);
            self.0.push('0');
        }
        self
    }

    /// An optional integer (`null` for `None`).
    pub(crate) fn opt_int(&mut self, v: Option<usize>) -> &mut Self {
        match v {
            Some(v) => self.int(v as u128),
            None => self.raw("null"),
        }
    }

    /// An optional string (`null` for `None`).
    pub(crate) fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(v),
            None => self.raw("null"),
        }
    }

    /// `"name":` — an object key.
    pub(crate) fn key(&mut self, name: &str) -> &mut Self {
        self.str(name).raw(":")
    }

    /// A JSON array of numbers, each with up to `digits` decimals.
    pub(crate) fn nums(&mut self, vs: impl IntoIterator<Item = f64>, digits: usize) -> &mut Self {
        self.raw("[");
        for (i, v) in vs.into_iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.num(v, digits);
        }
        self.raw("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_for_json_inside_html() {
        let mut j = Json::new();
        j.str("a\"b\\c\n</script>\u{1}é");
        assert_eq!(j.0, r#""a\"b\\c\n\u003c/script>\u0001é""#);
    }

    #[test]
    fn numbers_are_trimmed_and_never_nan() {
        let mut j = Json::new();
        j.nums([1.5, 2.0, f64::NAN, -0.0001, 1234.5678], 3);
        assert_eq!(j.0, "[1.5,2,null,0,1234.568]");
    }
}
