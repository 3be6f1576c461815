//! The native LUKS header parser against real `cryptsetup luksFormat` output: image files and a
//! loop device, LUKS1 and LUKS2, PBKDF2 and Argon2id, extra and removed key slots. Every parsed
//! field must equal what `cryptsetup luksDump` prints for the same device.
//!
//! Needs `cryptsetup` (Debian: cryptsetup-bin); the loop-device test also needs root and
//! `losetup`. Skipped loudly when missing, a failure under CI.

mod luks_support;

use std::path::Path;

use evidence_collectors::disk_encryption::luks_header::{parse, read_device};
use evidence_collectors::Host;
use evidence_protocol::facts::disk_encryption::{HeaderProbe, LuksHeader};
use luks_support::*;

/// The header at `path` (an image file or a loop device), read through the live host.
fn read(path: &Path) -> HeaderProbe {
    read_device(&Host::live(), path.to_str().expect("UTF-8 path"))
}

fn parsed(path: &Path) -> LuksHeader {
    match read(path) {
        HeaderProbe::Luks(header) => header,
        other => panic!("{}: expected a LUKS header, got {other:?}", path.display()),
    }
}

#[test]
fn stored_headers_match_their_recorded_luks_dump() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/disk_encryption/luks");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "hdr") {
            let dump = std::fs::read_to_string(path.with_extension("luksDump")).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                parse(&bytes).unwrap(),
                parse_luks_dump(&dump),
                "{}",
                path.display()
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 3);
}

#[test]
fn luks1_image_with_two_slots_matches_luks_dump() {
    if !require(
        "luks1_image_with_two_slots_matches_luks_dump",
        false,
        &["cryptsetup"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = luks_image(
        dir.path(),
        "luks1.img",
        &[&["--type", "luks1"], FAST_PBKDF2].concat(),
    );
    add_key(&image, &["--pbkdf-force-iterations", "1200"]);
    let header = parsed(&image);
    assert_eq!(header, luks_dump(&image));
    assert_eq!(header.version, 1);
    let slots: Vec<_> = header.keyslots.iter().map(|k| k.slot).collect();
    assert_eq!(slots, vec![0, 1]);
    assert_eq!(header.keyslots[1].pbkdf.iterations, Some(1200));
}

#[test]
fn luks2_pbkdf2_image_with_an_added_and_a_killed_slot_matches_luks_dump() {
    let test = "luks2_pbkdf2_image_with_an_added_and_a_killed_slot_matches_luks_dump";
    if !require(test, false, &["cryptsetup"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = luks_image(
        dir.path(),
        "luks2.img",
        &[LUKS2_FAST, &["--hash", "sha512"]].concat(),
    );
    add_key(&image, &[&["--key-slot", "5"], FAST_PBKDF2].concat());
    let header = parsed(&image);
    assert_eq!(header, luks_dump(&image));
    assert_eq!(header.hash, "sha512");
    assert_eq!(
        header.keyslots.iter().map(|k| k.slot).collect::<Vec<_>>(),
        vec![0, 5]
    );

    // Killing slot 0 takes a passphrase that stays: the one added to slot 5.
    let remaining = image.with_extension("key2");
    cryptsetup(&[
        "luksKillSlot",
        "--key-file",
        path_str(&remaining),
        path_str(&image),
        "0",
    ]);
    let header = parsed(&image);
    assert_eq!(header, luks_dump(&image));
    assert_eq!(
        header.keyslots.iter().map(|k| k.slot).collect::<Vec<_>>(),
        vec![5]
    );
}

#[test]
fn luks2_argon2id_image_with_a_cipher_choice_matches_luks_dump() {
    let test = "luks2_argon2id_image_with_a_cipher_choice_matches_luks_dump";
    if !require(test, false, &["cryptsetup"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = luks_image(
        dir.path(),
        "argon.img",
        &[
            "--type",
            "luks2",
            "--pbkdf",
            "argon2id",
            "--pbkdf-memory",
            "64",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-parallel",
            "1",
            "--cipher",
            "aes-cbc-essiv:sha256",
            "--key-size",
            "256",
            "--label",
            "evidence",
        ],
    );
    let header = parsed(&image);
    assert_eq!(header, luks_dump(&image));
    assert_eq!(
        (header.cipher.as_str(), header.cipher_mode.as_str()),
        ("aes", "cbc-essiv:sha256")
    );
    assert_eq!(header.key_bits, Some(256));
    assert_eq!(header.keyslots[0].pbkdf.kind, "argon2id");
    assert_eq!(header.keyslots[0].pbkdf.memory_kib, Some(64));
}

#[test]
fn luks2_on_a_loop_device_matches_luks_dump_of_the_device() {
    let test = "luks2_on_a_loop_device_matches_luks_dump_of_the_device";
    if !require(test, true, &["cryptsetup", "losetup"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = luks_image(dir.path(), "loop.img", LUKS2_FAST);
    add_key(&image, FAST_PBKDF2);
    let device = LoopDevice::attach(&image);
    let header = parsed(device.path());
    assert_eq!(header, luks_dump(device.path()));
    assert_eq!(header.keyslots.len(), 2);
}

#[test]
fn a_truncated_real_header_is_an_error_entry() {
    if !require(
        "a_truncated_real_header_is_an_error_entry",
        false,
        &["cryptsetup"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = luks_image(dir.path(), "cut.img", LUKS2_FAST);
    let bytes = std::fs::read(&image).unwrap();
    let cut = dir.path().join("cut.hdr");
    std::fs::write(&cut, &bytes[..10_000]).unwrap();
    let HeaderProbe::Error { reason } = read(&cut) else {
        panic!("a header cut at 10000 bytes must be an error");
    };
    assert!(reason.contains("truncated"), "{reason}");
}
