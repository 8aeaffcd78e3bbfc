//! The accounting behind `lutetia:plugin/log` (the interface itself is `host_log`): every
//! message becomes exactly one log line: control characters (newlines, CR, ANSI
//! escapes, the rest of C0 and C1, Unicode line separators and bidirectional overrides) are
//! escaped and a backslash is doubled, so a plugin can neither forge a line nor an escape.
//! The volume is bounded per call and per minute (all the plugin's calls on this host, see
//! [`super::LogLimits`]). The log interface has no error to return, so a line over a limit
//! is dropped and counted; the drops of a call are reported in one summary line when it
//! ends, `N lines dropped`. Summaries are bounded too: after [`SUMMARIES_PER_MINUTE`] in a
//! minute, the drops of the rest of that minute are reported in one line when it ends.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::PluginContext;

/// Longest message kept, in bytes once escaped; the rest is cut (and `…` added).
pub const MAX_MESSAGE: usize = 4096;
/// The window of the per-minute limits.
const WINDOW: Duration = Duration::from_secs(60);
/// Summary lines a plugin's calls may write at once in a minute.
pub const SUMMARIES_PER_MINUTE: u32 = 10;

/// `text` as one log line of at most `MAX_MESSAGE` bytes (plus `…` when cut).
pub fn one_log_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE) + 4);
    for c in text.chars() {
        let before = out.len();
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
        if out.len() > MAX_MESSAGE {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    out
}

/// C0, DEL and C1 controls, line and paragraph separators, and the bidirectional controls
/// that can make a terminal show text other than what was written.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// What one plugin logged in the current minute on this host, and the drops to report.
#[derive(Debug, Default)]
pub struct LogMeter {
    window: Mutex<Window>,
    dropped_total: AtomicU64,
}

#[derive(Debug, Default)]
struct Window {
    /// Start of the current minute (`None`: nothing logged yet).
    start: Option<Instant>,
    lines: u64,
    bytes: u64,
    /// Summaries written in this minute.
    summaries: u32,
    /// Drops of this minute not yet in a summary.
    unreported: u64,
    /// Whether a task will write the summary of `unreported` when the minute ends.
    flush_scheduled: bool,
}

impl Window {
    /// Starts a new minute if this one is over; returns the drops of the old one that
    /// still need a summary.
    fn roll(&mut self, now: Instant) -> u64 {
        if self.start.is_some_and(|start| now.duration_since(start) < WINDOW) {
            return 0;
        }
        let pending = std::mem::take(&mut self.unreported);
        *self = Window {
            start: Some(now),
            ..Window::default()
        };
        pending
    }
}

impl LogMeter {
    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lines dropped since the plugin was loaded on this host.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Counts a line of `bytes` against the minute; `false` when it does not fit. Also
    /// returns the drops of a finished minute that still need their summary.
    fn admit(&self, bytes: u64, lines_per_minute: u64, bytes_per_minute: u64) -> (bool, u64) {
        let mut w = self.lock();
        let pending = w.roll(Instant::now());
        let fits = w.lines < lines_per_minute && w.bytes.saturating_add(bytes) <= bytes_per_minute;
        if fits {
            w.lines += 1;
            w.bytes += bytes;
        }
        (fits, pending)
    }
}

/// What one call logged; reports its drops when the call ends (the store is dropped).
pub struct CallLog {
    plugin: Arc<PluginContext>,
    lines: u64,
    bytes: u64,
    dropped: u64,
}

impl CallLog {
    /// Nothing logged yet.
    pub fn new(plugin: Arc<PluginContext>) -> CallLog {
        CallLog {
            plugin,
            lines: 0,
            bytes: 0,
            dropped: 0,
        }
    }

    /// Whether a line of `bytes` may be written now; counts it (or its drop).
    pub(crate) fn admit(&mut self, bytes: u64) -> bool {
        let limits = self.plugin.limits.log;
        if self.lines >= limits.lines_per_call || self.bytes.saturating_add(bytes) > limits.bytes_per_call {
            self.dropped += 1;
            return false;
        }
        let (fits, pending) =
            self.plugin
                .log_meter
                .admit(bytes, limits.lines_per_minute, limits.bytes_per_minute);
        if pending > 0 {
            summary(&self.plugin, pending);
        }
        if !fits {
            self.dropped += 1;
            return false;
        }
        self.lines += 1;
        self.bytes += bytes;
        true
    }
}

impl Drop for CallLog {
    fn drop(&mut self) {
        if self.dropped == 0 {
            return;
        }
        let meter = &self.plugin.log_meter;
        meter.dropped_total.fetch_add(self.dropped, Ordering::Relaxed);
        let now = Instant::now();
        let (report_now, pending, flush_at) = {
            let mut w = meter.lock();
            let pending = w.roll(now);
            if w.summaries < SUMMARIES_PER_MINUTE {
                w.summaries += 1;
                (self.dropped, pending, None)
            } else {
                w.unreported += self.dropped;
                let flush_at = (!w.flush_scheduled).then(|| {
                    w.flush_scheduled = true;
                    w.start.map_or(now, |start| start + WINDOW)
                });
                (0, pending, flush_at)
            }
        };
        if pending > 0 {
            summary(&self.plugin, pending);
        }
        if report_now > 0 {
            summary(&self.plugin, report_now);
        }
        if let Some(at) = flush_at
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // The rest of this minute's drops are reported when it ends, even if the
            // plugin never logs again.
            let plugin = self.plugin.clone();
            runtime.spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                let pending = plugin.log_meter.lock().roll(Instant::now());
                if pending > 0 {
                    summary(&plugin, pending);
                }
            });
        }
    }
}

/// The one line that stands for `dropped` lines.
fn summary(plugin: &PluginContext, dropped: u64) {
    let l = plugin.limits.log;
    tracing::warn!(
        target: "plugin",
        plugin = %plugin.id,
        dropped,
        dropped_total = plugin.log_meter.dropped_total(),
        "{dropped} lines dropped: over the log limits ({} lines and {} bytes per call, {} lines and {} bytes per minute)",
        l.lines_per_call,
        l.bytes_per_call,
        l.lines_per_minute,
        l.bytes_per_minute
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_one_line_and_escapes_cannot_be_forged() {
        let forged =
            "ok\n2025-01-01T00:00:00Z  INFO lutetia: admin logged in\r\x1b[2J\x07\u{9b}31m\u{2028}x\t\\n";
        let line = one_log_line(forged);
        assert!(!line.chars().any(needs_escape), "{line:?}");
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\t'));
        assert_eq!(
            line,
            "ok\\n2025-01-01T00:00:00Z  INFO lutetia: admin logged in\\r\\u{1b}[2J\\u{7}\\u{9b}31m\\u{2028}x\\t\\\\n"
        );
        // Plain text, accents included, is left alone.
        assert_eq!(one_log_line("Bonjour, café"), "Bonjour, café");
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let line = one_log_line(&"é".repeat(10_000));
        assert!(line.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(line.ends_with('…'));
        let escaped = one_log_line(&"\n".repeat(10_000));
        assert!(escaped.len() <= MAX_MESSAGE + '…'.len_utf8());
        assert!(
            escaped.trim_end_matches('…').len().is_multiple_of(2),
            "an escape is never cut in half"
        );
    }

    #[test]
    fn the_minute_counts_lines_and_bytes_and_rolls_over() {
        let meter = LogMeter::default();
        assert_eq!(meter.admit(10, 2, 100), (true, 0));
        assert_eq!(meter.admit(95, 2, 100), (false, 0), "bytes");
        assert_eq!(meter.admit(10, 2, 100), (true, 0));
        assert_eq!(meter.admit(1, 2, 100), (false, 0), "lines");
        {
            let mut w = meter.lock();
            w.unreported = 7;
            w.start = Instant::now().checked_sub(WINDOW);
        }
        assert_eq!(
            meter.admit(1, 2, 100),
            (true, 7),
            "a new minute reports the old drops"
        );
    }
}
