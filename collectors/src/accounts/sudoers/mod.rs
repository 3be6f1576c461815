//! One sudoers file's text -> its items: user specifications (grants), `User_Alias`
//! definitions, include directives and `Defaults` that turn authentication off.
//!
//! Grammar followed (sudoers(5)): `User_List Host_List = [(Runas)] [TAG:]... Cmnd, ...
//! [: Host_List = ...]`; `\` continues a line; `#` starts a comment except in `#include`,
//! `#includedir` and `#uid`; `:` inside a command must be escaped, so an unescaped `:` outside
//! parentheses that does not end a tag separates host specifications. Runas and tags carry over
//! to the following commands of the same list. Pure: [`super::sudoers_tree`] follows the
//! includes and resolves aliases.

use evidence_protocol::facts::accounts::SudoCommand;

/// One parsed line of a sudoers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A user specification; `principals` as written.
    Grant {
        line: u32,
        principals: Vec<String>,
        commands: Vec<SudoCommand>,
    },
    UserAlias {
        name: String,
        members: Vec<String>,
    },
    /// `@include` / `#include` with its path as written.
    Include {
        line: u32,
        path: String,
    },
    /// `@includedir` / `#includedir` with its path as written.
    IncludeDir {
        line: u32,
        path: String,
    },
    /// A `Defaults` line containing `!authenticate`, as written.
    NoAuthenticate {
        line: u32,
        text: String,
    },
}

/// Parses one file into items, and `line N: why` for each line it cannot read.
pub fn parse(text: &str) -> (Vec<Item>, Vec<String>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (line_no, line) in logical_lines(text) {
        let line = strip_comment(&line);
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match parse_line(line, line_no) {
            Ok(mut parsed) => items.append(&mut parsed),
            Err(why) => errors.push(format!("line {line_no}: {why}")),
        }
    }
    (items, errors)
}

/// Joins `\`-continued lines; each logical line keeps the number of its first physical line.
fn logical_lines(text: &str) -> Vec<(u32, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(u32, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let (start, mut joined) = pending
            .take()
            .unwrap_or_else(|| (u32::try_from(index + 1).unwrap_or(u32::MAX), String::new()));
        let trailing = raw.len() - raw.trim_end_matches('\\').len();
        if trailing % 2 == 1 {
            joined.push_str(&raw[..raw.len() - 1]);
            joined.push(' ');
            pending = Some((start, joined));
        } else {
            joined.push_str(raw);
            lines.push((start, joined));
        }
    }
    lines.extend(pending);
    lines
}

/// Cuts a `#` comment, keeping `#include`/`#includedir` directives and `#<uid>` user ids.
fn strip_comment(line: &str) -> String {
    let trimmed = line.trim_start();
    if trimmed.starts_with("#include") {
        return trimmed.to_string();
    }
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut escaped = false;
    while let Some(c) = chars.next() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '#' && !chars.peek().is_some_and(char::is_ascii_digit) {
            break;
        }
        out.push(c);
    }
    out
}

fn parse_line(line: &str, line_no: u32) -> Result<Vec<Item>, String> {
    for (directive, dir) in [
        ("@includedir", true),
        ("#includedir", true),
        ("@include", false),
        ("#include", false),
    ] {
        if let Some(rest) = line.strip_prefix(directive) {
            if !rest.starts_with(char::is_whitespace) {
                continue;
            }
            let path = rest.trim().trim_matches('"').to_string();
            if path.is_empty() {
                return Err(format!("{directive} without a path"));
            }
            return Ok(vec![if dir {
                Item::IncludeDir {
                    line: line_no,
                    path,
                }
            } else {
                Item::Include {
                    line: line_no,
                    path,
                }
            }]);
        }
    }
    let first = line.split_whitespace().next().unwrap_or_default();
    if first.starts_with("Defaults") {
        let settings = line[first.len()..].split(',').map(str::trim);
        return Ok(settings
            .filter(|s| *s == "!authenticate")
            .take(1)
            .map(|_| Item::NoAuthenticate {
                line: line_no,
                text: line.to_string(),
            })
            .collect());
    }
    match first {
        "User_Alias" => return parse_user_aliases(line[first.len()..].trim()),
        "Runas_Alias" | "Host_Alias" | "Cmnd_Alias" | "Cmd_Alias" => return Ok(Vec::new()),
        _ => {}
    }
    parse_user_spec(line, line_no).map(|item| vec![item])
}

/// `NAME = a, b : NAME2 = c`.
fn parse_user_aliases(rest: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for definition in split_top_level(rest, ':') {
        let (name, members) = definition
            .split_once('=')
            .ok_or_else(|| format!("User_Alias {definition:?} has no '='"))?;
        let name = name.trim();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!("{name:?} is not an alias name"));
        }
        items.push(Item::UserAlias {
            name: name.to_string(),
            members: split_list(members),
        });
    }
    Ok(items)
}

fn parse_user_spec(line: &str, line_no: u32) -> Result<Item, String> {
    // The user list: comma-separated items, possibly with spaces around the commas.
    let mut principals = Vec::new();
    let mut rest = line;
    loop {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        principals.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start(),
            None => break,
        }
    }
    if principals.iter().any(|p| p.is_empty() || p.contains('=')) || rest.is_empty() {
        return Err(format!("not a sudoers rule: {line:?}"));
    }
    let mut commands = Vec::new();
    for host_spec in split_top_level(rest, ':') {
        let (hosts, list) = host_spec
            .split_once('=')
            .ok_or_else(|| format!("no '=' in {host_spec:?}"))?;
        let hosts = hosts.trim();
        if hosts.is_empty() {
            return Err(format!("no host list before '=' in {host_spec:?}"));
        }
        let mut runas: Option<String> = None;
        let mut nopasswd = false;
        for spec in split_top_level(list, ',') {
            let mut spec = spec.trim();
            if let Some(after) = spec.strip_prefix('(') {
                let close = after.find(')').ok_or("unclosed '(' in a runas list")?;
                runas = Some(after[..close].trim().to_string());
                spec = after[close + 1..].trim_start();
            }
            // Options (`ROLE=x`, `TIMEOUT=x`...) and tags (`NOPASSWD:`...), then the command.
            loop {
                let word_end = spec.find(char::is_whitespace).unwrap_or(spec.len());
                let word = &spec[..word_end];
                if let Some(tag) = tag_of(word) {
                    match tag {
                        "NOPASSWD" => nopasswd = true,
                        "PASSWD" => nopasswd = false,
                        _ => {}
                    }
                    spec = spec[tag.len() + 1..].trim_start();
                } else if is_option(word) {
                    spec = spec[word_end..].trim_start();
                } else {
                    break;
                }
            }
            if spec.is_empty() {
                return Err(format!(
                    "a command list entry in {host_spec:?} names no command"
                ));
            }
            commands.push(SudoCommand {
                hosts: hosts.to_string(),
                runas: runas.clone(),
                command: spec.to_string(),
                nopasswd,
            });
        }
    }
    Ok(Item::Grant {
        line: line_no,
        principals,
        commands,
    })
}

/// The command tags of sudoers(5); any other upper-case word is an alias name.
const TAGS: &[&str] = &[
    "NOPASSWD",
    "PASSWD",
    "NOEXEC",
    "EXEC",
    "SETENV",
    "NOSETENV",
    "LOG_INPUT",
    "NOLOG_INPUT",
    "LOG_OUTPUT",
    "NOLOG_OUTPUT",
    "MAIL",
    "NOMAIL",
    "FOLLOW",
    "NOFOLLOW",
    "INTERCEPT",
    "NOINTERCEPT",
];

/// `NOPASSWD` for a word starting `NOPASSWD:`.
fn tag_of(word: &str) -> Option<&str> {
    let (tag, _) = word.split_once(':')?;
    TAGS.contains(&tag).then_some(tag)
}

/// `ROLE=...`, `TYPE=...`, `CWD=...`, `TIMEOUT=...`: upper-case command options.
fn is_option(word: &str) -> bool {
    word.split_once('=').is_some_and(|(key, _)| {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    })
}

/// Splits on `sep` outside parentheses and not escaped; for `:` also not ending a tag word
/// (`NOPASSWD:`), a digest name (`sha256:`) or starting a `%:group`.
fn split_top_level(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                if sep == ':' && !separates_host_specs(&text[..at]) {
                    continue;
                }
                parts.push(&text[start..at]);
                start = at + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Whether a `:` after `before` separates specifications rather than ending a tag or digest.
fn separates_host_specs(before: &str) -> bool {
    if before.ends_with('%') {
        return false;
    }
    let word_start = before
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace() || c == ',' || c == ')' || c == '=')
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[word_start..];
    let is_digest = matches!(word, "sha224" | "sha256" | "sha384" | "sha512");
    !TAGS.contains(&word) && !is_digest
}

/// A comma-separated list, trimmed, empties dropped.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests;
