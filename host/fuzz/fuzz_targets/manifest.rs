//! `Manifest::parse` on any text. Whatever it accepts must be a manifest the host can live
//! with: it validates, it describes itself, and printed back as TOML it parses to the same
//! manifest (so `plugin inspect`, the database copy and a re-packed package never drift).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lutetia_model::manifest::{Manifest, format_capabilities, parse_capabilities};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = Manifest::parse(text) else {
        return;
    };
    if let Err(e) = manifest.validate() {
        panic!("parse accepted a manifest that does not validate: {e}");
    }
    let described = manifest.capabilities.describe();
    let requested = manifest.capabilities.requested();
    assert!(
        described.len() >= requested.len(),
        "every requested capability is described: {requested:?} vs {described:?}"
    );
    assert_eq!(
        parse_capabilities(&format_capabilities(&requested)).as_ref(),
        Ok(&requested),
        "the capability names round-trip"
    );

    let printed = match toml::to_string(&manifest) {
        Ok(printed) => printed,
        Err(e) => panic!("a parsed manifest does not print as TOML: {e}\n{manifest:#?}"),
    };
    let reparsed = match Manifest::parse(&printed) {
        Ok(reparsed) => reparsed,
        Err(e) => panic!("the printed manifest is refused: {e}\n--- input\n{text}\n--- printed\n{printed}"),
    };
    assert_eq!(
        reparsed, manifest,
        "print then parse changed the manifest:\n{printed}"
    );
    let printed_again = toml::to_string(&reparsed).unwrap_or_default();
    assert_eq!(printed_again, printed, "printing is not a fixed point");
});
