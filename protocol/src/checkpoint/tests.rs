//! Checkpoints and signed notes against published vectors, and every refusal.
//!
//! Vectors:
//! - golang/mod `sumdb/note/note_test.go`: the PeterNeumann and EnochRoot keys (verifier and
//!   private key strings), the signed note of `TestSign` and the two-signature note of
//!   `TestOpen`, with its malformed variants;
//! - transparency-dev/formats `log/note_test.go` (`TestSumDBNoteParsing`): a real checkpoint of
//!   the Go checksum database signed by `sum.golang.org+033de0ae+...`, and the test keys
//!   `Log`, `Known`, `KnownAgain`, `Unknown`, `monkeys`, `bananas`, `witness`;
//! - golang/mod `sumdb/tlog/note_test.go` (`TestFormatTree`): a tree note body whose root is the
//!   RFC 6962 leaf hash of "hello world";
//! - transparency-dev/formats `log/checkpoint_test.go` (`TestUnmarshalLogState`): malformed
//!   checkpoint bodies;
//! - C2SP `tlog-checkpoint.md`: the example body.

use proptest::prelude::*;

use super::note::{ED25519_SIGNATURE_TYPE, SIGNATURE_PREFIX};
use super::*;
use crate::merkle;

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// golang/mod `sumdb/note/note_test.go` `TestSign` / `TestOpen`.
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

/// transparency-dev/formats `log/note_test.go` `TestSumDBNoteParsing`.
const SUMDB_CHECKPOINT: &str = "go.sum database tree\n\
                                6476701\n\
                                mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n\
                                \n\
                                — sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n";

fn vkey(s: &str) -> (String, [u8; 32]) {
    parse_verifier_key(s).expect("a published verifier key")
}

/// The PeterNeumann signing key, from its sumdb/note private key string (0x01 || seed) and
/// public key, as the PKCS#8 v2 document ring reads (the layout `generate_pkcs8` writes:
/// 16 header bytes, the seed, 3 bytes, the public key).
fn peter_key() -> SigningKey {
    let seed = B64
        .decode(
            PETER_SKEY
                .strip_prefix("PRIVATE+KEY+PeterNeumann+c74f20a3+")
                .unwrap(),
        )
        .unwrap();
    assert_eq!(seed[0], ED25519_SIGNATURE_TYPE);
    let (_, public) = vkey(PETER_VKEY);
    let template = SigningKey::generate().unwrap().pkcs8().to_vec();
    assert_eq!(template.len(), 16 + 32 + 3 + 32);
    let doc = [&template[..16], &seed[1..], &template[48..51], &public].concat();
    let key = SigningKey::from_pkcs8(&doc).unwrap();
    assert_eq!(key.public_key(), public);
    key
}

fn key_and_note(checkpoint: &Checkpoint, name: &str) -> (SigningKey, String) {
    let key = SigningKey::generate().unwrap();
    let note = checkpoint.sign(&key, name).unwrap();
    (key, note)
}

fn example() -> Checkpoint {
    Checkpoint::new("evidence.example/log", 42, merkle::leaf_hash(b"the root"))
}

#[test]
fn published_verifier_keys_parse_with_their_key_ids_and_format_back() {
    let published = [
        PETER_VKEY,
        ENOCH_VKEY,
        SUMDB_VKEY,
        "Log+2271c621+AemuH5ooBpEPcr+W8onrjA1NfuzBVHdezakU81Ekarvs",
        "Known+451c786d+AXAQ0T7lbwuY4ABJ9/MYY9bWV3hmSyOGVt2x42NkmdUH",
        "KnownAgain+4893b26c+AQ+LR7BFF/F/dkpIBjBpSvT0crkteizuUkavAoGeaYMj",
        "Unknown+fdbb2e08+AWgRIYZ+8x1Vl+1Q+sR8zciNHiYI1SdlBjNw+RV0rots",
        "monkeys+db4d9f7e+AULaJMvTtDLHPUcUrjdDad9vDlh/PTfC2VV60JUtCfWT",
        "bananas+cf639f13+AaPjhFnPCQnid/Ql32KWhmh+uk72FVRfK+2DLmO3BI3M",
        "witness+f13a86db+AdYV1Ztajd9BvyjP2HgpwrqYL6TjOwIjGMOq8Bu42xbN",
    ];
    for s in published {
        let (name, public) = vkey(s);
        let id_hex = s.split('+').nth(1).unwrap();
        assert_eq!(hex::encode(key_id(&name, &public)), id_hex, "{s}");
        assert_eq!(verifier_key(&name, &public).unwrap(), s);
    }
}

/// golang/mod `TestNewVerifier`: every substring and every one-byte change is refused, and so
/// are a key of the wrong length and an unknown algorithm (each with a matching key ID).
#[test]
fn mangled_verifier_keys_are_refused() {
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if (i, j) != (0, b.len()) {
                let sub = std::str::from_utf8(&b[i..j]).unwrap();
                assert_eq!(
                    parse_verifier_key(sub),
                    Err(CheckpointError::BadVerifierKey)
                );
            }
        }
    }
    for i in 0..b.len() {
        let mut changed = b.to_vec();
        changed[i] += 1;
        let changed = String::from_utf8(changed).unwrap();
        assert!(parse_verifier_key(&changed).is_err(), "{changed}");
    }
    for bad in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ] {
        assert_eq!(
            parse_verifier_key(bad),
            Err(CheckpointError::BadVerifierKey)
        );
    }
}

#[test]
fn the_go_sumdb_signed_note_is_reproduced_byte_for_byte() {
    let want = format!("{GO_TEXT}\n{PETER_SIG}");
    assert_eq!(
        sign_note(GO_TEXT, &peter_key(), "PeterNeumann").unwrap(),
        want
    );
}

#[test]
fn the_go_two_signature_note_opens_with_either_key_and_ignores_the_other() {
    let (peter_name, peter) = vkey(PETER_VKEY);
    let (enoch_name, enoch) = vkey(ENOCH_VKEY);
    let note = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    assert_eq!(open_note(&note, &peter_name, &peter), Ok(GO_TEXT));
    assert_eq!(open_note(&note, &enoch_name, &enoch), Ok(GO_TEXT));
    // Repeated signatures by the key are accepted, as sumdb/note does.
    let repeated = format!("{GO_TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}");
    assert_eq!(open_note(&repeated, &peter_name, &peter), Ok(GO_TEXT));
    let only_enoch = format!("{GO_TEXT}\n{ENOCH_SIG}");
    assert_eq!(
        open_note(&only_enoch, &peter_name, &peter),
        Err(CheckpointError::NotSignedByKey {
            key_name: "PeterNeumann".into()
        })
    );
}

/// golang/mod `TestOpen`'s refusals: a corrupted signature, too many signatures and the
/// malformed messages (the invalid UTF-8 one cannot be a `&str`).
#[test]
fn the_go_malformed_notes_are_refused_each_for_its_reason() {
    let (name, peter) = vkey(PETER_VKEY);
    let corrupted = format!("{GO_TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        open_note(&corrupted, &name, &peter),
        Err(CheckpointError::BadSignature {
            key_name: "PeterNeumann".into()
        })
    );
    let many = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101));
    assert_eq!(
        open_note(&many, &name, &peter),
        Err(CheckpointError::TooManySignatures {
            count: 101,
            max: MAX_SIGNATURES
        })
    );
    let cases = [
        (GO_TEXT.to_string(), CheckpointError::NoSignatureBlock),
        (format!("{GO_TEXT}\n"), CheckpointError::NoSignatureBlock),
        (
            format!("{GO_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
            CheckpointError::SignatureBlockNotNewlineTerminated,
        ),
        (
            format!("\x01{GO_TEXT}\n{PETER_SIG}"),
            CheckpointError::ControlCharacter { offset: 0 },
        ),
        (
            format!("{GO_TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
            CheckpointError::MalformedSignatureLine { line: 1 },
        ),
        (
            format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
            CheckpointError::MalformedSignatureLine { line: 2 },
        ),
    ];
    for (note, err) in cases {
        assert_eq!(open_note(&note, &name, &peter), Err(err), "{note:?}");
    }
}

#[test]
fn the_published_sum_golang_org_checkpoint_verifies() {
    let (name, public) = vkey(SUMDB_VKEY);
    let checkpoint = verify_note(SUMDB_CHECKPOINT, &name, &public).unwrap();
    assert_eq!(checkpoint.origin, "go.sum database tree");
    assert_eq!(checkpoint.size, 6_476_701);
    assert_eq!(
        B64.encode(checkpoint.root.0),
        "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="
    );
    assert!(checkpoint.extensions.is_empty());
    assert_eq!(
        verify_note_from(SUMDB_CHECKPOINT, "go.sum database tree", &name, &public),
        Ok(checkpoint.clone())
    );
    assert_eq!(
        verify_note_from(SUMDB_CHECKPOINT, "Go rocks", &name, &public),
        Err(CheckpointError::WrongOrigin {
            expected: "Go rocks".into(),
            found: "go.sum database tree".into()
        })
    );
    // Re-signed by another key under the same name, it is refused.
    let (other, note) = key_and_note(&checkpoint, "sum.golang.org");
    assert_eq!(
        verify_note(&note, &name, &public),
        Err(CheckpointError::SignedByAnotherKey {
            key_name: "sum.golang.org".into()
        })
    );
    assert_eq!(
        verify_note(&note, &name, &other.public_key()),
        Ok(checkpoint)
    );
}

#[test]
fn the_published_checkpoint_with_a_changed_body_is_refused() {
    let (name, public) = vkey(SUMDB_VKEY);
    for (from, to) in [
        ("6476701", "6476702"),
        ("go.sum database tree", "go.sum database trea"),
        ("mb8QLQ", "mb8QLR"),
    ] {
        let changed = SUMDB_CHECKPOINT.replacen(from, to, 1);
        assert_eq!(
            verify_note(&changed, &name, &public),
            Err(CheckpointError::BadSignature {
                key_name: "sum.golang.org".into()
            }),
            "{to}"
        );
    }
}

#[test]
fn the_go_tlog_tree_body_is_formatted_and_parsed_exactly() {
    let golden =
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    let checkpoint = Checkpoint::new(
        "go.sum database tree",
        123_456_789_012,
        merkle::leaf_hash(b"hello world"),
    );
    assert_eq!(checkpoint.body(), golden);
    assert_eq!(Checkpoint::parse(golden), Ok(checkpoint.clone()));
    // Go ignores what follows the root; here it is an extension line, or refused unterminated.
    let mut extended = checkpoint;
    extended.extensions = vec!["JOE".into()];
    assert_eq!(Checkpoint::parse(&format!("{golden}JOE\n")), Ok(extended));
    assert_eq!(
        Checkpoint::parse(&format!("{golden}JOE")),
        Err(CheckpointError::TextNotNewlineTerminated)
    );
    for (bad, err) in [
        (
            "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
            CheckpointError::BadTreeSize("0xabcdef".into()),
        ),
        (
            "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n",
            CheckpointError::BadRootHash,
        ),
    ] {
        assert_eq!(Checkpoint::parse(bad), Err(err));
    }
}

#[test]
fn the_c2sp_example_checkpoint_body_parses_and_formats_back() {
    let body =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    let checkpoint = Checkpoint::parse(body).unwrap();
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size, 20_852_163);
    assert_eq!(checkpoint.body(), body);
}

/// transparency-dev/formats `TestUnmarshalLogState`'s invalid bodies, plus ours: each refused
/// with its reason (a 7-byte "root" is refused too: the root is a SHA-256 hash).
#[test]
fn malformed_checkpoint_bodies_are_refused_each_for_its_reason() {
    let root = "dGhlIHZpZXcgZnJvbSB0aGUgdHJlZSB0b3BzIGlzIGdyZWF0IQ==";
    let good_root = B64.encode([7u8; 32]);
    let cases: Vec<(String, CheckpointError)> = vec![
        ("Head\n9944\n".into(), CheckpointError::TooFewLines),
        (
            format!("\n9944\n{root}\n"),
            CheckpointError::EmptyLine { line: 1 },
        ),
        (
            "Log\n123\nYmFuYW5hcw==".into(),
            CheckpointError::TextNotNewlineTerminated,
        ),
        (
            format!("Log\nbananas\n{good_root}\n"),
            CheckpointError::BadTreeSize("bananas".into()),
        ),
        (
            format!("Log\n-34\n{good_root}\n"),
            CheckpointError::BadTreeSize("-34".into()),
        ),
        (
            format!("Log\n3438945738945739845734895735\n{good_root}\n"),
            CheckpointError::BadTreeSize("3438945738945739845734895735".into()),
        ),
        (
            "Log\n123\nThisIsn'tBase64\n".into(),
            CheckpointError::BadRootHash,
        ),
        (
            "Log\n123\nYmFuYW5hcw==\n".into(),
            CheckpointError::BadRootHash,
        ),
        (
            format!("Log\n9944\n{good_root}\n\n\n\n"),
            CheckpointError::EmptyLine { line: 4 },
        ),
        (
            format!("Log\n007\n{good_root}\n"),
            CheckpointError::BadTreeSize("007".into()),
        ),
        (
            format!("Log\n+5\n{good_root}\n"),
            CheckpointError::BadTreeSize("+5".into()),
        ),
        (
            format!("Log\n\n{good_root}\n"),
            CheckpointError::EmptyLine { line: 2 },
        ),
        (
            format!("Log\n18446744073709551616\n{good_root}\n"),
            CheckpointError::BadTreeSize("18446744073709551616".into()),
        ),
        (
            format!("Log\n5\n{good_root}\next\n\n"),
            CheckpointError::EmptyLine { line: 5 },
        ),
        (
            format!("Log\r\n5\n{good_root}\n"),
            CheckpointError::ControlCharacter { offset: 3 },
        ),
        // Not canonical: the last character carries non-zero padding bits.
        (
            "Log\n5\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwd=\n".into(),
            CheckpointError::BadRootHash,
        ),
        (
            format!("Log\n5\n{}\n", &good_root[..43]),
            CheckpointError::BadRootHash,
        ),
    ];
    for (body, err) in cases {
        assert_eq!(Checkpoint::parse(&body), Err(err), "{body:?}");
    }
    assert_eq!(
        Checkpoint::parse(&format!("Log\n0\n{good_root}\n"))
            .unwrap()
            .size,
        0
    );
    assert_eq!(
        Checkpoint::parse(&format!("Log\n18446744073709551615\n{good_root}\n"))
            .unwrap()
            .size,
        u64::MAX
    );
}

#[test]
fn a_signed_checkpoint_with_extensions_verifies_and_round_trips() {
    let mut checkpoint = example();
    checkpoint.extensions = vec!["time 2026-01-01T00:00:00Z".into(), "x".into()];
    let (key, note) = key_and_note(&checkpoint, "evidence.example/log");
    assert!(note.starts_with(&checkpoint.body()));
    assert_eq!(
        verify_note(&note, "evidence.example/log", &key.public_key()),
        Ok(checkpoint)
    );
}

#[test]
fn a_signature_by_another_key_or_name_is_not_the_logs_signature() {
    let checkpoint = example();
    let (_, note) = key_and_note(&checkpoint, "evidence.example/log");
    let log = SigningKey::generate().unwrap();
    assert_eq!(
        verify_note(&note, "evidence.example/log", &log.public_key()),
        Err(CheckpointError::SignedByAnotherKey {
            key_name: "evidence.example/log".into()
        })
    );
    let (_, by_witness) = key_and_note(&checkpoint, "witness.example");
    assert_eq!(
        verify_note(&by_witness, "evidence.example/log", &log.public_key()),
        Err(CheckpointError::NotSignedByKey {
            key_name: "evidence.example/log".into()
        })
    );
}

#[test]
fn a_cosignature_by_another_key_beside_the_logs_is_ignored() {
    let checkpoint = example();
    let (log, note) = key_and_note(&checkpoint, "log");
    let witness = SigningKey::generate().unwrap();
    let cosigned = sign_note(&checkpoint.body(), &witness, "witness").unwrap();
    let witness_line = cosigned.rsplit_once("\n\n").unwrap().1;
    let both = format!("{note}{witness_line}");
    assert_eq!(
        verify_note(&both, "log", &log.public_key()),
        Ok(checkpoint.clone())
    );
    assert_eq!(
        verify_note(&both, "witness", &witness.public_key()),
        Ok(checkpoint)
    );
}

#[test]
fn any_bad_signature_by_the_key_rejects_the_note_even_beside_a_good_one() {
    let checkpoint = example();
    let (key, note) = key_and_note(&checkpoint, "log");
    let body = checkpoint.body();
    let mut truncated = key_id("log", &key.public_key()).to_vec();
    truncated.extend_from_slice(&key.sign(body.as_bytes())[..10]);
    let mut forged = key_id("log", &key.public_key()).to_vec();
    forged.extend_from_slice(&key.sign(b"another text\n"));
    for extra in [truncated, forged] {
        let line = format!("{SIGNATURE_PREFIX}log {}\n", B64.encode(extra));
        let bad = format!("{note}{line}");
        assert_eq!(
            verify_note(&bad, "log", &key.public_key()),
            Err(CheckpointError::BadSignature {
                key_name: "log".into()
            })
        );
    }
}

#[test]
fn malformed_signature_lines_are_refused_with_their_line_number() {
    let checkpoint = example();
    let (key, note) = key_and_note(&checkpoint, "log");
    let body = checkpoint.body();
    let sig = note.rsplit_once(' ').unwrap().1.trim_end();
    for line in [
        format!("- log {sig}"),
        format!("—log {sig}"),
        format!("— log{sig}"),
        format!("— log {sig} "),
        format!("— lo+g {sig}"),
        format!("—  {sig}"),
        "— log AAAA".to_string(),
        "— log !!!!".to_string(),
        "— log".to_string(),
    ] {
        let bad = format!("{body}\n{PETER_SIG}{line}\n");
        assert_eq!(
            verify_note(&bad, "log", &key.public_key()),
            Err(CheckpointError::MalformedSignatureLine { line: 2 }),
            "{line:?}"
        );
    }
    // An empty line after the signatures is the last blank line: nothing follows it.
    let trailing_blank = format!("{note}\n");
    assert_eq!(
        verify_note(&trailing_blank, "log", &key.public_key()),
        Err(CheckpointError::NoSignatureBlock)
    );
}

#[test]
fn a_text_not_ending_in_a_newline_is_never_signed_or_accepted() {
    let key = SigningKey::generate().unwrap();
    assert_eq!(
        sign_note("abc", &key, "log"),
        Err(CheckpointError::TextNotNewlineTerminated)
    );
    let body = example().body();
    let unterminated = body.trim_end();
    assert_eq!(
        Checkpoint::parse(unterminated),
        Err(CheckpointError::TextNotNewlineTerminated)
    );
    // Without its final newline the body runs into the signature block: no blank line is left.
    let note = example().sign(&key, "log").unwrap();
    let joined = note.replacen(
        &format!("{unterminated}\n\n"),
        &format!("{unterminated}\n"),
        1,
    );
    assert_eq!(
        verify_note(&joined, "log", &key.public_key()),
        Err(CheckpointError::NoSignatureBlock)
    );
}

#[test]
fn over_long_notes_are_neither_produced_nor_accepted() {
    let key = SigningKey::generate().unwrap();
    let mut checkpoint = example();
    checkpoint.extensions = vec!["x".repeat(MAX_NOTE_LEN)];
    assert!(matches!(
        checkpoint.sign(&key, "log"),
        Err(CheckpointError::TooLong {
            max: MAX_NOTE_LEN,
            ..
        })
    ));
    let note = example().sign(&key, "log").unwrap();
    let padded = format!("{}{note}", "x\n".repeat(MAX_NOTE_LEN / 2));
    assert_eq!(
        verify_note(&padded, "log", &key.public_key()),
        Err(CheckpointError::TooLong {
            len: padded.len(),
            max: MAX_NOTE_LEN
        })
    );
}

#[test]
fn invalid_key_names_and_checkpoint_lines_are_refused_before_signing() {
    let key = SigningKey::generate().unwrap();
    for name in ["", "a+b", "a b", "a\u{a0}b", "a\tb"] {
        assert!(!is_valid_key_name(name));
        assert_eq!(
            example().sign(&key, name),
            Err(CheckpointError::InvalidKeyName)
        );
        assert_eq!(
            open_note(SUMDB_CHECKPOINT, name, &key.public_key()),
            Err(CheckpointError::InvalidKeyName)
        );
        assert_eq!(
            verifier_key(name, &key.public_key()),
            Err(CheckpointError::InvalidKeyName)
        );
    }
    assert!(is_valid_key_name("evidence.example/log"));
    let mut bad = example();
    bad.origin = String::new();
    assert_eq!(
        bad.sign(&key, "log"),
        Err(CheckpointError::EmptyLine { line: 1 })
    );
    bad.origin = "a\nb".into();
    assert_eq!(
        bad.sign(&key, "log"),
        Err(CheckpointError::NewlineInLine { line: 1 })
    );
    bad.origin = "a\u{7}b".into();
    assert_eq!(
        bad.sign(&key, "log"),
        Err(CheckpointError::ControlCharacter { offset: 1 })
    );
    let mut bad = example();
    bad.extensions = vec!["fine".into(), String::new()];
    assert_eq!(
        bad.sign(&key, "log"),
        Err(CheckpointError::EmptyLine { line: 5 })
    );
}

fn origin_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9./ -]{1,40}".prop_filter("non-empty", |s| !s.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_valid_checkpoint_signs_verifies_and_parses_back(
        origin in origin_strategy(),
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        extensions in proptest::collection::vec("[ -~]{1,30}", 0..4),
    ) {
        let checkpoint = Checkpoint { origin, size, root: Digest(root), extensions };
        prop_assert_eq!(Checkpoint::parse(&checkpoint.body()), Ok(checkpoint.clone()));
        let (key, note) = key_and_note(&checkpoint, "log");
        prop_assert_eq!(verify_note(&note, "log", &key.public_key()), Ok(checkpoint));
    }

    /// Any one character of a signed checkpoint changed, and it no longer verifies.
    #[test]
    fn any_changed_character_of_a_signed_checkpoint_is_refused(
        at in any::<prop::sample::Index>(),
        with in prop::char::range(' ', '~'),
    ) {
        let checkpoint = example();
        let key = peter_key();
        let note = checkpoint.sign(&key, "log").unwrap();
        let chars: Vec<char> = note.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != with);
        let mut changed = chars.clone();
        changed[i] = with;
        let changed: String = changed.into_iter().collect();
        prop_assert!(verify_note(&changed, "log", &key.public_key()).is_err(), "{:?}", changed);
    }

    /// Arbitrary text never panics the parser and never verifies.
    #[test]
    fn arbitrary_text_is_refused_without_panicking(text in "\\PC{0,400}|(.|\n){0,400}") {
        let (_, public) = vkey(PETER_VKEY);
        prop_assert!(verify_note(&text, "PeterNeumann", &public).is_err());
        let _ = Checkpoint::parse(&text);
    }
}
