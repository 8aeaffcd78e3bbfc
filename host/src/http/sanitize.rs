//! Plugin HTML is untrusted: pages are cleaned with ammonia before they are wrapped.
//!
//! The allow-list is ammonia's defaults (text formatting, lists, tables, links, images)
//! plus what city forms need (form controls, `class`, `id`, `data-*`, `aria-*`). Scripts,
//! styles, event handlers and `javascript:` URLs are removed.

use std::sync::OnceLock;

fn cleaner() -> &'static ammonia::Builder<'static> {
    static CLEANER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    CLEANER.get_or_init(|| {
        let form_tags = [
            "form",
            "input",
            "select",
            "option",
            "optgroup",
            "textarea",
            "button",
            "label",
            "fieldset",
            "legend",
            "output",
            "progress",
            "meter",
            "datalist",
            "section",
            "article",
            "nav",
            "aside",
            "header",
            "footer",
            "figure",
            "figcaption",
            "time",
            "mark",
            "main",
            "details",
            "summary",
        ];
        let extra_attributes: &[(&'static str, &[&'static str])] = &[
            (
                "form",
                &["action", "method", "enctype", "novalidate", "autocomplete"],
            ),
            (
                "input",
                &[
                    "type",
                    "name",
                    "value",
                    "placeholder",
                    "required",
                    "min",
                    "max",
                    "step",
                    "checked",
                    "disabled",
                    "readonly",
                    "pattern",
                    "maxlength",
                    "minlength",
                    "size",
                    "multiple",
                    "accept",
                    "autocomplete",
                    "list",
                ],
            ),
            (
                "select",
                &["name", "required", "multiple", "disabled", "size", "autocomplete"],
            ),
            ("option", &["value", "selected", "disabled", "label"]),
            ("optgroup", &["label", "disabled"]),
            (
                "textarea",
                &[
                    "name",
                    "rows",
                    "cols",
                    "placeholder",
                    "required",
                    "maxlength",
                    "minlength",
                    "readonly",
                    "disabled",
                ],
            ),
            ("button", &["type", "name", "value", "disabled"]),
            ("label", &["for"]),
            ("fieldset", &["disabled"]),
            ("output", &["for", "name"]),
            ("progress", &["value", "max"]),
            ("meter", &["value", "min", "max", "low", "high", "optimum"]),
            ("time", &["datetime"]),
            ("details", &["open"]),
            ("a", &["title"]),
            ("img", &["title", "loading"]),
            ("th", &["scope"]),
            ("ol", &["reversed", "type"]),
        ];
        let mut builder = ammonia::Builder::default();
        builder
            .add_tags(form_tags)
            .add_generic_attributes(["class", "id", "title", "lang", "dir", "role", "hidden"])
            .add_generic_attribute_prefixes(["data-", "aria-"]);
        for (tag, attributes) in extra_attributes {
            builder.add_tag_attributes(tag, attributes.iter().copied());
        }
        builder
    })
}

/// Cleans an HTML fragment from a plugin.
pub fn fragment(html: &str) -> String {
    cleaner().clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::fragment;

    #[test]
    fn keeps_forms_and_removes_scripts() {
        let html = fragment(
            r#"<form method="post" action="./send"><label for="n">Name</label><input id="n" name="name" required><button type="submit" onclick="x()">Send</button></form><script>alert(1)</script><a href="javascript:alert(1)">x</a>"#,
        );
        assert!(html.contains(r#"<form method="post" action="./send">"#), "{html}");
        assert!(
            html.contains(r#"<input id="n" name="name" required="">"#),
            "{html}"
        );
        assert!(!html.contains("script"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
        assert!(!html.contains("javascript"), "{html}");
    }
}
