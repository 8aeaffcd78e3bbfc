//! What cleaning a plugin's page costs, on inputs known to make HTML parsers superlinear:
//! time per input size, with one pass of ammonia alone (`clean_once`, what the host did
//! before issue 10) and as the host cleans now (`bounded_fragment`: the bounds, then
//! ammonia to a fixed point). It builds the host's own
//! sanitiser (`lutetia-policy`), so the figures are those of the host's code, in release mode:
//!
//!     cargo run --release --manifest-path scripts/sanitize-cost/Cargo.toml [KIND ...]
//!
//! Prints one line per (kind, size from 16 KiB to 2 MiB, the host's default page limit):
//! bytes, time unbounded, time bounded (the fastest of five runs under two seconds),
//! outcome. An unbounded run that takes longer than 5 s is not repeated for larger sizes.

use std::time::{Duration, Instant};

use lutetia_policy::sanitize::{PageLimits, bounded_fragment, clean_once};

fn pathological(kind: &str, n: usize) -> String {
    match kind {
        "deep" => "<div>".repeat(n),
        "attributes" => format!("<p{}>x</p>", (0..n).map(|i| format!(" a{i}")).collect::<String>()),
        "formatting" => format!(
            "<div>{}</div>{}",
            (0..64).map(|i| format!("<b id={i}>")).collect::<String>(),
            "<div>x</div>".repeat(n)
        ),
        "foster" => format!("<table>{}</table>", "<b></b>".repeat(n)),
        "merged-html" => (0..n).map(|i| format!("<html a{i}>")).collect(),
        "end-tags" => format!("{}{}", "<span>".repeat(200), "</x>".repeat(n)),
        "scopes" => format!("{}{}", "<div>".repeat(200), "<hr>".repeat(n)),
        "ordinary" => "<h2>Demande</h2><form method=post action=./send><p><label>Nom <input name=n></label></p>\
                       <ul><li>un<li>deux</ul><table><tr><td>a<td>b</table><p>fin <b>gras</b> <a href=/x>lien</a></p></form>"
            .repeat(n),
        _ => String::new(),
    }
}

/// `kind` repeated until the page is about `bytes` long.
fn sized(kind: &str, bytes: usize) -> String {
    let (small, large) = (pathological(kind, 1_000).len(), pathological(kind, 2_000).len());
    let per_unit = (large - small).max(1) as f64 / 1_000.0;
    let fixed = small as f64 - per_unit * 1_000.0;
    let n = ((bytes as f64 - fixed) / per_unit).max(1.0) as usize;
    pathological(kind, n)
}

/// The fastest of a few runs (the machine is shared: the minimum is the least disturbed);
/// one run when it takes seconds.
fn time<T>(run: impl Fn() -> T) -> (Duration, T) {
    let started = Instant::now();
    let mut out = run();
    let mut best = started.elapsed();
    if best < Duration::from_secs(2) {
        for _ in 0..4 {
            let started = Instant::now();
            out = run();
            best = best.min(started.elapsed());
        }
    }
    (best, out)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kinds: Vec<&str> = if args.is_empty() {
        vec!["ordinary", "deep", "attributes", "formatting", "foster", "merged-html", "end-tags", "scopes"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    println!("{:<12} {:>10} {:>14} {:>14}  bounded outcome", "kind", "bytes", "unbounded", "bounded");
    for kind in kinds {
        let mut skip_unbounded = false;
        for target in [16 << 10, 64 << 10, 256 << 10, 1 << 20, 2 << 20] {
            let html = sized(kind, target);
            let unbounded = if skip_unbounded {
                None
            } else {
                let (took, _) = time(|| clean_once(&html).len());
                skip_unbounded = took > Duration::from_secs(5);
                Some(took)
            };
            let (bounded, outcome) = time(|| bounded_fragment(&html, PageLimits::default()).map(|s| s.len()));
            println!(
                "{kind:<12} {:>10} {:>14} {:>14}  {}",
                html.len(),
                unbounded.map_or("(skipped)".to_owned(), |d| format!("{d:.2?}")),
                format!("{bounded:.2?}"),
                match outcome {
                    Ok(_) => "cleaned".to_owned(),
                    Err(why) => format!("refused: {why}"),
                }
            );
        }
    }
}
