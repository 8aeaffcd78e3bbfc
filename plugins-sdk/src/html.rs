//! Building HTML safely.

/// Escapes text for use in HTML element content and in quoted attribute values: `&`,
/// `<`, `>`, `"` and `'` become character references.
///
/// Escape every piece of text that does not come from the plugin's own code (request
/// data, settings, stored values) before putting it into a [`Page`](crate::Page) body.
///
/// ```
/// use lutetia_sdk::html;
///
/// let name = "<script>alert('hi')</script>";
/// let body = format!("<p title=\"{0}\">Bonjour {0}</p>", html::escape(name));
/// assert_eq!(
///     body,
///     "<p title=\"&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt;\">\
///      Bonjour &lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt;</p>"
/// );
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_special_characters() {
        assert_eq!(escape(""), "");
        assert_eq!(escape("Bonjour"), "Bonjour");
        assert_eq!(escape("a & b"), "a &amp; b");
        assert_eq!(escape("<b>"), "&lt;b&gt;");
        assert_eq!(
            escape(r#"say "hi" & 'bye'"#),
            "say &quot;hi&quot; &amp; &#39;bye&#39;"
        );
    }

    #[test]
    fn keeps_unicode_and_does_not_double_escape_by_itself() {
        assert_eq!(escape("Hôtel de Ville — Paris"), "Hôtel de Ville — Paris");
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }
}
