//! `lutetia:plugin/log`: plugin log lines go to the host's log, tagged with the plugin id.

use super::bindings::lutetia::plugin::log::{Host, Level};
use super::state::HostState;

/// Longest message kept; the rest is cut so a plugin cannot flood the log with one line.
const MAX_MESSAGE: usize = 4096;

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let plugin = self.plugin.id.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", plugin, "{message}"),
        }
    }
}
