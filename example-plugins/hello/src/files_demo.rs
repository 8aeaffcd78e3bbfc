//! `GET|POST /photos`: the `files` service. A form uploads a photo (multipart, parsed by
//! the SDK), stored with `files::put`; the page lists the stored photos as `<img>` served
//! by the host from `/p/hello/_files/{name}`.

use lutetia_sdk::{Error, Page, Reply, Request, files, html};

/// Types the manifest grants, offered to the browser's file picker.
const ACCEPT: &str = "image/jpeg,image/png,image/webp,image/gif";

/// `/photos`: the gallery and its upload form; a POST stores the chosen photo.
pub fn photos(req: &Request) -> Reply {
    match req.method() {
        "GET" => gallery(req, None),
        "POST" => match upload(req) {
            Ok(()) => Reply::redirect(req.link("/photos")),
            Err(e) => gallery(req, Some(&e)),
        },
        _ => Reply::from(lutetia_sdk::Response::text("Method not allowed").status(405)),
    }
}

fn upload(req: &Request) -> Result<(), Error> {
    let part = req
        .multipart()?
        .into_iter()
        .find(|p| p.name == "photo" && p.is_file())
        .ok_or_else(|| Error::Invalid("choose a photo first".into()))?;
    // A safe stored name from the browser's: `[A-Za-z0-9._-]`, prefixed, never a dot first.
    let original = part.filename.as_deref().unwrap_or("photo");
    let cleaned: String = original
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(150)
        .collect();
    let content_type = part.content_type.as_deref().unwrap_or("application/octet-stream");
    files::put(&format!("photo-{cleaned}"), content_type, &part.data)?;
    Ok(())
}

fn gallery(req: &Request, error: Option<&Error>) -> Reply {
    let list = match files::list("photo-", 100) {
        Ok(photos) if photos.is_empty() => "<p>No photo yet.</p>".to_owned(),
        Ok(photos) => photos
            .iter()
            .map(|p| {
                format!(
                    "<figure><img src=\"{src}\" alt=\"{name}\" width=\"240\"><figcaption>{name} ({size} bytes)</figcaption></figure>",
                    src = html::escape(&files::url(req, &p.name)),
                    name = html::escape(&p.name),
                    size = p.size,
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => format!("<p>Photos unavailable: {}</p>", html::escape(&e.to_string())),
    };
    let error = error.map_or(String::new(), |e| {
        format!(
            "<p class=\"error\" role=\"alert\">{}</p>",
            html::escape(&e.to_string())
        )
    });
    let body = format!(
        "{error}\n<form method=\"post\" action=\"{action}\" enctype=\"multipart/form-data\">\n\
         <label for=\"photo\">Photo of the street issue</label>\n\
         <input type=\"file\" id=\"photo\" name=\"photo\" accept=\"{ACCEPT}\" required>\n\
         <button type=\"submit\">Upload</button>\n</form>\n{list}",
        action = html::escape(&req.link("/photos")),
    );
    let status = if error.is_empty() { 200 } else { 400 };
    Page::new("Photos", body).status(status).into()
}
