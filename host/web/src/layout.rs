//! The site layout (minijinja templates compiled into the binary) that wraps plugin pages,
//! the home page and error pages.

use minijinja::{Environment, context};
use serde::Serialize;

/// A template failed to render (a bug in a template, never the visitor's input).
#[derive(Debug, thiserror::Error)]
#[error("template error: {0}")]
pub struct LayoutError(#[from] minijinja::Error);

/// One entry of the site navigation.
#[derive(Debug, Clone, Serialize)]
pub struct NavItem {
    /// Plugin id (mount).
    pub id: String,
    /// Name shown.
    pub name: String,
    /// Description shown on the home page.
    pub description: String,
}

/// The compiled templates.
#[derive(Debug)]
pub struct Layout {
    env: Environment<'static>,
    site_name: String,
}

impl Layout {
    /// Compiles the built-in templates.
    pub fn new(site_name: &str) -> Result<Layout, LayoutError> {
        let mut env = Environment::new();
        env.add_template("layout.html", include_str!("../templates/layout.html"))?;
        env.add_template("page.html", include_str!("../templates/page.html"))?;
        env.add_template("home.html", include_str!("../templates/home.html"))?;
        env.add_template("error.html", include_str!("../templates/error.html"))?;
        Ok(Layout {
            env,
            site_name: site_name.to_owned(),
        })
    }

    /// A plugin page: `body` is the already sanitized HTML fragment.
    pub fn page(
        &self,
        nav: &[NavItem],
        plugin: &str,
        title: &str,
        body: &str,
    ) -> Result<String, LayoutError> {
        Ok(self.env.get_template("page.html")?.render(context! {
            site_name => self.site_name, lang => crate::DEFAULT_LOCALE, nav, current => plugin, title, body,
        })?)
    }

    /// The home page: the list of services.
    pub fn home(&self, nav: &[NavItem]) -> Result<String, LayoutError> {
        Ok(self.env.get_template("home.html")?.render(context! {
            site_name => self.site_name, lang => crate::DEFAULT_LOCALE, nav, current => "", title => self.site_name, plugins => nav,
        })?)
    }

    /// An error page.
    pub fn error(
        &self,
        nav: &[NavItem],
        title: &str,
        message: &str,
        request_id: Option<&str>,
    ) -> Result<String, LayoutError> {
        Ok(self.env.get_template("error.html")?.render(context! {
            site_name => self.site_name, lang => crate::DEFAULT_LOCALE, nav, current => "", title, message, request_id,
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_titles_and_keeps_bodies() {
        let layout = Layout::new("Ville <de> Test").expect("templates compile");
        let nav = vec![NavItem {
            id: "hello".into(),
            name: "Hello".into(),
            description: String::new(),
        }];
        let html = layout
            .page(&nav, "hello", "<b>T</b>", "<p>body</p>")
            .expect("renders");
        assert!(
            html.contains("&lt;b&gt;T&lt;") && !html.contains("<b>T"),
            "{html}"
        );
        assert!(html.contains("<p>body</p>"));
        assert!(html.contains("Ville &lt;de&gt; Test"));
        assert!(html.contains("aria-current=\"page\""));
    }
}
