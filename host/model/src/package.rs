//! A plugin package: one `.wasm` component with its `plugin.toml` embedded in a custom
//! section named [`MANIFEST_SECTION`].
//!
//! A component (like a core module) is a header followed by sections, each `id`, LEB128
//! size, contents; a custom section (id 0) may appear anywhere at the top level and is
//! ignored by the runtime, so appending one keeps the component valid. The top-level
//! sections are walked here by hand: nested modules and components live inside section
//! contents and are never looked at, and a truncated file is caught before any compiler
//! sees it.

use crate::manifest::{Manifest, ManifestError};

/// Name of the custom section holding the manifest (its TOML text, UTF-8).
pub const MANIFEST_SECTION: &str = "lutetia:manifest";

const MAGIC: &[u8; 4] = b"\0asm";
/// Version and layout words of a component (`0x0d 0x00 0x01 0x00`).
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
/// Version and layout words of a core module (`0x01 0x00 0x00 0x00`).
const MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

/// Why a file is not a plugin package.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Not WebAssembly at all.
    #[error("not a WebAssembly file (it does not start with the `\\0asm` magic number)")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build the plugin for \
         wasm32-wasip2 (or adapt the module with `wasm-tools component new`)"
    )]
    CoreModule,
    /// An unknown binary version.
    #[error("unsupported WebAssembly binary version {0:02x?}: expected a component (0d 00 01 00)")]
    UnknownVersion([u8; 4]),
    /// The file ends inside a section.
    #[error("truncated WebAssembly file: {0}")]
    Truncated(String),
    /// No manifest in the component and none given.
    #[error(
        "the component has no embedded manifest (custom section `{MANIFEST_SECTION}`): \
         pack it with `lutetia plugin pack COMPONENT plugin.toml`"
    )]
    NoManifest,
    /// The embedded manifest is not UTF-8.
    #[error("the embedded manifest is not UTF-8 text")]
    ManifestNotUtf8,
    /// The embedded manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// One top-level section: its id and where it lies in the file.
#[derive(Debug, Clone)]
struct Section {
    id: u8,
    /// The whole section, id byte included.
    whole: std::ops::Range<usize>,
    /// Its contents.
    contents: std::ops::Range<usize>,
}

/// Reads an unsigned LEB128 `u32` at `pos`; returns it and the position after it.
fn read_u32(bytes: &[u8], mut pos: usize) -> Result<(u32, usize), PackageError> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes
            .get(pos)
            .ok_or_else(|| PackageError::Truncated(format!("file ends inside a length at byte {pos}")))?;
        pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(value)
                .map(|v| (v, pos))
                .map_err(|_| PackageError::Truncated(format!("length too large at byte {pos}")));
        }
    }
    Err(PackageError::Truncated(format!("malformed length at byte {pos}")))
}

fn write_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Checks the header (a component) and lists the top-level sections.
fn sections(bytes: &[u8]) -> Result<Vec<Section>, PackageError> {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(PackageError::NotWasm);
    }
    let mut version = [0u8; 4];
    version.copy_from_slice(&bytes[4..8]);
    if version == MODULE_VERSION {
        return Err(PackageError::CoreModule);
    }
    if version != COMPONENT_VERSION {
        return Err(PackageError::UnknownVersion(version));
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < bytes.len() {
        let start = pos;
        let id = bytes[pos];
        let (size, after) = read_u32(bytes, pos + 1)?;
        let end = after
            .checked_add(size as usize)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| {
                PackageError::Truncated(format!(
                    "section {id} at byte {start} declares {size} bytes but the file has {} left",
                    bytes.len() - after
                ))
            })?;
        out.push(Section {
            id,
            whole: start..end,
            contents: after..end,
        });
        pos = end;
    }
    Ok(out)
}

/// The name and payload of a custom section.
fn custom<'a>(bytes: &'a [u8], section: &Section) -> Option<(&'a [u8], &'a [u8])> {
    if section.id != 0 {
        return None;
    }
    let contents = &bytes[section.contents.clone()];
    let (len, after) = read_u32(contents, 0).ok()?;
    let name = contents.get(after..after.checked_add(len as usize)?)?;
    Some((name, &contents[after + len as usize..]))
}

/// The manifest text embedded in `wasm`, if any; fails if `wasm` is not a component.
pub fn embedded_manifest(wasm: &[u8]) -> Result<Option<String>, PackageError> {
    for section in sections(wasm)? {
        if let Some((name, payload)) = custom(wasm, &section)
            && name == MANIFEST_SECTION.as_bytes()
        {
            return String::from_utf8(payload.to_vec())
                .map(Some)
                .map_err(|_| PackageError::ManifestNotUtf8);
        }
    }
    Ok(None)
}

/// Reads a package: the component and its embedded manifest, parsed and validated.
pub fn read(wasm: &[u8]) -> Result<(Manifest, String), PackageError> {
    let text = embedded_manifest(wasm)?.ok_or(PackageError::NoManifest)?;
    let manifest = Manifest::parse(&text)?;
    Ok((manifest, text))
}

/// Embeds `manifest_text` (validated first) in `component`, replacing any manifest it
/// already holds. The result is the one-file package a city installs.
pub fn pack(component: &[u8], manifest_text: &str) -> Result<Vec<u8>, PackageError> {
    Manifest::parse(manifest_text)?;
    let mut out = Vec::with_capacity(component.len() + manifest_text.len() + 32);
    out.extend_from_slice(&component[..8.min(component.len())]);
    for section in sections(component)? {
        let is_manifest =
            custom(component, &section).is_some_and(|(name, _)| name == MANIFEST_SECTION.as_bytes());
        if !is_manifest {
            out.extend_from_slice(&component[section.whole.clone()]);
        }
    }
    let mut contents = Vec::new();
    write_u32(&mut contents, MANIFEST_SECTION.len() as u32);
    contents.extend_from_slice(MANIFEST_SECTION.as_bytes());
    contents.extend_from_slice(manifest_text.as_bytes());
    out.push(0);
    write_u32(&mut out, u32::try_from(contents.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(&contents);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "id = \"p\"\nname = \"P\"\nversion = \"1.0.0\"\napi = \"0.1.0\"\n";
    /// An empty component: header only.
    const EMPTY: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[test]
    fn packs_and_reads_back() {
        let packed = pack(EMPTY, MANIFEST).expect("pack");
        let (manifest, text) = read(&packed).expect("read");
        assert_eq!(manifest.id, "p");
        assert_eq!(text, MANIFEST);
        let repacked = pack(&packed, &MANIFEST.replace("1.0.0", "2.0.0")).expect("repack");
        assert_eq!(read(&repacked).expect("read").0.version.to_string(), "2.0.0");
        assert_eq!(
            repacked.len(),
            packed.len(),
            "the old manifest is replaced, not kept"
        );
    }

    #[test]
    fn refuses_what_is_not_a_component() {
        assert!(matches!(read(b"hello world"), Err(PackageError::NotWasm)));
        assert!(matches!(read(b"\0asm\x01\0\0\0"), Err(PackageError::CoreModule)));
        assert!(matches!(read(EMPTY), Err(PackageError::NoManifest)));
        let packed = pack(EMPTY, MANIFEST).expect("pack");
        assert!(matches!(
            read(&packed[..packed.len() - 3]),
            Err(PackageError::Truncated(_))
        ));
    }
}
