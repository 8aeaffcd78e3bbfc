//! The state every request shares: the platform, the site layout and the HTTP layer's own
//! state (page workers, refused answers per plugin).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lutetia_model::settings::HttpSettings;
use lutetia_platform::platform::Platform;

use crate::layout::{Layout, NavItem};

/// The state shared by every request.
#[derive(Debug)]
pub struct App {
    /// Settings, database, runtime and the plugins served.
    pub platform: Arc<Platform>,
    /// The site layout.
    pub layout: Layout,
    /// The HTTP layer's own state: page workers, refused answers per plugin.
    pub http: HttpState,
}

impl App {
    /// The navigation: every plugin served.
    pub fn site_nav(&self) -> Vec<NavItem> {
        self.platform
            .registry
            .list()
            .iter()
            .map(|p| NavItem {
                id: p.context.id.clone(),
                name: p.manifest.name.clone(),
                description: p.manifest.description.clone(),
            })
            .collect()
    }
}

/// The HTTP layer's state for one host: the blocking workers that clean large pages, and
/// how many answers of each plugin the host refused.
#[derive(Debug)]
pub struct HttpState {
    pub(crate) pages: Arc<tokio::sync::Semaphore>,
    refused: Mutex<HashMap<String, u64>>,
}

impl HttpState {
    /// Sized from the `[http]` settings.
    pub fn new(settings: &HttpSettings) -> HttpState {
        // By default half the cores: cleaning pages never takes all of them from the
        // requests that need none.
        let workers = match settings.page_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| (usize::from(n) / 2).max(1)),
            n => n as usize,
        };
        HttpState {
            pages: Arc::new(tokio::sync::Semaphore::new(workers)),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// Answers of `plugin` the host refused since it started (invalid status, answer or
    /// page over its limits, a redirect off-site): the plugin's count, for metrics.
    pub fn refused_answers(&self, plugin: &str) -> u64 {
        self.refused
            .lock()
            .map_or(0, |map| map.get(plugin).copied().unwrap_or(0))
    }

    /// Counts one refused answer of `plugin`; returns its new count.
    pub(crate) fn charge(&self, plugin: &str) -> u64 {
        let Ok(mut map) = self.refused.lock() else {
            return 0;
        };
        let count = map.entry(plugin.to_owned()).or_insert(0);
        *count += 1;
        *count
    }
}
