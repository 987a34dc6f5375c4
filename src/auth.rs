//! Who is calling: principals and the authenticators that produce them.

use std::sync::Arc;

/// The identity a request acts as. Sessions belong to the principal that created them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// A stable id: the owner stored on session records.
    pub id: Arc<str>,
}

impl Principal {
    /// A principal with this id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self { id: id.into() }
    }
}
