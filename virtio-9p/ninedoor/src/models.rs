//! The model catalogue: the configured available models and the active
//! pointer behind `/gpu/models/active`.
//!
//! The pointer file is append-only; each written line must name an
//! available model id and becomes the active model (the last line wins), so
//! the file doubles as a history of switches. The active id is also kept
//! here, so trimming the in-memory file never loses it.

use std::collections::BTreeMap;

use crate::config::ModelSpec;

/// Available models and the active one.
#[derive(Clone, Debug, Default)]
pub struct Models {
    available: BTreeMap<String, String>,
    active: Option<String>,
}

impl Models {
    /// From the hive configuration (ids validated by `HiveSpec::validate`).
    #[must_use]
    pub fn new(specs: &[ModelSpec]) -> Models {
        Models {
            available: specs
                .iter()
                .map(|m| (m.id.clone(), m.manifest_toml.clone()))
                .collect(),
            active: None,
        }
    }

    /// Available ids in order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.available.keys().map(String::as_str)
    }

    /// A model's manifest.
    #[must_use]
    pub fn manifest(&self, id: &str) -> Option<&str> {
        self.available.get(id).map(String::as_str)
    }

    /// The active model.
    #[must_use]
    pub fn active(&self) -> Option<&str> {
        self.active.as_deref()
    }

    /// Validates a pointer line (one id, surrounding blanks ignored) and
    /// returns the id.
    pub fn check_pointer<'a>(&self, line: &'a str) -> Result<&'a str, String> {
        let id = line.trim();
        if id.is_empty() || id.contains(char::is_whitespace) {
            return Err("a pointer line names exactly one model id".into());
        }
        if !self.available.contains_key(id) {
            return Err(format!("no available model {id:?}"));
        }
        Ok(id)
    }

    /// Makes `id` active (must be available).
    pub fn set_active(&mut self, id: &str) -> Result<(), String> {
        let id = self.check_pointer(id)?;
        self.active = Some(id.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_validation() {
        let mut m = Models::new(&[ModelSpec {
            id: "stories15m".into(),
            manifest_toml: "name = \"s\"\n".into(),
        }]);
        assert_eq!(m.active(), None);
        assert!(m.set_active("nope").is_err());
        assert!(m.set_active("stories15m extra").is_err());
        assert!(m.set_active("").is_err());
        m.set_active(" stories15m ").unwrap();
        assert_eq!(m.active(), Some("stories15m"));
        assert_eq!(m.manifest("stories15m"), Some("name = \"s\"\n"));
        assert_eq!(m.ids().collect::<Vec<_>>(), ["stories15m"]);
    }
}
