//! The answer of every tool that removes one thing.

use schemars::JsonSchema;
use serde::Serialize;

use crate::tool::Render;

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Removed {
    /// network, volume, container or image.
    pub kind: &'static str,
    pub name: String,
}

impl Render for Removed {
    fn render_text(&self) -> String {
        format!("removed {} {}", self.kind, crate::render::text(&self.name))
    }
}
