//! Debian control-file syntax (deb822) shared by dpkg's status file, apt's `Packages` indexes,
//! `Release` files and apt preferences: stanzas separated by blank lines, `Field: value` lines,
//! continuation lines starting with a space or tab. Pure: bytes in, borrowed fields out.

/// Why a control file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("line {line}: not a `Field: value` line (corrupt file?)")]
    BadLine { line: usize },
    #[error("contains a NUL byte (binary or corrupt file)")]
    Binary,
    #[error("does not end with a newline (truncated file?)")]
    Truncated,
    #[error("field {field} is not valid UTF-8")]
    NotUtf8 { field: String },
}

/// One field of a stanza: its name and its first-line value, trimmed.
pub type Field<'a> = (&'a [u8], &'a [u8]);

/// Checks the whole-file properties: no NUL bytes, and a final newline when not empty.
pub fn check_file(data: &[u8]) -> Result<(), ControlError> {
    if memchr::memchr(0, data).is_some() {
        return Err(ControlError::Binary);
    }
    if !data.is_empty() && !data.ends_with(b"\n") {
        return Err(ControlError::Truncated);
    }
    Ok(())
}

/// Splits a file into stanzas (blank-line separated), each with the 1-based line it starts on.
pub fn stanzas(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut rest = data;
    let mut line = 1usize;
    std::iter::from_fn(move || {
        // Skip blank lines before the stanza.
        while let Some(stripped) = rest
            .strip_prefix(b"\n")
            .or_else(|| rest.strip_prefix(b"\r\n"))
        {
            rest = stripped;
            line += 1;
        }
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memmem::find(rest, b"\n\n")
            .map(|i| i + 1)
            .unwrap_or(rest.len());
        let (stanza, tail) = rest.split_at(end);
        let start = line;
        line += memchr::memchr_iter(b'\n', stanza).count();
        rest = tail;
        Some((start, stanza))
    })
}

/// The fields of one stanza (continuation lines are skipped: only first-line values are
/// needed here). `first_line` is used in errors.
pub fn fields(stanza: &[u8], first_line: usize) -> Result<Vec<Field<'_>>, ControlError> {
    let mut out = Vec::new();
    for (k, line) in stanza.split(|&c| c == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() || line[0] == b' ' || line[0] == b'\t' || line[0] == b'#' {
            continue;
        }
        let colon = memchr::memchr(b':', line).ok_or(ControlError::BadLine {
            line: first_line + k,
        })?;
        out.push((trim(&line[..colon]), trim(&line[colon + 1..])));
    }
    Ok(out)
}

/// The value of `name` (case-insensitive) among `fields`.
pub fn get<'a>(fields: &[Field<'a>], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| *v)
}

/// The value of `name` as text.
pub fn get_str<'a>(fields: &[Field<'a>], name: &str) -> Result<Option<&'a str>, ControlError> {
    get(fields, name)
        .map(|v| {
            std::str::from_utf8(v).map_err(|_| ControlError::NotUtf8 {
                field: name.to_string(),
            })
        })
        .transpose()
}

/// Trims ASCII whitespace on both ends.
pub fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stanzas_are_split_on_blank_lines_with_their_line_numbers() {
        let data = b"A: 1\nB: 2\n second\n\n\nC: 3\n";
        let got: Vec<_> = stanzas(data).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0, 6);
        let f = fields(got[0].1, got[0].0).unwrap();
        assert_eq!(f, vec![(&b"A"[..], &b"1"[..]), (&b"B"[..], &b"2"[..])]);
    }

    #[test]
    fn a_line_without_colon_is_an_error_with_its_line() {
        assert_eq!(
            fields(b"A: 1\ngarbage\n", 10),
            Err(ControlError::BadLine { line: 11 })
        );
    }

    #[test]
    fn a_missing_final_newline_means_truncated() {
        assert_eq!(check_file(b"A: 1\nB: 2"), Err(ControlError::Truncated));
        assert_eq!(check_file(b"A: \0\n"), Err(ControlError::Binary));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in any::<Vec<u8>>()) {
            let _ = check_file(&data);
            for (line, stanza) in stanzas(&data) {
                let _ = fields(stanza, line);
            }
        }
    }
}
