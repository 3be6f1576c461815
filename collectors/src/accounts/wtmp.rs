//! `/var/log/wtmp` (utmp records) -> each account's most recent login.
//!
//! Layout on x86_64 glibc (`struct utmp`, 384 bytes): `i16 ut_type` (+2 padding), `i32 ut_pid`,
//! `char ut_line[32]`, `char ut_id[4]`, `char ut_user[32]`, `char ut_host[256]`,
//! `i16 e_termination, e_exit`, `i32 ut_session`, `i32 tv_sec, tv_usec`, `i32 ut_addr_v6[4]`,
//! 20 unused bytes; integers little-endian. Only `USER_PROCESS` (7) records are logins.
//! Pure: the collector reads the file and hands the bytes here.

use std::collections::BTreeMap;

use evidence_protocol::facts::accounts::LastLogin;

use super::lastlog::c_string;

/// Size of one `struct utmp` record.
pub const RECORD_SIZE: usize = 384;
const USER_PROCESS: i16 = 7;

/// The latest login per user name. A file whose length is not a whole number of records is
/// corrupt or truncated, and an error.
pub fn last_logins(bytes: &[u8]) -> Result<BTreeMap<String, LastLogin>, String> {
    if !bytes.len().is_multiple_of(RECORD_SIZE) {
        return Err(format!(
            "{} bytes is not a whole number of {RECORD_SIZE}-byte utmp records",
            bytes.len()
        ));
    }
    let mut latest: BTreeMap<String, LastLogin> = BTreeMap::new();
    for record in bytes.chunks_exact(RECORD_SIZE) {
        let kind = i16::from_le_bytes([record[0], record[1]]);
        let user = c_string(&record[44..76]);
        if kind != USER_PROCESS || user.is_empty() {
            continue;
        }
        let time = i64::from(i32::from_le_bytes([
            record[340],
            record[341],
            record[342],
            record[343],
        ]));
        if latest.get(&user).is_some_and(|seen| seen.time >= time) {
            continue;
        }
        let login = LastLogin {
            time,
            line: c_string(&record[8..40]),
            host: c_string(&record[76..332]),
            source: "wtmp".to_string(),
        };
        latest.insert(user, login);
    }
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Written by `utmpdump -r` from `wtmp.utmpdump.txt`: bob's ssh session, its logout,
    /// dave on tty1 in 2025, a reboot record.
    const WTMP: &[u8] = include_bytes!("../../tests/data/accounts/modified/var/log/wtmp");

    #[test]
    fn user_process_records_give_the_latest_login_and_logouts_and_reboots_are_ignored() {
        let logins = last_logins(WTMP).unwrap();
        assert_eq!(logins.keys().collect::<Vec<_>>(), ["bob", "dave"]);
        let bob = &logins["bob"];
        assert_eq!(bob.time, 1_795_166_130); // 2026-11-20T09:15:30Z
        assert_eq!(bob.line, "pts/0");
        assert_eq!(bob.host, "192.0.2.10");
        assert_eq!(logins["dave"].time, 1_735_787_045); // 2025-01-02T03:04:05Z
        assert_eq!(logins["dave"].host, "");
    }

    #[test]
    fn the_later_of_two_logins_wins_whatever_the_order() {
        let mut twice = WTMP[..RECORD_SIZE].to_vec();
        let mut older = WTMP[..RECORD_SIZE].to_vec();
        older[340..344].copy_from_slice(&1_000_000_000i32.to_le_bytes());
        twice.extend_from_slice(&older);
        assert_eq!(last_logins(&twice).unwrap()["bob"].time, 1_795_166_130);
    }

    #[test]
    fn a_partial_record_is_an_error() {
        let err = last_logins(&WTMP[..RECORD_SIZE + 100]).unwrap_err();
        assert!(err.contains("not a whole number"), "{err}");
    }

    proptest! {
        #[test]
        fn parsing_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = last_logins(&bytes);
            let whole = bytes.len() / RECORD_SIZE * RECORD_SIZE;
            let _ = last_logins(&bytes[..whole]);
        }
    }
}
