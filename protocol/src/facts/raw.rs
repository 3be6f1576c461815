//! [`RawFacts`]: one unknown collector's facts, kept as the exact JSON text received.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The facts of a collector this build does not know (a newer agent's), byte for byte as
/// they arrived: signed evidence is stored verbatim and evaluated once the server knows the
/// collector, so nothing here is parsed, reordered or reformatted.
#[derive(Debug, Clone)]
pub struct RawFacts(Box<RawValue>);

impl RawFacts {
    /// Wraps JSON text (which must be one valid JSON value).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text.to_string()).map(RawFacts)
    }

    /// The JSON text, exactly as received.
    pub fn json(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawFacts {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Serialize for RawFacts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawFacts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(RawFacts)
    }
}
