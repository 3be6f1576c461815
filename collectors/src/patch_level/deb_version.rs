//! Debian version ordering (`dpkg --compare-versions`, deb-version(7)): epoch, then the
//! upstream version, then the Debian revision, each part compared with dpkg's `verrevcmp`
//! (non-digit runs by a modified ASCII order where `~` sorts before everything, even the end,
//! then digit runs numerically). Used on versions from dpkg's status file and apt's indexes.

use std::cmp::Ordering;

/// Compares two Debian version strings the way dpkg and apt do. Never panics; malformed
/// versions are compared by the same rules, as apt does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a_epoch, a_upstream, a_revision) = split(a.trim().as_bytes());
    let (b_epoch, b_upstream, b_revision) = split(b.trim().as_bytes());
    verrevcmp(a_epoch, b_epoch)
        .then_with(|| verrevcmp(a_upstream, b_upstream))
        .then_with(|| verrevcmp(a_revision, b_revision))
}

/// Splits `[epoch:]upstream[-revision]`: the epoch ends at the first `:`, the revision starts
/// after the last `-`.
fn split(v: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let (epoch, rest) = match v.iter().position(|&c| c == b':') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (&b""[..], v),
    };
    match rest.iter().rposition(|&c| c == b'-') {
        Some(i) => (epoch, &rest[..i], &rest[i + 1..]),
        None => (epoch, rest, &b""[..]),
    }
}

/// dpkg's character weight for the non-digit parts.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` over one version part.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0usize, 0usize);
    let at = |s: &[u8], k: usize| s.get(k).copied();
    let is_digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
    while i < a.len() || j < b.len() {
        while (i < a.len() && !is_digit(at(a, i))) || (j < b.len() && !is_digit(at(b, j))) {
            let (ac, bc) = (order(at(a, i)), order(at(b, j)));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == Some(b'0') {
            i += 1;
        }
        while at(b, j) == Some(b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while is_digit(at(a, i)) && is_digit(at(b, j)) {
            if first_diff == Ordering::Equal {
                first_diff = at(a, i).cmp(&at(b, j));
            }
            i += 1;
            j += 1;
        }
        if is_digit(at(a, i)) {
            return Ordering::Greater;
        }
        if is_digit(at(b, j)) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tilde_sorts_before_everything_even_the_end() {
        assert_eq!(compare("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(compare("1.0~~", "1.0~"), Ordering::Less);
        assert_eq!(compare("1.0", "1.0+b1"), Ordering::Less);
    }

    #[test]
    fn epoch_outweighs_upstream_and_missing_parts_equal_zero() {
        assert_eq!(compare("1:0.1", "9.9"), Ordering::Greater);
        assert_eq!(compare("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(compare("1.0-0", "1.0"), Ordering::Equal);
        assert_eq!(compare("1.01", "1.1"), Ordering::Equal);
    }

    #[test]
    fn revision_is_after_the_last_hyphen() {
        assert_eq!(compare("1.2-3-4", "1.2-3-10"), Ordering::Less);
        assert_eq!(compare("2.6.1", "2.6.2"), Ordering::Less);
        assert_eq!(compare("5.2.15-2+b8", "5.2.15-2+b13"), Ordering::Less);
    }

    proptest! {
        #[test]
        fn never_panics_and_is_antisymmetric(a in any::<Vec<u8>>(), b in any::<Vec<u8>>()) {
            let a = String::from_utf8_lossy(&a);
            let b = String::from_utf8_lossy(&b);
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            prop_assert_eq!(compare(&a, &a), Ordering::Equal);
        }
    }
}
