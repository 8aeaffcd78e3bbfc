//! `lutetia:plugin/log`: plugin log lines go to the host's log, tagged with the plugin id,
//! as one line each and within the plugin's log limits (`log_meter`).

use super::bindings::lutetia::plugin::log::{Host, Level};
use super::log_meter::one_log_line;
use super::state::HostState;

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) {
        let line = one_log_line(&message);
        if !self.log.admit(line.len() as u64) {
            return;
        }
        let plugin = self.plugin.id.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{line}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{line}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{line}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{line}"),
            Level::Error => tracing::error!(target: "plugin", plugin, "{line}"),
        }
    }
}
