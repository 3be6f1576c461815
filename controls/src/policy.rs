//! The organisation's policy: thresholds for the checks, read from a TOML file.
//!
//! Every field has a default, so an empty file (or none) is a valid policy. Each collector's
//! thresholds are defined next to its checks (its `Settings`); the [`Policy`] holds one section
//! per collector with settings, named after it, generated from the registry
//! ([`evidence_protocol::for_each_collector!`]). Sections serialise sorted by name.

use std::any::TypeId;
use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::de::{Error as _, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `Settings` of a collector whose checks take no thresholds: it has no section in the
/// policy (a `[host]` table is refused as an unknown key, and none is written).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoSettings;

impl Serialize for NoSettings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for NoSettings {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom("this collector has no policy settings"))
    }
}

/// Whether a section type holds settings (is not [`NoSettings`]).
fn has_settings<T: 'static>() -> bool {
    TypeId::of::<T>() != TypeId::of::<NoSettings>()
}

macro_rules! policy {
    ($($name:ident => $variant:ident($facts:ident),)*) => {
        /// The check thresholds, one section per collector with settings.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Policy {
            $(pub $name: crate::checks::$name::Settings,)*
        }

        impl Policy {
            /// The names of the sections, sorted: the keys of the policy file.
            fn sections() -> &'static [&'static str] {
                static SECTIONS: OnceLock<Vec<&'static str>> = OnceLock::new();
                SECTIONS.get_or_init(|| {
                    let mut names = Vec::new();
                    $(if has_settings::<crate::checks::$name::Settings>() {
                        names.push(stringify!($name));
                    })*
                    names.sort_unstable();
                    names
                })
            }
        }

        impl Serialize for Policy {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let sections = Self::sections();
                let mut map = s.serialize_map(Some(sections.len()))?;
                for &key in sections {
                    match key {
                        $(stringify!($name) => map.serialize_entry(key, &self.$name)?,)*
                        _ => unreachable!("every section is a collector"),
                    }
                }
                map.end()
            }
        }

        impl<'de> Deserialize<'de> for Policy {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct PolicyVisitor;

                impl<'de> Visitor<'de> for PolicyVisitor {
                    type Value = Policy;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a table of check thresholds, one section per collector")
                    }

                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Policy, A::Error> {
                        let mut policy = Policy::default();
                        let mut seen = BTreeSet::new();
                        while let Some(key) = map.next_key::<String>()? {
                            let sections = Policy::sections();
                            let Some(&key) = sections.iter().find(|s| **s == key) else {
                                return Err(A::Error::unknown_field(&key, sections));
                            };
                            if !seen.insert(key) {
                                return Err(A::Error::duplicate_field(key));
                            }
                            match key {
                                $(stringify!($name) => policy.$name = map.next_value()?,)*
                                _ => unreachable!("every section is a collector"),
                            }
                        }
                        Ok(policy)
                    }
                }

                d.deserialize_map(PolicyVisitor)
            }
        }
    };
}

evidence_protocol::for_each_collector!(policy);

#[derive(Debug, thiserror::Error)]
#[error("invalid policy: {0}")]
pub struct PolicyError(String);

impl Policy {
    /// Parses a policy file; unknown keys are refused so a typo cannot silently keep a default.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_policy_is_exactly_the_built_in_defaults() {
        let text = include_str!("../../packaging/policy.example.toml");
        assert_eq!(Policy::from_toml(text).unwrap(), Policy::default());
    }

    #[test]
    fn an_empty_policy_is_the_defaults_and_a_typo_is_refused() {
        assert_eq!(Policy::from_toml("").unwrap(), Policy::default());
        let err = Policy::from_toml("[accounts]\ndormant_dayz = 30\n").unwrap_err();
        assert!(err.to_string().contains("dormant_dayz"), "{err}");
    }

    #[test]
    fn a_section_that_is_no_collector_or_has_no_settings_is_refused() {
        let err = Policy::from_toml("[acounts]\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `acounts`"), "{err}");
        let err = Policy::from_toml("[host]\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `host`"), "{err}");
        let offered = err.to_string();
        let offered = offered.split("expected").nth(1).unwrap_or_default();
        assert!(!offered.contains("`host`"), "not offered: {err}");
    }

    #[test]
    fn the_policy_serialises_its_sections_sorted_and_parses_back() {
        let value = serde_json::to_value(Policy::default()).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, Policy::sections());
        let text = serde_json::to_string(&Policy::default()).unwrap();
        let mut sorted = Policy::sections().to_vec();
        sorted.sort_unstable();
        let at: Vec<usize> = sorted
            .iter()
            .map(|name| text.find(&format!("\"{name}\":")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(!text.contains("\"host\""), "{text}");
        let back: Policy = serde_json::from_str(&text).unwrap();
        assert_eq!(back, Policy::default());
    }
}
