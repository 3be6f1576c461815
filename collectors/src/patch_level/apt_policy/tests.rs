//! Unit tests of apt's pin priorities and candidate choice (`apt_policy`): NotAutomatic and
//! ButAutomaticUpgrades suites, preferences pins, the default release, and arbitrary bytes.

use super::*;
use proptest::prelude::*;

fn file(suite: &str, not_auto: bool, but_auto: bool) -> PackageFile {
    let release = Release {
        suite: Some(suite.into()),
        not_automatic: not_auto,
        but_automatic_upgrades: but_auto,
        ..Release::default()
    };
    PackageFile {
        release: Some(release),
        component: "main".into(),
        site: "deb.example.org".into(),
        arch: "amd64".into(),
        is_status: false,
    }
}

fn status() -> PackageFile {
    PackageFile {
        is_status: true,
        ..PackageFile::default()
    }
}

fn offer(version: &str, files: &[usize]) -> Offer {
    Offer {
        version: version.into(),
        files: files.to_vec(),
    }
}

/// The version apt picks for `package` (amd64, `installed` installed) among `offers`.
fn chosen(
    policy: &Policy,
    package: &str,
    installed: &str,
    offers: &mut [Offer],
    files: &[PackageFile],
) -> Option<String> {
    candidate(policy, package, "amd64", installed, offers, files).map(|o| o.version.clone())
}

#[test]
fn not_automatic_versions_are_not_candidates_but_automatic_upgrades_are() {
    let files = vec![
        status(),
        file("stable", false, false),
        file("experimental", true, false),
        file("backports", true, true),
    ];
    let policy = Policy::new(&files, &[], None);
    let mut offers = vec![offer("1.0", &[0, 1]), offer("3.0", &[2])];
    assert_eq!(
        chosen(&policy, "p", "1.0", &mut offers, &files),
        Some("1.0".into())
    );
    let mut offers = vec![offer("1.0", &[0, 1]), offer("2.0", &[3])];
    assert_eq!(
        chosen(&policy, "p", "1.0", &mut offers, &files),
        Some("1.0".into()),
        "the installed version from stable (500) beats ButAutomaticUpgrades (100)"
    );
    let mut offers = vec![offer("1.0", &[0]), offer("2.0", &[3])];
    assert_eq!(
        chosen(&policy, "p", "1.0", &mut offers, &files),
        Some("2.0".into())
    );
}

#[test]
fn pins_from_preferences_override_defaults() {
    let prefs = b"Explanation: hold\nPackage: p q*\nPin: version 1.*\nPin-Priority: 1001\n\nPackage: *\nPin: release a=experimental\nPin-Priority: 600\n";
    let pins = parse_preferences(prefs).unwrap();
    let files = vec![
        status(),
        file("stable", false, false),
        file("experimental", true, false),
    ];
    let policy = Policy::new(&files, &pins, None);
    let mut offers = vec![offer("2.0", &[0, 1]), offer("1.5", &[1])];
    assert_eq!(
        chosen(&policy, "qux", "2.0", &mut offers, &files),
        Some("1.5".into()),
        "1001 allows a downgrade"
    );
    let mut offers = vec![offer("1.0", &[0, 1]), offer("3.0", &[2])];
    assert_eq!(
        chosen(&policy, "r", "1.0", &mut offers, &files),
        Some("3.0".into())
    );
}

#[test]
fn default_release_gets_990_and_negative_pins_exclude() {
    let pins =
        parse_preferences(b"Package: r\nPin: origin deb.example.org\nPin-Priority: -1\n").unwrap();
    let files = vec![
        status(),
        file("stable", false, false),
        file("testing", false, false),
    ];
    let policy = Policy::new(&files, &[], Some("stable"));
    let mut offers = vec![offer("1.0", &[0, 1]), offer("3.0", &[2])];
    assert_eq!(
        chosen(&policy, "p", "1.0", &mut offers, &files),
        Some("1.0".into())
    );
    let policy = Policy::new(&files, &pins, None);
    let mut offers = vec![offer("3.0", &[2])];
    assert_eq!(chosen(&policy, "r", "1.0", &mut offers, &files), None);
}

#[test]
fn stanzas_apt_skips_are_skipped_and_a_missing_package_is_an_error() {
    let prefs = b"Package: *\nPin: release a=x\n\nPackage: a\nPin: bogus x\nPin-Priority: 5\n\nPackage: *\nPin: version 1*\nPin-Priority: 5\n\nPackage: b:i386\nPin: release stable\nPin-Priority: 700\n";
    let pins = parse_preferences(prefs).unwrap();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].kind, PinKind::Release(vec![('r', "stable".into())]));
    assert!(package_matches("b:i386", "b", "i386") && !package_matches("b:i386", "b", "amd64"));
    assert!(parse_preferences(b"Pin: release a=x\nPin-Priority: 5\n").is_err());
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(data in any::<Vec<u8>>(), pat in ".*", text in ".*") {
        let _ = parse_preferences(&data);
        let _ = glob(&pat, &text);
    }
}
