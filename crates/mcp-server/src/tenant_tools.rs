//! The tools each tenant's admins switched off (`/api/v1/tenants/current/tools`):
//! read from the store at start, polled after, held in memory for every
//! request's policy, and announced to the tenant's sessions as
//! `notifications/tools/list_changed` when they change.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use devops_models::TenantId;
use devops_store::ToolSettingsStore;
use tokio::sync::broadcast;

/// How often the store is asked for changes.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A tenant's settings version and its disabled tools.
type Disabled = (u64, Arc<BTreeSet<String>>);

pub struct TenantTools {
    settings: RwLock<HashMap<TenantId, Disabled>>,
    changes: broadcast::Sender<TenantId>,
}

impl TenantTools {
    /// Loaded once before serving, then kept fresh by a poller that stops
    /// when the returned value is dropped.
    pub async fn start(store: Arc<dyn ToolSettingsStore>) -> devops_store::Result<Arc<Self>> {
        let tools = Arc::new(Self { settings: RwLock::default(), changes: broadcast::channel(256).0 });
        tools.refresh(store.as_ref()).await?;
        tokio::spawn(poll(Arc::downgrade(&tools), store));
        Ok(tools)
    }

    pub fn disabled(&self, tenant: TenantId) -> Arc<BTreeSet<String>> {
        let settings = self.settings.read().unwrap_or_else(PoisonError::into_inner);
        settings.get(&tenant).map(|(_, tools)| tools.clone()).unwrap_or_default()
    }

    /// Tenants whose tools changed, as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<TenantId> {
        self.changes.subscribe()
    }

    /// Takes what the store holds; announces tenants whose version moved
    /// (at start nobody listens yet).
    async fn refresh(&self, store: &dyn ToolSettingsStore) -> devops_store::Result<()> {
        let all = store.all_tool_settings().await?;
        let mut changed = Vec::new();
        {
            let mut settings = self.settings.write().unwrap_or_else(PoisonError::into_inner);
            for (tenant, current) in all {
                let known = settings.get(&tenant).map(|(version, _)| *version);
                if known != Some(current.version) {
                    let disabled = Arc::new(current.disabled_tools.into_iter().collect());
                    settings.insert(tenant, (current.version, disabled));
                    changed.push(tenant);
                }
            }
        }
        for tenant in changed {
            let _ = self.changes.send(tenant);
        }
        Ok(())
    }
}

async fn poll(tools: Weak<TenantTools>, store: Arc<dyn ToolSettingsStore>) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(tools) = tools.upgrade() else { return };
        if let Err(err) = tools.refresh(store.as_ref()).await {
            tracing::warn!(error = %err, "reading tenants' tool settings failed; keeping the last ones");
        }
    }
}
