//! `/var/log/lastlog` records -> last login per uid.
//!
//! The file is an array of fixed-size records indexed by uid (sparse: a uid that never logged
//! in reads as zeros). Layout on x86_64 glibc (`struct lastlog`, the 32-bit-time compat form):
//! `i32 ll_time` (little-endian Unix seconds), `char ll_line[32]`, `char ll_host[256]`, 292
//! bytes in all. Pure: the collector reads the bytes at `uid * RECORD_SIZE` and hands them here.

use evidence_protocol::facts::accounts::LastLogin;

/// Size of one `struct lastlog` record.
pub const RECORD_SIZE: usize = 292;
const LINE_SIZE: usize = 32;

/// Decodes one record; `None` when it records no login (time zero) or is not a whole record.
pub fn parse_record(record: &[u8]) -> Option<LastLogin> {
    if record.len() != RECORD_SIZE {
        return None;
    }
    let time = i32::from_le_bytes(record[0..4].try_into().ok()?);
    if time == 0 {
        return None;
    }
    Some(LastLogin {
        time: i64::from(time),
        line: c_string(&record[4..4 + LINE_SIZE]),
        host: c_string(&record[4 + LINE_SIZE..]),
        source: "lastlog".to_string(),
    })
}

/// Decodes the bytes read at `uid`'s offset (`uid * RECORD_SIZE`) of a file `file_len`
/// bytes long: a short read means the file ends inside the record, which is an error
/// (truncated); `Ok(None)` when the record holds no login.
pub fn decode_at(uid: u32, read: &[u8], file_len: u64) -> Result<Option<LastLogin>, String> {
    if read.len() < RECORD_SIZE {
        return Err(format!(
            "truncated: the record of uid {uid} ends past the file's {file_len} bytes"
        ));
    }
    Ok(parse_record(&read[..RECORD_SIZE]))
}

/// A NUL-padded C string field as text (invalid UTF-8 replaced).
pub(super) fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the collector does on the file: read the record at the uid's offset, if any.
    fn record_for(file: &[u8], uid: u32) -> Result<Option<LastLogin>, String> {
        let start = uid as usize * RECORD_SIZE;
        if start >= file.len() {
            return Ok(None);
        }
        let end = file.len().min(start + RECORD_SIZE);
        decode_at(uid, &file[start..end], file.len() as u64)
    }

    /// Written by `lastlog -S -u bob` (uid 1001) inside a debootstrap chroot.
    const LASTLOG: &[u8] = include_bytes!("../../tests/data/accounts/modified/var/log/lastlog");

    #[test]
    fn lastlog_s_records_bob_and_nobody_else() {
        assert_eq!(LASTLOG.len(), 1002 * RECORD_SIZE);
        let bob = record_for(LASTLOG, 1001).unwrap().unwrap();
        assert_eq!(bob.line, "lastlog");
        assert_eq!(bob.host, "localhost");
        // 2026-11-27, when the fixture was made.
        assert!(
            (1_795_000_000..1_796_000_000).contains(&bob.time),
            "{}",
            bob.time
        );
        for uid in [0, 1000, 1002, 65534] {
            assert_eq!(record_for(LASTLOG, uid).unwrap(), None, "uid {uid}");
        }
    }

    #[test]
    fn a_file_ending_inside_a_record_is_an_error() {
        let truncated = &LASTLOG[..1001 * RECORD_SIZE + 10];
        assert!(record_for(truncated, 1001)
            .unwrap_err()
            .starts_with("truncated"));
    }

    proptest! {
        #[test]
        fn parsing_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1200), uid in 0u32..8) {
            let _ = record_for(&bytes, uid);
            let _ = parse_record(&bytes);
        }
    }
}
