//! Tests of the sudoers line parser, on Debian's packaged file and a visudo-checked drop-in.

use super::*;
use proptest::prelude::*;

const DEBIAN: &str = include_str!("../../../tests/data/accounts/clean/etc/sudoers");
const OPS: &str = include_str!("../../../tests/data/accounts/modified/etc/sudoers.d/10-ops");
const CONTINUED: &str =
    include_str!("../../../tests/data/accounts/modified/etc/sudoers.d/sudoers.local-ops");

fn grants(items: &[Item]) -> Vec<(&[String], &[SudoCommand])> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Grant {
                principals,
                commands,
                ..
            } => Some((principals.as_slice(), commands.as_slice())),
            _ => None,
        })
        .collect()
}

fn command(hosts: &str, runas: Option<&str>, command: &str, nopasswd: bool) -> SudoCommand {
    SudoCommand {
        hosts: hosts.into(),
        runas: runas.map(str::to_string),
        command: command.into(),
        nopasswd,
    }
}

#[test]
fn debian_sudoers_grants_root_and_the_sudo_group_with_a_password_and_includes_sudoers_d() {
    let (items, errors) = parse(DEBIAN);
    assert!(errors.is_empty(), "{errors:?}");
    let all = [command("ALL", Some("ALL:ALL"), "ALL", false)];
    assert_eq!(
        grants(&items),
        [
            (&["root".to_string()][..], &all[..]),
            (&["%sudo".to_string()][..], &all[..])
        ]
    );
    assert!(items.contains(&Item::IncludeDir {
        line: 54,
        path: "/etc/sudoers.d".into()
    }));
}

#[test]
fn aliases_carried_tags_second_host_specs_defaults_and_includes_are_read() {
    let (items, errors) = parse(OPS);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(items.contains(&Item::UserAlias {
        name: "OPS".into(),
        members: vec!["carol".into(), "%wheel".into()]
    }));
    assert!(items.contains(&Item::UserAlias {
        name: "ALLOPS".into(),
        members: vec!["OPS".into(), "dave".into()]
    }));
    let found = grants(&items);
    assert_eq!(found[0].0, ["OPS"]);
    assert_eq!(
        found[0].1,
        [
            command("ALL", Some("root"), "RESTART", true),
            command("ALL", Some("root"), "/usr/bin/journalctl", true),
            command("ALL", Some("root"), "/usr/bin/apt", false),
        ]
    );
    assert_eq!(found[1].0, ["dave", "alice"]);
    assert_eq!(
        found[1].1,
        [
            command("ALL", Some("ALL"), "/usr/bin/id", false),
            command("otherhost", None, "/bin/ls", true),
        ]
    );
    assert!(items.contains(&Item::NoAuthenticate {
        line: 7,
        text: "Defaults:ALLOPS !authenticate".into()
    }));
    assert!(items.contains(&Item::Include {
        line: 8,
        path: "sudoers.local-ops".into()
    }));
}

#[test]
fn a_backslash_continues_a_rule_onto_the_next_line() {
    let (items, errors) = parse(CONTINUED);
    assert!(errors.is_empty(), "{errors:?}");
    let found = grants(&items);
    assert_eq!(
        found[0].1,
        [command("ALL", Some("ALL:ALL"), "/usr/bin/whoami", true)]
    );
}

#[test]
fn uids_escaped_colons_digests_and_hash_includes_are_not_comments_or_separators() {
    let text = "#1000 ALL = /bin/chown root\\:root /srv # why\n\
                %admin ALL = NOPASSWD: sha256:abcd /bin/ls, (ALL) /bin/cat\n\
                #includedir /etc/sudoers.d\n";
    let (items, errors) = parse(text);
    assert!(errors.is_empty(), "{errors:?}");
    let found = grants(&items);
    assert_eq!(found[0].0, ["#1000"]);
    assert_eq!(
        found[0].1,
        [command("ALL", None, "/bin/chown root\\:root /srv", false)]
    );
    assert_eq!(
        found[1].1,
        [
            command("ALL", None, "sha256:abcd /bin/ls", true),
            command("ALL", Some("ALL"), "/bin/cat", true),
        ]
    );
    assert!(items.contains(&Item::IncludeDir {
        line: 3,
        path: "/etc/sudoers.d".into()
    }));
}

#[test]
fn a_line_that_is_not_a_rule_is_an_error_and_the_rest_is_still_read() {
    let (items, errors) = parse("this is not sudoers\nroot ALL=(ALL) ALL\n");
    assert_eq!(errors, ["line 1: no '=' in \"is not sudoers\""]);
    assert_eq!(grants(&items).len(), 1);
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parse_never_panics_on_sudoers_like_text(text in "[a-z%!#@A-Z_ ,:=()\\\\\n/*]{0,120}") {
        let _ = parse(&text);
    }
}
