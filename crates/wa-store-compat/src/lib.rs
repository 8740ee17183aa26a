//! Baileys-compatible JSON multi-file store for WhatsApp auth state (Baileys 6 and 7 layouts).
//!
//! Not implemented yet: this crate is a placeholder in the workspace layout.
