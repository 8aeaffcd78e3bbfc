//! Events between plugins, the rules: what a topic and a subscription pattern may be, which
//! topics a pattern matches, and how large a payload may be. Used by manifest validation,
//! `events.publish` and the dispatcher.

/// Largest payload, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 128;
/// Checks a topic: 1 to 128 characters among `a-z`, `0-9`, `.`, `_`, `-`.
pub fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_BYTES {
        return Err(format!(
            "topic must be 1 to {MAX_TOPIC_BYTES} characters, got {}",
            topic.len()
        ));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic {topic:?} contains {c:?}: use lower-case letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Checks a subscription pattern: a topic, or a topic prefix followed by `*`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    match pattern.strip_suffix('*') {
        Some("") => Ok(()),
        Some(prefix) => check_topic(prefix),
        None => check_topic(pattern),
    }
}

/// Whether `topic` matches a subscription pattern (a trailing `*` matches any suffix).
pub fn matches(pattern: &str, topic: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => topic.starts_with(prefix),
        None => pattern == topic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        for good in ["a", "test.ping", "issue_created-2", &"a".repeat(128)] {
            assert!(check_topic(good).is_ok(), "{good:?}");
        }
        for bad in ["", "Test", "a b", "a/b", "é", "a*", &"a".repeat(129)] {
            assert!(check_topic(bad).is_err(), "{bad:?}");
        }
        assert!(check_pattern("test.*").is_ok());
        assert!(check_pattern("*").is_ok());
        assert!(check_pattern("te*st").is_err());
    }

    #[test]
    fn patterns() {
        assert!(matches("test.*", "test.ping"));
        assert!(!matches("test.*", "tests.ping"));
        assert!(matches("test.ping", "test.ping"));
        assert!(!matches("test.ping", "test.pings"));
        assert!(matches("*", "anything"));
    }
}
