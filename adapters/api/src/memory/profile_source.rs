use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::{AdapterError, AdapterResult, ProfileBundle, ProfileSource};

/// A [`ProfileSource`] over bundles held in memory.
#[derive(Debug, Default, Clone)]
pub struct MemoryProfileSource {
    profiles: BTreeMap<String, ProfileBundle>,
}

impl MemoryProfileSource {
    /// A source holding `bundles`, each under its own name.
    pub fn new(bundles: impl IntoIterator<Item = ProfileBundle>) -> Self {
        Self {
            profiles: bundles.into_iter().map(|b| (b.name.clone(), b)).collect(),
        }
    }
}

#[async_trait]
impl ProfileSource for MemoryProfileSource {
    async fn list(&self) -> AdapterResult<Vec<String>> {
        Ok(self.profiles.keys().cloned().collect())
    }

    async fn load(&self, name: &str) -> AdapterResult<ProfileBundle> {
        self.profiles
            .get(name)
            .cloned()
            .ok_or_else(|| AdapterError::not_found(format!("profile {name}")))
    }
}
