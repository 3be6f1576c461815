//! `/etc/group` lines -> [`GroupEntry`]: name, gid and the comma-separated member list.
//!
//! Pure: the collector reads the file through the host seam and hands the text here.

use evidence_protocol::facts::accounts::GroupEntry;

use super::colon_file::records;
use super::ParseError;

/// Parses `/etc/group`. Blank lines and `#` comments are skipped; any other line must have
/// four `:`-separated fields and a numeric gid.
pub fn parse(text: &str) -> Result<Vec<GroupEntry>, ParseError> {
    let mut entries = Vec::new();
    for record in records(text, 4) {
        let (line_no, fields) = record?;
        let gid = fields[2].parse::<u32>().map_err(|_| {
            ParseError::line(line_no, format!("gid {:?} is not a number", fields[2]))
        })?;
        let members = fields[3]
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        entries.push(GroupEntry {
            name: fields[0].to_string(),
            gid,
            members,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLEAN: &str = include_str!("../../tests/data/accounts/clean/etc/group");
    const MODIFIED: &str = include_str!("../../tests/data/accounts/modified/etc/group");

    fn group<'a>(entries: &'a [GroupEntry], name: &str) -> &'a GroupEntry {
        entries.iter().find(|g| g.name == name).unwrap()
    }

    #[test]
    fn debootstrap_sudo_group_is_empty() {
        let entries = parse(CLEAN).unwrap();
        let sudo = group(&entries, "sudo");
        assert_eq!(sudo.gid, 27);
        assert!(sudo.members.is_empty());
    }

    #[test]
    fn usermod_and_gpasswd_members_are_listed() {
        let entries = parse(MODIFIED).unwrap();
        assert_eq!(group(&entries, "sudo").members, ["bob"]);
        assert_eq!(group(&entries, "wheel").members, ["carol"]);
    }

    #[test]
    fn a_line_with_three_fields_is_an_error() {
        assert_eq!(
            parse("sudo:x:27\n").unwrap_err().to_string(),
            "line 1: expected 4 fields, found 3"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
