//! `lutetia:plugin/config`: the plugin's own settings (manifest defaults + operator values).

use super::bindings::lutetia::plugin::config::Host;
use super::state::HostState;

impl Host for HostState {
    async fn get(&mut self, key: String) -> Option<String> {
        self.plugin.config.get(&key).cloned()
    }

    async fn get_all(&mut self) -> Vec<(String, String)> {
        self.plugin
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
