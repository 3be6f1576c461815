//! `/etc/sudoers` and everything it includes -> [`Sudoers`]: follows `@include`,
//! `@includedir` (and their `#` spellings) the way sudo does, then expands `User_Alias`es.
//!
//! sudo's rules kept here: a relative include path is relative to the including file's
//! directory; `@includedir` reads the directory's files in lexical order, skipping names that
//! end in `~` or contain a `.`; includes nest at most 128 deep. Reading goes through the
//! closures the collector passes (the host seam), so this is testable on fixture trees.

use std::collections::{BTreeMap, BTreeSet};

use evidence_protocol::facts::accounts::{SudoGrant, Sudoers};

use super::sudoers::{parse, Item};

const MAX_DEPTH: usize = 128;
const MAX_ALIAS_DEPTH: usize = 32;

/// Why a path could not be read, and whether it was simply absent.
pub type ReadFailure = (String, bool);
type ReadFile<'a> = &'a mut dyn FnMut(&str) -> Result<String, ReadFailure>;
type ListDir<'a> = &'a mut dyn FnMut(&str) -> Result<Vec<String>, ReadFailure>;

/// How the tree reads files and lists directories.
pub struct Reader<'a> {
    pub read_file: ReadFile<'a>,
    pub list_dir: ListDir<'a>,
}

/// Reads `main` and its includes. Only an unreadable `main` is an `Err`; an unreadable or
/// unparsable include is recorded in [`Sudoers::errors`] and the rest is still read.
pub fn read(main: &str, reader: &mut Reader<'_>) -> Result<Sudoers, String> {
    let text = (reader.read_file)(main).map_err(|(why, _)| why)?;
    let mut state = State::default();
    state.visit_text(main, &text, 0, reader);
    let aliases = expand_aliases(&state.aliases);
    for grant in &mut state.sudoers.grants {
        grant.users = expand(&grant.principals, &aliases);
    }
    state.sudoers.user_aliases = aliases;
    Ok(state.sudoers)
}

#[derive(Default)]
struct State {
    sudoers: Sudoers,
    aliases: BTreeMap<String, Vec<String>>,
    seen: BTreeSet<String>,
}

impl State {
    fn visit_file(&mut self, path: &str, depth: usize, reader: &mut Reader<'_>) {
        if depth > MAX_DEPTH {
            self.sudoers
                .errors
                .push(format!("{path}: includes nested deeper than {MAX_DEPTH}"));
            return;
        }
        if !self.seen.insert(path.to_string()) {
            self.sudoers
                .errors
                .push(format!("{path}: included more than once (loop?)"));
            return;
        }
        match (reader.read_file)(path) {
            Ok(text) => self.visit_text(path, &text, depth, reader),
            Err((why, _)) => self.sudoers.errors.push(why),
        }
    }

    fn visit_text(&mut self, path: &str, text: &str, depth: usize, reader: &mut Reader<'_>) {
        self.seen.insert(path.to_string());
        self.sudoers.files.push(path.to_string());
        let (items, errors) = parse(text);
        self.sudoers
            .errors
            .extend(errors.into_iter().map(|e| format!("{path}: {e}")));
        for item in items {
            match item {
                Item::Grant {
                    line,
                    principals,
                    commands,
                } => self.sudoers.grants.push(SudoGrant {
                    file: path.to_string(),
                    line,
                    principals,
                    users: Vec::new(),
                    commands,
                }),
                Item::UserAlias { name, members } => {
                    self.aliases.insert(name, members);
                }
                Item::NoAuthenticate { line, text } => self
                    .sudoers
                    .no_authenticate_defaults
                    .push(format!("{path}:{line}: {text}")),
                Item::Include { line, path: target } => match resolve(path, &target) {
                    Some(target) => self.visit_file(&target, depth + 1, reader),
                    None => self.unresolvable(path, line, &target),
                },
                Item::IncludeDir { line, path: target } => match resolve(path, &target) {
                    Some(dir) => self.visit_dir(&dir, depth + 1, reader),
                    None => self.unresolvable(path, line, &target),
                },
            }
        }
    }

    fn visit_dir(&mut self, dir: &str, depth: usize, reader: &mut Reader<'_>) {
        let names = match (reader.list_dir)(dir) {
            Ok(names) => names,
            // sudo skips a missing include directory without complaint.
            Err((_, true)) => return,
            Err((why, false)) => return self.sudoers.errors.push(why),
        };
        let mut names: Vec<String> = names
            .into_iter()
            .filter(|n| !n.ends_with('~') && !n.contains('.'))
            .collect();
        names.sort();
        for name in names {
            self.visit_file(
                &format!("{}/{name}", dir.trim_end_matches('/')),
                depth,
                reader,
            );
        }
    }

    fn unresolvable(&mut self, path: &str, line: u32, target: &str) {
        self.sudoers.errors.push(format!(
            "{path}: line {line}: cannot resolve include {target:?} (host-specific escapes are not expanded)"
        ));
    }
}

/// An include path as an absolute path; `None` for `%h` (the host name) and other escapes.
fn resolve(including: &str, target: &str) -> Option<String> {
    if target.contains('%') {
        return None;
    }
    if target.starts_with('/') {
        return Some(target.to_string());
    }
    let dir = including.rsplit_once('/').map_or("", |(dir, _)| dir);
    Some(format!("{dir}/{target}"))
}

/// Every alias with nested aliases replaced by their members.
fn expand_aliases(aliases: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    aliases
        .iter()
        .map(|(name, members)| (name.clone(), expand_depth(members, aliases, 0)))
        .collect()
}

/// A user list with alias names replaced by their members (`!ALIAS` negates each member).
pub fn expand(principals: &[String], aliases: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    expand_depth(principals, aliases, 0)
}

fn expand_depth(
    principals: &[String],
    aliases: &BTreeMap<String, Vec<String>>,
    depth: usize,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for principal in principals {
        let (negated, name) = match principal.strip_prefix('!') {
            Some(name) => (true, name.trim_start()),
            None => (false, principal.as_str()),
        };
        let members = match aliases.get(name) {
            Some(members) if depth < MAX_ALIAS_DEPTH => expand_depth(members, aliases, depth + 1),
            _ => vec![name.to_string()],
        };
        for member in members {
            let member = if negated {
                format!("!{member}")
            } else {
                member
            };
            if !out.contains(&member) {
                out.push(member);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads from an in-memory tree; `None` content means "permission denied".
    fn read_tree(files: &[(&str, Option<&str>)]) -> Result<Sudoers, String> {
        let files: BTreeMap<String, Option<String>> = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.map(str::to_string)))
            .collect();
        let mut read_file = |path: &str| match files.get(path) {
            Some(Some(text)) => Ok(text.clone()),
            Some(None) => Err((format!("{path}: permission denied"), false)),
            None => Err((format!("{path}: not found"), true)),
        };
        let mut list_dir = |dir: &str| {
            let prefix = format!("{dir}/");
            let names: Vec<String> = files
                .keys()
                .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
                .collect();
            if names.is_empty() {
                Err((format!("{dir}: not found"), true))
            } else {
                Ok(names)
            }
        };
        read(
            "/etc/sudoers",
            &mut Reader {
                read_file: &mut read_file,
                list_dir: &mut list_dir,
            },
        )
    }

    #[test]
    fn an_unreadable_include_is_recorded_and_the_rest_is_still_read() {
        let sudoers = read_tree(&[
            (
                "/etc/sudoers",
                Some("@includedir /etc/sudoers.d\nroot ALL=(ALL) ALL\n"),
            ),
            ("/etc/sudoers.d/a", None),
            ("/etc/sudoers.d/b", Some("bob ALL=(ALL) NOPASSWD: ALL\n")),
        ])
        .unwrap();
        assert_eq!(sudoers.errors, ["/etc/sudoers.d/a: permission denied"]);
        let users: Vec<&str> = sudoers.grants.iter().map(|g| g.users[0].as_str()).collect();
        assert_eq!(users, ["bob", "root"]);
    }

    #[test]
    fn an_include_loop_a_host_escape_and_a_missing_include_dir_do_not_hang_or_fail() {
        let sudoers = read_tree(&[
            (
                "/etc/sudoers",
                Some("@include sudoers.local\n@include /etc/sudoers.%h\n@includedir /none\n"),
            ),
            ("/etc/sudoers.local", Some("#include /etc/sudoers\n")),
        ])
        .unwrap();
        assert_eq!(sudoers.files, ["/etc/sudoers", "/etc/sudoers.local"]);
        assert_eq!(sudoers.errors.len(), 2, "{:?}", sudoers.errors);
        assert!(sudoers.errors[0].contains("included more than once"));
        assert!(sudoers.errors[1].contains("cannot resolve include"));
    }

    #[test]
    fn an_unreadable_main_file_is_an_error() {
        let err = read_tree(&[("/etc/sudoers", None)]).unwrap_err();
        assert_eq!(err, "/etc/sudoers: permission denied");
    }

    #[test]
    fn nested_and_negated_aliases_expand_and_a_self_referencing_alias_stops() {
        let aliases = BTreeMap::from([
            ("A".to_string(), vec!["alice".to_string(), "B".to_string()]),
            (
                "B".to_string(),
                vec!["bob".to_string(), "%wheel".to_string()],
            ),
            ("LOOP".to_string(), vec!["LOOP".to_string()]),
        ]);
        let principals = ["A".to_string(), "!B".to_string(), "LOOP".to_string()];
        let users = expand(&principals, &aliases);
        assert_eq!(users, ["alice", "bob", "%wheel", "!bob", "!%wheel", "LOOP"]);
    }
}
