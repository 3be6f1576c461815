//! `/etc/crypttab` (`name device [key-file [options]]`) and `/etc/fstab`
//! (`spec mount-point type [options [dump [pass]]]`), parsed from the tree's text.
//!
//! These are configuration, not live state: they are read under `--root` too. An fstab entry
//! that mounts `/dev/mapper/<name>` with `<name>` in crypttab is marked with that mapping.

use std::collections::BTreeSet;

use evidence_protocol::facts::disk_encryption::{CrypttabEntry, FstabEntry};

use super::mounts::{unescape, TableError};

/// Parses `/etc/crypttab`; comments and blank lines are skipped.
pub fn parse_crypttab(text: &str) -> Result<Vec<CrypttabEntry>, TableError> {
    let mut entries = Vec::new();
    for (line_no, fields) in table_lines(text) {
        if fields.len() < 2 || fields.len() > 4 {
            return Err(TableError {
                file: "crypttab",
                line: line_no,
                reason: format!("expected 2 to 4 fields, found {}", fields.len()),
            });
        }
        entries.push(CrypttabEntry {
            name: fields[0].clone(),
            device: fields[1].clone(),
            key_file: fields.get(2).filter(|k| *k != "-" && *k != "none").cloned(),
            options: split_options(fields.get(3)),
        });
    }
    Ok(entries)
}

/// Parses `/etc/fstab`, marking entries that mount a crypttab mapping.
pub fn parse_fstab(text: &str, crypttab: &[CrypttabEntry]) -> Result<Vec<FstabEntry>, TableError> {
    let mappings: BTreeSet<&str> = crypttab.iter().map(|c| c.name.as_str()).collect();
    let mut entries = Vec::new();
    for (line_no, fields) in table_lines(text) {
        if fields.len() < 3 || fields.len() > 6 {
            return Err(TableError {
                file: "fstab",
                line: line_no,
                reason: format!("expected 3 to 6 fields, found {}", fields.len()),
            });
        }
        let crypttab_mapping = fields[0]
            .strip_prefix("/dev/mapper/")
            .filter(|name| mappings.contains(name))
            .map(str::to_string);
        entries.push(FstabEntry {
            spec: fields[0].clone(),
            mount_point: fields[1].clone(),
            fs_type: fields[2].clone(),
            options: split_options(fields.get(3)),
            crypttab_mapping,
        });
    }
    Ok(entries)
}

/// Non-comment lines split on whitespace, octal escapes undone, with 1-based line numbers.
fn table_lines(text: &str) -> impl Iterator<Item = (usize, Vec<String>)> + '_ {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim();
        (!line.is_empty() && !line.starts_with('#'))
            .then(|| (i + 1, line.split_whitespace().map(unescape).collect()))
    })
}

fn split_options(field: Option<&String>) -> Vec<String> {
    field
        .map(|f| {
            f.split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CRYPTTAB: &str = include_str!("../../tests/data/disk_encryption/luks_lvm/etc/crypttab");
    const FSTAB: &str = include_str!("../../tests/data/disk_encryption/luks_lvm/etc/fstab");

    #[test]
    fn crypttab_yields_names_devices_keys_and_options() {
        let entries = parse_crypttab(CRYPTTAB).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["vda3_crypt", "swap_plain", "vdc_data"]);
        assert_eq!(
            entries[0].device,
            "UUID=e932f034-091b-42bd-b6fa-0724996e7577"
        );
        assert_eq!(entries[0].key_file, None);
        assert_eq!(entries[0].options, vec!["luks", "discard"]);
        assert_eq!(entries[1].key_file.as_deref(), Some("/dev/urandom"));
        assert!(entries[1].options.contains(&"swap".to_string()));
    }

    #[test]
    fn fstab_marks_mounts_of_crypttab_mappings() {
        let crypttab = parse_crypttab(CRYPTTAB).unwrap();
        let fstab = parse_fstab(FSTAB, &crypttab).unwrap();
        let swap = fstab.iter().find(|e| e.fs_type == "swap").unwrap();
        assert_eq!(swap.crypttab_mapping.as_deref(), Some("swap_plain"));
        let root = fstab.iter().find(|e| e.mount_point == "/").unwrap();
        assert_eq!(root.spec, "/dev/mapper/vg-root");
        assert_eq!(
            root.crypttab_mapping, None,
            "LVM on LUKS: the LV is not the mapping"
        );
        assert_eq!(root.options, vec!["errors=remount-ro"]);
    }

    #[test]
    fn malformed_lines_are_errors_with_their_line() {
        let err = parse_crypttab("# c\nonly_one_field\n").unwrap_err();
        assert_eq!((err.file, err.line), ("crypttab", 2));
        assert!(parse_fstab("/dev/sda1 /\n", &[]).is_err());
        assert_eq!(parse_crypttab("").unwrap(), vec![]);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            if let Ok(crypttab) = parse_crypttab(&text) {
                let _ = parse_fstab(&text, &crypttab);
            }
        }
    }
}
