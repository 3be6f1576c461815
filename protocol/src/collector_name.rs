//! [`CollectorName`]: the collectors this build knows, by their stable names (generated from
//! the registry, [`crate::for_each_collector!`]).

use std::str::FromStr;

macro_rules! collector_name {
    ($($name:ident => $variant:ident($facts:ident),)*) => {
        /// The collectors this build knows, by their stable names, in registry order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum CollectorName {
            $($variant,)*
        }

        impl CollectorName {
            /// Every collector, in registry order.
            pub const ALL: &'static [CollectorName] = &[$(CollectorName::$variant,)*];

            /// The stable name: the collector's key in `facts`, its module and policy section.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CollectorName::$variant => stringify!($name),)*
                }
            }
        }
    };
}

crate::for_each_collector!(collector_name);

impl std::fmt::Display for CollectorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of [`CollectorName::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown collector {0:?}; known: {known}", known = known_names())]
pub struct UnknownCollector(pub String);

/// `host, disk_encryption, ...`: the known names, for messages.
fn known_names() -> String {
    CollectorName::ALL
        .iter()
        .map(|name| name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for CollectorName {
    type Err = UnknownCollector;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CollectorName::ALL
            .iter()
            .copied()
            .find(|name| name.as_str() == s)
            .ok_or_else(|| UnknownCollector(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_itself_in_registry_order() {
        for name in CollectorName::ALL {
            assert_eq!(name.as_str().parse::<CollectorName>().unwrap(), *name);
        }
        let mut sorted = CollectorName::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, CollectorName::ALL, "Ord follows the registry");
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_known_names() {
        let err = "ssd".parse::<CollectorName>().unwrap_err();
        let known: Vec<&str> = CollectorName::ALL.iter().map(|n| n.as_str()).collect();
        assert_eq!(
            err.to_string(),
            format!("unknown collector \"ssd\"; known: {}", known.join(", "))
        );
        assert!(err.to_string().contains(", disk_encryption, "), "{err}");
    }
}
