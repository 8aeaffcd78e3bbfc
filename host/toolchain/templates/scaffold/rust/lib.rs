//! {{title}}: a Lutetia plugin. `lutetia plugin build` turns it into the package a city installs.

use lutetia_sdk::{Page, Plugin, Reply, Request, Response, config, html, kv};

struct App;

impl Plugin for App {
    fn handle(req: Request) -> Reply {
        match (req.method(), req.segments().as_slice()) {
            ("GET", []) => {
                let greeting = config::get_or("greeting", "Hello");
                let visits = kv::increment("visits", 1)
                    .map(|n| n.to_string())
                    .unwrap_or_else(|e| format!("unavailable ({e})"));
                let body = format!(
                    "<p>{}</p><p>Visits: {}</p>",
                    html::escape(&greeting),
                    html::escape(&visits)
                );
                Page::new("{{title}}", body).into()
            }
            _ => Response::not_found().into(),
        }
    }
}

lutetia_sdk::export!(App);
