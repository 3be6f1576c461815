//! Facts: what the collectors observed on one host, keyed by collector name.
//!
//! A collector that was not run (`--only`) is absent; one that failed as a whole is
//! `Observation::Error`. Each collector's own fact type lives in its own module; the modules,
//! [`Facts`] and its JSON form are generated from the registry ([`crate::for_each_collector!`]).
//!
//! On the wire `facts` is a JSON object whose keys are collector names, sorted like every map in
//! a report. A key this build does not know (a newer agent's collector) is kept verbatim in
//! [`Facts::unknown`] and written back in its sorted place, so a report re-serialises to the
//! bytes that were signed; unknown fields inside a known collector's facts are still refused.

mod raw;

use std::collections::{BTreeMap, BTreeSet};

use serde::de::{Error as _, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{CollectorName, Observation};

pub use raw::RawFacts;

macro_rules! facts {
    ($($name:ident => $variant:ident($facts:ident),)*) => {
        $(
            pub mod $name;
            pub use $name::$facts;
        )*

        /// Every collector's facts for one collection run.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Facts {
            $(pub $name: Option<Observation<$facts>>,)*
            /// Collectors this build does not know, by name, exactly as received.
            pub unknown: BTreeMap<String, RawFacts>,
        }

        impl Facts {
            /// Facts where every collector in `names` failed with `reason`: what a collection
            /// that could not run at all reports (never an empty, full-looking report).
            pub fn all_failed(names: &[CollectorName], reason: &str) -> Facts {
                let mut facts = Facts::default();
                for name in names {
                    match name {
                        $(CollectorName::$variant => {
                            facts.$name = Some(Observation::error(reason));
                        })*
                    }
                }
                facts
            }

            /// Replaces every collector present in `fresh` (known or not) by its new
            /// observation; the others keep theirs.
            pub fn overlay(&mut self, fresh: Facts) {
                $(if fresh.$name.is_some() {
                    self.$name = fresh.$name;
                })*
                self.unknown.extend(fresh.unknown);
            }

            /// The known collectors present, in registry order.
            pub fn collectors(&self) -> Vec<CollectorName> {
                let mut present = Vec::new();
                $(if self.$name.is_some() {
                    present.push(CollectorName::$variant);
                })*
                present
            }
        }

        impl Serialize for Facts {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut keys: Vec<&str> = self.collectors().iter().map(|n| n.as_str()).collect();
                keys.extend(self.unknown.keys().map(String::as_str));
                keys.sort_unstable();
                let mut map = s.serialize_map(Some(keys.len()))?;
                for key in keys {
                    match key {
                        $(stringify!($name) => map.serialize_entry(key, &self.$name)?,)*
                        _ => map.serialize_entry(key, &self.unknown[key])?,
                    }
                }
                map.end()
            }
        }

        impl<'de> Deserialize<'de> for Facts {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct FactsVisitor;

                impl<'de> Visitor<'de> for FactsVisitor {
                    type Value = Facts;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an object of observations keyed by collector name")
                    }

                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Facts, A::Error> {
                        let mut facts = Facts::default();
                        let mut seen = BTreeSet::new();
                        while let Some(key) = map.next_key::<String>()? {
                            if !seen.insert(key.clone()) {
                                return Err(A::Error::custom(format!(
                                    "collector `{key}` appears twice in facts"
                                )));
                            }
                            match key.as_str() {
                                $(stringify!($name) => facts.$name = map.next_value()?,)*
                                _ => {
                                    let raw = map.next_value()?;
                                    facts.unknown.insert(key, raw);
                                }
                            }
                        }
                        Ok(facts)
                    }
                }

                d.deserialize_map(FactsVisitor)
            }
        }
    };
}

crate::for_each_collector!(facts);

#[cfg(test)]
mod tests;
