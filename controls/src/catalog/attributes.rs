//! The five ISO/IEC 27002:2022 attribute types (clause 4.2) and their allowed values, as typed enums.
//!
//! The value sets are exactly those of the project reference (`controls.md` §1.5); each value's
//! serde name is the standard's hashtag without the `#` (`Asset_management`, `Defence`). Values are
//! read from `data/iso27002_2022.toml`, so a misspelt tag there fails to parse.

use serde::{Deserialize, Serialize};

/// Declares an attribute enum whose serde names are the standard's tags, with `ALL` and `tag()`.
macro_rules! tag_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $tag:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $tag)] $variant,)+
        }

        impl $name {
            /// Every allowed value, in the standard's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as the standard writes it, without the leading `#`.
            pub fn tag(self) -> &'static str {
                match self {
                    $($name::$variant => $tag,)+
                }
            }
        }
    };
}

tag_enum! {
    /// `#Preventive`, `#Detective`, `#Corrective`.
    ControlType {
        Preventive = "Preventive",
        Detective = "Detective",
        Corrective = "Corrective",
    }
}

tag_enum! {
    /// Information security properties: `#Confidentiality`, `#Integrity`, `#Availability`.
    SecurityProperty {
        Confidentiality = "Confidentiality",
        Integrity = "Integrity",
        Availability = "Availability",
    }
}

tag_enum! {
    /// Cybersecurity concepts (ISO/IEC TS 27110; the NIST CSF 1.1 functions, no Govern).
    CybersecurityConcept {
        Identify = "Identify",
        Protect = "Protect",
        Detect = "Detect",
        Respond = "Respond",
        Recover = "Recover",
    }
}

tag_enum! {
    /// The 15 operational capabilities.
    OperationalCapability {
        Governance = "Governance",
        AssetManagement = "Asset_management",
        InformationProtection = "Information_protection",
        HumanResourceSecurity = "Human_resource_security",
        PhysicalSecurity = "Physical_security",
        SystemAndNetworkSecurity = "System_and_network_security",
        ApplicationSecurity = "Application_security",
        SecureConfiguration = "Secure_configuration",
        IdentityAndAccessManagement = "Identity_and_access_management",
        ThreatAndVulnerabilityManagement = "Threat_and_vulnerability_management",
        Continuity = "Continuity",
        SupplierRelationshipsSecurity = "Supplier_relationships_security",
        LegalAndCompliance = "Legal_and_compliance",
        InformationSecurityEventManagement = "Information_security_event_management",
        InformationSecurityAssurance = "Information_security_assurance",
    }
}

tag_enum! {
    /// The 4 security domains (British "Defence", capital E in "Ecosystem", as the standard).
    SecurityDomain {
        GovernanceAndEcosystem = "Governance_and_Ecosystem",
        Protection = "Protection",
        Defence = "Defence",
        Resilience = "Resilience",
    }
}

/// The five attribute types themselves (names of the `Attributes` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    ControlType,
    SecurityProperties,
    CybersecurityConcepts,
    OperationalCapabilities,
    SecurityDomains,
}

impl AttributeType {
    pub const ALL: &'static [AttributeType] = &[
        AttributeType::ControlType,
        AttributeType::SecurityProperties,
        AttributeType::CybersecurityConcepts,
        AttributeType::OperationalCapabilities,
        AttributeType::SecurityDomains,
    ];

    /// The attribute type's name as the standard gives it.
    pub fn name(self) -> &'static str {
        match self {
            AttributeType::ControlType => "Control type",
            AttributeType::SecurityProperties => "Information security properties",
            AttributeType::CybersecurityConcepts => "Cybersecurity concepts",
            AttributeType::OperationalCapabilities => "Operational capabilities",
            AttributeType::SecurityDomains => "Security domains",
        }
    }

    /// The allowed values (tags without `#`), in the standard's order.
    pub fn allowed_values(self) -> Vec<&'static str> {
        fn tags<T: Copy>(all: &[T], tag: fn(T) -> &'static str) -> Vec<&'static str> {
            all.iter().map(|v| tag(*v)).collect()
        }
        match self {
            AttributeType::ControlType => tags(ControlType::ALL, ControlType::tag),
            AttributeType::SecurityProperties => tags(SecurityProperty::ALL, SecurityProperty::tag),
            AttributeType::CybersecurityConcepts => {
                tags(CybersecurityConcept::ALL, CybersecurityConcept::tag)
            }
            AttributeType::OperationalCapabilities => {
                tags(OperationalCapability::ALL, OperationalCapability::tag)
            }
            AttributeType::SecurityDomains => tags(SecurityDomain::ALL, SecurityDomain::tag),
        }
    }
}

/// One control's attribute values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attributes {
    /// False while the values rest on third-party transcriptions, not the purchased standard.
    pub verified: bool,
    pub control_type: Vec<ControlType>,
    pub security_properties: Vec<SecurityProperty>,
    pub cybersecurity_concepts: Vec<CybersecurityConcept>,
    pub operational_capabilities: Vec<OperationalCapability>,
    pub security_domains: Vec<SecurityDomain>,
    /// Attribute types on which the transcriptions disagree, with what the other one says.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncertain: Vec<Uncertain>,
}

/// An attribute type whose values are in doubt (`[?]` in the reference).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uncertain {
    pub attribute: AttributeType,
    pub note: String,
}

impl Attributes {
    /// Whether the values of `attribute` are marked uncertain.
    pub fn is_uncertain(&self, attribute: AttributeType) -> bool {
        self.uncertain.iter().any(|u| u.attribute == attribute)
    }

    /// The values of one attribute type, as tags.
    pub fn tags(&self, attribute: AttributeType) -> Vec<&'static str> {
        match attribute {
            AttributeType::ControlType => self.control_type.iter().map(|v| v.tag()).collect(),
            AttributeType::SecurityProperties => {
                self.security_properties.iter().map(|v| v.tag()).collect()
            }
            AttributeType::CybersecurityConcepts => self
                .cybersecurity_concepts
                .iter()
                .map(|v| v.tag())
                .collect(),
            AttributeType::OperationalCapabilities => self
                .operational_capabilities
                .iter()
                .map(|v| v.tag())
                .collect(),
            AttributeType::SecurityDomains => {
                self.security_domains.iter().map(|v| v.tag()).collect()
            }
        }
    }
}
