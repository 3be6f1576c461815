//! Tests of the bundle format: determinism, the reader's limits and path rules, the chain
//! derivation and the CSV form.

use std::collections::BTreeMap;

use super::*;
use crate::checkpoint::open_note;
use crate::signing::SigningKey;
use crate::Digest;

fn manifest(origin: &str) -> BundleManifest {
    BundleManifest {
        format: FORMAT.into(),
        origin: origin.into(),
        server_key_id: "ed25519:00".into(),
        generator: "test".into(),
        selection: Selection::default(),
        period: Period {
            from: 1_764_633_600_000_000,
            to: 1_764_637_200_000_001,
        },
        catalog: CatalogIdentity {
            version: "0.1.0".into(),
            digest: Digest::of(b"catalog"),
        },
        stale_after_secs: 3600,
        checkpoint: TreeHead {
            size: 1,
            root: Digest::of(b"root"),
        },
        files: BTreeMap::new(),
    }
}

fn meta(log_index: u64, body: &[u8]) -> EntryMeta {
    EntryMeta {
        log_index,
        kind: EntryKind::Full,
        host_id: "h".into(),
        key_id: "k".into(),
        seq: Some(1),
        received_at: 1_764_633_600_000_001,
        digest: Digest::of(body),
        signature: None,
        inclusion: vec![],
    }
}

fn sample(key: &SigningKey) -> Vec<u8> {
    let mut w = BundleWriter::in_memory();
    w.add(FINAL_CHECKPOINT, b"note\n").unwrap();
    w.add(CONSISTENCY, b"[]").unwrap();
    w.add_entry(&meta(0, b"body"), b"body").unwrap();
    w.add(STATUS_JSON, b"[]").unwrap();
    w.finish(manifest("evidence-server/test"), key).unwrap()
}

#[test]
fn the_same_files_give_the_same_bytes_and_read_back_with_a_valid_manifest_signature() {
    let key = SigningKey::generate().unwrap();
    let a = sample(&key);
    assert_eq!(a, sample(&key));
    let bundle = Bundle::read(a.as_slice()).unwrap();
    assert_eq!(
        bundle.files.keys().collect::<Vec<_>>(),
        [
            "checkpoints/final.note",
            "consistency.json",
            "entries/00000000000000000000.body",
            "entries/00000000000000000000.json",
            "status.json"
        ]
    );
    for (name, bytes) in &bundle.files {
        assert_eq!(bundle.manifest.files[name], Digest::of(bytes), "{name}");
    }
    let text = open_note(
        &bundle.manifest_sig,
        "evidence-server/test",
        &key.public_key(),
    )
    .unwrap();
    assert_eq!(text, manifest_sig_text(&bundle.manifest_bytes));
    let entry: EntryMeta = bundle.json(&entry_meta_path(0)).unwrap();
    assert_eq!(entry, meta(0, b"body"));
    assert_eq!(bundle.to_archive().unwrap(), a);
}

#[test]
fn every_header_is_ustar_with_fixed_owner_mode_and_time_and_entries_are_sorted() {
    let key = SigningKey::generate().unwrap();
    let bytes = sample(&key);
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert!(h.as_ustar().is_some());
        assert_eq!(
            (
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap()
            ),
            (0o644, 0, 0, 0)
        );
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        names.push(String::from_utf8(entry.path_bytes().into_owned()).unwrap());
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names.contains(&"manifest.sig".to_string()));
}

fn raw_archive(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *bytes).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn the_reader_refuses_unexpected_paths_duplicates_escapes_and_links_naming_the_file() {
    let unexpected = raw_archive(&[("notes.txt", b"x")]);
    let err = Bundle::read(unexpected.as_slice()).unwrap_err();
    assert_eq!(err.to_string(), "unexpected file notes.txt");

    let dup = raw_archive(&[("chains.json", b"[]"), ("chains.json", b"[]")]);
    let err = Bundle::read(dup.as_slice()).unwrap_err();
    assert_eq!(err.to_string(), "file chains.json appears twice");

    // `append_data` refuses `..` itself; write the header by hand.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..14].copy_from_slice(b"../chains.json");
    h.set_size(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    let escape = b.into_inner().unwrap();
    let err = Bundle::read(escape.as_slice()).unwrap_err();
    assert!(
        matches!(err, BundleError::UnsafePath { ref name } if name == "../chains.json"),
        "{err}"
    );

    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "chains.json", "/etc/passwd").unwrap();
    let link = b.into_inner().unwrap();
    let err = Bundle::read(link.as_slice()).unwrap_err();
    assert!(err
        .to_string()
        .contains("chains.json is not a regular file"));

    let no_manifest = raw_archive(&[("chains.json", b"[]")]);
    let err = Bundle::read(no_manifest.as_slice()).unwrap_err();
    assert_eq!(err.to_string(), "missing file manifest.json");
}

#[test]
fn the_reader_refuses_a_file_over_its_limit_before_reading_it() {
    assert_eq!(
        max_file_bytes("entries/00000000000000000001.body"),
        MAX_FILE_BYTES
    );
    assert_eq!(max_file_bytes("findings.csv"), MAX_TABLE_BYTES);
    assert_eq!(
        max_file_bytes(MANIFEST),
        MAX_TABLE_BYTES,
        "it lists every file"
    );
    assert_eq!(max_file_bytes(MANIFEST_SIG), MAX_FILE_BYTES);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("findings.csv").unwrap();
    h.set_size(MAX_TABLE_BYTES + 1);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    // Only the header: the reader must stop at the size, not read on.
    b.get_mut().extend_from_slice(h.as_bytes());
    let bytes = b.into_inner().unwrap();
    let err = Bundle::read(bytes.as_slice()).unwrap_err();
    assert!(
        matches!(err, BundleError::FileTooLarge { ref name, .. } if name == "findings.csv"),
        "{err}"
    );
}

#[test]
fn the_writer_takes_files_in_path_order_and_only_bundle_paths() {
    let mut w = BundleWriter::in_memory();
    w.add(CONSISTENCY, b"[]").unwrap();
    assert!(matches!(
        w.add(CHAINS, b"[]"),
        Err(BundleError::OutOfOrder { .. })
    ));
    assert!(matches!(
        w.add("entries/1.json", b"{}"),
        Err(BundleError::UnexpectedFile { .. })
    ));
    assert!(matches!(
        w.add(MANIFEST, b"{}"),
        Err(BundleError::Reserved { .. })
    ));
}

#[test]
fn paths_parse_to_their_entry_or_checkpoint() {
    assert_eq!(
        parse_entry_path(&entry_meta_path(42)),
        Some(EntryFile::Meta(42))
    );
    assert_eq!(
        parse_entry_path(&entry_body_path(42)),
        Some(EntryFile::Body(42))
    );
    assert_eq!(
        parse_checkpoint_path(&checkpoint_path(7)),
        Some(CheckpointFile::Periodic(7))
    );
    assert_eq!(
        parse_checkpoint_path(FINAL_CHECKPOINT),
        Some(CheckpointFile::Final)
    );
    assert_eq!(parse_entry_path("entries/0000000000000000000x.json"), None);
    assert!(!is_bundle_path("checkpoints/1.note"));
}

#[test]
fn times_have_one_spelling_rfc3339_utc_with_microseconds() {
    let m = manifest("o");
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["period"]["from"], "2025-12-02T00:00:00.000000Z");
    assert_eq!(json["selection"]["from"], serde_json::Value::Null);
    let mut other = json.clone();
    other["period"]["from"] = "2025-12-02T00:00:00Z".into();
    assert!(serde_json::from_value::<BundleManifest>(other).is_err());
    assert_eq!(serde_json::from_value::<BundleManifest>(json).unwrap(), m);
}

fn link(seq: u64, prev: Option<Digest>, dropped: u64) -> ChainLink {
    ChainLink {
        seq,
        digest: Digest::of(&seq.to_be_bytes()),
        prev_digest: prev,
        dropped_reports: dropped,
    }
}

#[test]
fn an_unbroken_chain_has_no_gaps_and_each_discontinuity_is_stated() {
    let d = |s: u64| Some(Digest::of(&s.to_be_bytes()));
    let whole = [link(3, d(2), 0), link(1, None, 0), link(2, d(1), 0)];
    let chain = chain_of("h", &whole).unwrap();
    assert_eq!((chain.first_seq, chain.last_seq, chain.reports), (1, 3, 3));
    assert!(chain.gaps.is_empty());

    let broken = [link(1, None, 0), link(4, d(1), 2), link(5, None, 0)];
    let gaps = chain_of("h", &broken).unwrap().gaps;
    let kinds: Vec<_> = gaps
        .iter()
        .map(|g| (g.after_seq, g.before_seq, g.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, 4, GapKind::SeqGap),
            (1, 4, GapKind::DroppedReports),
            (4, 5, GapKind::PrevDigestMismatch),
        ]
    );
    assert!(gaps[0].detail.contains("2 missing"), "{}", gaps[0].detail);
    assert!(chain_of("h", &[]).is_none());
}

#[test]
fn csv_quotes_per_rfc4180_and_guards_formula_cells() {
    assert_eq!(csv_cell("plain"), "plain");
    assert_eq!(csv_cell("a,b"), "\"a,b\"");
    assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    assert_eq!(csv_cell("-1+2"), "'-1+2");
    assert_eq!(csv_cell("@a,b"), "\"'@a,b\"");
    let rows = [StatusRow {
        host_id: "h".into(),
        control: "8.20".into(),
        status: ControlVerdict::Fail,
        reason: Some("firewall: open,\nwide".into()),
        log_index: Some(3),
        report_digest: None,
    }];
    assert_eq!(
        String::from_utf8(status_csv(&rows)).unwrap(),
        "host_id,control,status,reason,log_index,report_digest\r\n\
         h,8.20,fail,\"firewall: open,\nwide\",3,\r\n"
    );
}
