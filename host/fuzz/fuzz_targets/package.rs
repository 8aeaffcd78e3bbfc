//! Package reading (`package::read`) on any file, and packing (`package::pack`) of any
//! component. A readable package re-packs to itself; a component takes a manifest and gives
//! it back unchanged; the component's own sections are kept byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lutetia_model::manifest::Manifest;
use lutetia_model::package::{self, MANIFEST_SECTION};

/// Packed into every input that is a component, whatever it holds already.
const MANIFEST: &str = "id = \"fuzz\"\nname = \"Fuzz\"\nversion = \"1.0.0\"\napi = \"0.1.0\"\n";

fuzz_target!(|data: &[u8]| {
    let embedded = package::embedded_manifest(data);

    if let Ok((manifest, text)) = package::read(data) {
        assert_eq!(
            embedded.as_ref().ok().and_then(Option::as_deref),
            Some(text.as_str()),
            "read gives the embedded manifest text"
        );
        assert_eq!(
            Manifest::parse(&text).ok().as_ref(),
            Some(&manifest),
            "read parses the text it returns"
        );
        let repacked = match package::pack(data, &text) {
            Ok(repacked) => repacked,
            Err(e) => panic!("a readable package does not re-pack with its own manifest: {e}"),
        };
        match package::read(&repacked) {
            Ok(read_back) => assert_eq!(
                read_back,
                (manifest, text.clone()),
                "re-packed package reads differently"
            ),
            Err(e) => panic!("the re-packed package is unreadable: {e}"),
        }
        let twice = package::pack(&repacked, &text).ok();
        assert_eq!(
            twice.as_ref(),
            Some(&repacked),
            "packing the same manifest twice is not a fixed point"
        );
    }

    // Any component takes a manifest (write), and reading gives it back (read).
    let Ok(previous) = embedded else {
        return;
    };
    let packed = match package::pack(data, MANIFEST) {
        Ok(packed) => packed,
        Err(e) => panic!("a well-formed component refuses a valid manifest: {e}"),
    };
    match package::read(&packed) {
        Ok((manifest, text)) => {
            assert_eq!(text, MANIFEST);
            assert_eq!(Some(manifest), Manifest::parse(MANIFEST).ok());
        }
        Err(e) => panic!("write then read failed: {e}"),
    }
    // The manifest is one custom section at the end; everything before it is the
    // component's own sections, and when the component had no manifest, exactly its bytes.
    let kept = &packed[..packed.len() - section_len(MANIFEST)];
    if previous.is_none() {
        assert_eq!(
            kept, data,
            "a component without a manifest is not kept byte for byte"
        );
    } else {
        assert!(kept.len() < data.len(), "the old manifest section is not removed");
    }
    assert_eq!(
        package::embedded_manifest(kept).ok(),
        Some(None),
        "a manifest survived the replacement"
    );
});

/// Length of the custom section `pack` appends for `text`: id, LEB128 size, LEB128 name
/// length, name, text.
fn section_len(text: &str) -> usize {
    let contents = leb_len(MANIFEST_SECTION.len()) + MANIFEST_SECTION.len() + text.len();
    1 + leb_len(contents) + contents
}

fn leb_len(mut value: usize) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}
