//! A byte scan that bounds the attributes of every tag html5ever could see, before it sees
//! any: html5ever checks each new attribute against the tag's previous ones, so one tag
//! with `A` attributes costs it `A²/2` comparisons (a 2 MiB tag, hours).
//!
//! Where a tag starts depends on the tree builder (`<style>` is raw text in HTML and markup
//! in SVG, `<title>` is ignored inside `<select>`...), so the scan does not guess: it
//! follows *every* tag that could start at a `<` followed by a letter (or `</` and a
//! letter), all at once. The tag tokenizer is a small automaton, and two runs that reach
//! the same state at the same byte behave the same from there on, so one counter per
//! state (the largest count among the runs in it) is enough: linear time, constant space,
//! and an upper bound on what html5ever will count for any real tag.

/// The states of html5ever's tokenizer between a tag's name and its `>`
/// (WHATWG HTML, "tag name state" to "self-closing start tag state").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Name,
    BeforeName,
    AttrName,
    AfterName,
    BeforeValue,
    DoubleQuoted,
    SingleQuoted,
    Unquoted,
    AfterQuoted,
    SelfClosing,
}

const STATES: [State; 10] = [
    State::Name,
    State::BeforeName,
    State::AttrName,
    State::AfterName,
    State::BeforeValue,
    State::DoubleQuoted,
    State::SingleQuoted,
    State::Unquoted,
    State::AfterQuoted,
    State::SelfClosing,
];

/// What one byte does: the next state (`None`: the tag ended) and whether an attribute
/// started.
fn step(state: State, byte: u8) -> (Option<State>, bool) {
    // The tokenizer's input stream turns CR and CR LF into LF before any state sees them.
    let space = matches!(byte, b'\t' | b'\n' | b'\x0C' | b' ' | b'\r');
    match state {
        State::Name => match byte {
            _ if space => (Some(State::BeforeName), false),
            b'/' => (Some(State::SelfClosing), false),
            b'>' => (None, false),
            _ => (Some(State::Name), false),
        },
        // "Reconsume in the before attribute name state" lands here too, so these arms
        // serve the states that hand over to it.
        State::BeforeName | State::AfterQuoted | State::SelfClosing => match byte {
            _ if space => (Some(State::BeforeName), false),
            b'/' => (Some(State::SelfClosing), false),
            b'>' => (None, false),
            _ => (Some(State::AttrName), true),
        },
        State::AttrName => match byte {
            _ if space => (Some(State::AfterName), false),
            b'/' => (Some(State::SelfClosing), false),
            b'>' => (None, false),
            b'=' => (Some(State::BeforeValue), false),
            _ => (Some(State::AttrName), false),
        },
        State::AfterName => match byte {
            _ if space => (Some(State::AfterName), false),
            b'/' => (Some(State::SelfClosing), false),
            b'=' => (Some(State::BeforeValue), false),
            b'>' => (None, false),
            _ => (Some(State::AttrName), true),
        },
        State::BeforeValue => match byte {
            _ if space => (Some(State::BeforeValue), false),
            b'"' => (Some(State::DoubleQuoted), false),
            b'\'' => (Some(State::SingleQuoted), false),
            b'>' => (None, false),
            _ => (Some(State::Unquoted), false),
        },
        State::DoubleQuoted => match byte {
            b'"' => (Some(State::AfterQuoted), false),
            _ => (Some(State::DoubleQuoted), false),
        },
        State::SingleQuoted => match byte {
            b'\'' => (Some(State::AfterQuoted), false),
            _ => (Some(State::SingleQuoted), false),
        },
        State::Unquoted => match byte {
            _ if space => (Some(State::BeforeName), false),
            b'>' => (None, false),
            _ => (Some(State::Unquoted), false),
        },
    }
}

/// The largest number of attributes any tag of `html` could have, or `Err(limit)` as soon
/// as one could have more than `limit`.
pub(super) fn max_attributes(html: &[u8], limit: u32) -> Result<u32, u32> {
    // counts[s] is meaningful when bit s of `active` is set: the largest attribute count
    // among the tags being read whose tokenizer is in state STATES[s] after this byte.
    let mut counts = [0u32; STATES.len()];
    let mut active: u16 = 0;
    let mut most = 0;
    let mut i = 0;
    while i < html.len() {
        if active == 0 && !(i > 0 && html[i - 1] == b'<') {
            // Text: nothing to follow until the next `<` (or the `/` of a `</`).
            match html[i..].iter().position(|&b| b == b'<') {
                Some(offset) => i += offset,
                None => break,
            }
        }
        let byte = html[i];
        if active != 0 {
            let mut next = [0u32; STATES.len()];
            let mut next_active: u16 = 0;
            let mut pending = active;
            while pending != 0 {
                let s = pending.trailing_zeros() as usize;
                pending &= pending - 1;
                let (to, started) = step(STATES[s], byte);
                let count = counts[s] + u32::from(started);
                if count > limit {
                    return Err(limit);
                }
                most = most.max(count);
                if let Some(to) = to {
                    let bit = 1u16 << to as usize;
                    if next_active & bit == 0 || next[to as usize] < count {
                        next[to as usize] = count;
                    }
                    next_active |= bit;
                }
            }
            counts = next;
            active = next_active;
        }
        // A tag may start here: `<` then a letter, or `</` then a letter. Its name's first
        // letter is the next byte, read in the name state.
        let letter_next = html.get(i + 1).is_some_and(u8::is_ascii_alphabetic);
        let opens = letter_next && (byte == b'<' || (byte == b'/' && i > 0 && html[i - 1] == b'<'));
        if opens {
            let bit = 1u16 << State::Name as usize;
            if active & bit == 0 {
                counts[State::Name as usize] = 0;
            }
            active |= bit;
        }
        i += 1;
    }
    Ok(most)
}

#[cfg(test)]
mod tests {
    use super::max_attributes;

    fn count(html: &str) -> u32 {
        max_attributes(html.as_bytes(), u32::MAX).unwrap_or(u32::MAX)
    }

    #[test]
    fn counts_attributes_the_way_the_tokenizer_does() {
        assert_eq!(count("plain text, no tag"), 0);
        assert_eq!(count("<p>hi</p>"), 0);
        assert_eq!(count(r#"<a href="/x" title='t' data-x=1 hidden>x</a>"#), 4);
        assert_eq!(count("<input/disabled/required>"), 2);
        assert_eq!(count("<a b=\"x>y z\" c>"), 2, "a quoted `>` does not end the tag");
        assert_eq!(count("<a b=x>y z c=d>"), 1, "an unquoted value ends at `>`");
        assert_eq!(
            count("</div a b c>"),
            3,
            "end tags are tokenized with attributes too"
        );
        assert_eq!(count("<a b\"c=1>"), 1, "a quote inside a name is part of it");
        assert_eq!(count("< a b c>"), 0, "`<` then a space is text");
        assert_eq!(count("text </p a> more </div b c d>"), 3, "end tags after text");
        assert_eq!(count("<<a b>"), 1);
    }

    #[test]
    fn a_tag_that_only_some_tokenizer_state_would_see_is_still_counted() {
        // Raw text for an HTML parser, markup in foreign content or when the tree
        // builder ignores the `<style>`: both readings are bounded.
        let inner = (0..300).map(|i| format!(" a{i}")).collect::<String>();
        let html = format!("<style><b{inner}></style>");
        assert_eq!(count(&html), 300);
        // A quote opened by a "tag" inside a comment must not hide the real tag after it.
        let html = format!("<!-- <a title=\" --><b{inner}>\"");
        assert_eq!(count(&html), 300);
    }

    #[test]
    fn stops_at_the_limit() {
        let many = format!("<b{}>", " x".repeat(1000));
        assert_eq!(max_attributes(many.as_bytes(), 256), Err(256));
        assert_eq!(max_attributes(many.as_bytes(), 1000), Ok(1000));
    }
}
