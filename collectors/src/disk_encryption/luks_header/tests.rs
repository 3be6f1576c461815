//! Unit tests of the LUKS header parser on headers written by `cryptsetup luksFormat` on this
//! machine (`collectors/tests/data/disk_encryption/luks/*.hdr`, their `luksDump` next to them).

use super::*;
use proptest::prelude::*;

const LUKS1: &[u8] =
    include_bytes!("../../../tests/data/disk_encryption/luks/luks1-pbkdf2-2slots.hdr");
const LUKS2: &[u8] = include_bytes!("../../../tests/data/disk_encryption/luks/luks2-pbkdf2.hdr");
const LUKS2_ARGON: &[u8] =
    include_bytes!("../../../tests/data/disk_encryption/luks/luks2-argon2id-slots0-3.hdr");

fn pbkdf2(iterations: u32) -> Pbkdf {
    Pbkdf {
        kind: "pbkdf2".into(),
        hash: Some("sha256".into()),
        iterations: Some(iterations),
        time_cost: None,
        memory_kib: None,
        parallelism: None,
    }
}

#[test]
fn luks1_header_yields_cipher_hash_and_both_active_slots() {
    let header = parse(LUKS1).unwrap();
    assert_eq!(header.version, 1);
    assert_eq!(header.uuid, "863c7f8f-b652-45d2-9016-a82a777223c1");
    assert_eq!(
        (header.cipher.as_str(), header.cipher_mode.as_str()),
        ("aes", "xts-plain64")
    );
    assert_eq!(header.key_bits, Some(512));
    assert_eq!(header.hash, "sha256");
    let slots: Vec<_> = header
        .keyslots
        .iter()
        .map(|k| (k.slot, k.pbkdf.clone()))
        .collect();
    assert_eq!(slots, vec![(0, pbkdf2(1000)), (1, pbkdf2(1000))]);
}

#[test]
fn luks2_argon2id_header_yields_label_and_per_slot_kdf() {
    let header = parse(LUKS2_ARGON).unwrap();
    assert_eq!(header.version, 2);
    assert_eq!(header.uuid, "0b4660e3-a00e-412e-a8c7-34d3e74ce45b");
    assert_eq!(header.label.as_deref(), Some("evidence-test"));
    assert_eq!(
        format!("{}-{}", header.cipher, header.cipher_mode),
        "aes-xts-plain64"
    );
    assert_eq!(header.key_bits, Some(512));
    assert_eq!(header.hash, "sha256");
    assert_eq!(header.keyslots.len(), 2);
    assert_eq!(header.keyslots[0].slot, 0);
    assert_eq!(
        header.keyslots[0].pbkdf,
        Pbkdf {
            kind: "argon2id".into(),
            hash: None,
            iterations: None,
            time_cost: Some(4),
            memory_kib: Some(32),
            parallelism: Some(1),
        }
    );
    assert_eq!(header.keyslots[1].slot, 3);
    assert_eq!(header.keyslots[1].pbkdf, pbkdf2(1000));
}

#[test]
fn luks2_without_label_has_none() {
    let header = parse(LUKS2).unwrap();
    assert_eq!(header.label, None);
    assert_eq!(header.uuid, "e932f034-091b-42bd-b6fa-0724996e7577");
}

#[test]
fn luks2_with_one_flipped_json_byte_fails_its_checksum() {
    let mut bytes = LUKS2.to_vec();
    bytes[LUKS2_BINARY_LEN + 20] ^= 0x01;
    assert!(matches!(parse(&bytes), Err(LuksError::Checksum(_))));
}

#[test]
fn truncated_headers_are_errors_naming_the_length() {
    assert_eq!(
        parse(&LUKS2[..8000]),
        Err(LuksError::Truncated {
            have: 8000,
            need: 16384
        })
    );
    assert_eq!(
        parse(&LUKS1[..300]),
        Err(LuksError::Truncated {
            have: 300,
            need: LUKS1_HEADER_LEN
        })
    );
    assert!(matches!(
        parse(&LUKS1[..7]),
        Err(LuksError::Truncated { .. })
    ));
}

#[test]
fn luks1_slot_with_unknown_state_is_corrupt() {
    let mut bytes = LUKS1.to_vec();
    bytes[208 + 48 * 5..208 + 48 * 5 + 4].copy_from_slice(&[1, 2, 3, 4]);
    assert!(matches!(parse(&bytes), Err(LuksError::Corrupt(m)) if m.contains("key slot 5")));
}

#[test]
fn other_bytes_and_versions_are_not_parsed() {
    assert_eq!(parse(&[0u8; 4096]), Err(LuksError::NotLuks));
    assert_eq!(parse(b""), Err(LuksError::NotLuks));
    let mut bytes = LUKS1.to_vec();
    bytes[7] = 3;
    assert_eq!(parse(&bytes), Err(LuksError::UnsupportedVersion(3)));
}

#[test]
fn read_device_reports_luks_plain_truncated_and_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(
        dir.path(),
        std::sync::Arc::new(crate::RecordedRunner::new()),
    );
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        format!("/{name}")
    };
    let luks = write("luks2", LUKS2_ARGON);
    assert!(matches!(read_device(&host, &luks), HeaderProbe::Luks(h) if h.keyslots.len() == 2));
    assert_eq!(
        read_device(&host, &write("zeros", &[0; 10000])),
        HeaderProbe::NoLuksHeader
    );
    assert_eq!(
        read_device(&host, &write("empty", b"")),
        HeaderProbe::NoLuksHeader
    );
    let HeaderProbe::Error { reason } = read_device(&host, &write("cut", &LUKS2[..5000])) else {
        panic!("a truncated header must be an error");
    };
    assert!(reason.contains("truncated"), "{reason}");
    assert!(matches!(read_device(&host, "/"), HeaderProbe::Error { .. }));
    assert!(matches!(
        read_device(&host, "/absent"),
        HeaderProbe::Error { .. }
    ));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
        let _ = parse(&bytes);
        let _ = needed_len(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_the_magic_never_panic(
        version in 0u16..4,
        rest in proptest::collection::vec(any::<u8>(), 0..5000),
    ) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&version.to_be_bytes());
        bytes.extend_from_slice(&rest);
        let _ = parse(&bytes);
    }

    #[test]
    fn mutated_real_headers_never_panic(
        at in 0usize..LUKS1_HEADER_LEN,
        byte in any::<u8>(),
        which in 0usize..3,
    ) {
        let source = [LUKS1, LUKS2, LUKS2_ARGON][which];
        let mut bytes = source.to_vec();
        bytes[at] = byte;
        if let Ok(header) = parse(&bytes) {
            prop_assert!(header.version == 1 || header.version == 2);
        }
    }

    #[test]
    fn luks2_json_area_mutations_are_caught_by_the_checksum(
        at in LUKS2_BINARY_LEN..16384usize,
        flip in 1u8..=255,
    ) {
        let mut bytes = LUKS2.to_vec();
        bytes[at] ^= flip;
        prop_assert!(matches!(parse(&bytes), Err(LuksError::Checksum(_))));
    }
}
