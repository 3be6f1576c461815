//! apt's sources (sources.list(5)): one-line `deb [options] uri suite [component...]` files
//! (`/etc/apt/sources.list`, `sources.list.d/*.list`) and deb822 `*.sources` stanzas
//! (`Types`, `URIs`, `Suites`, `Components`, `Enabled`). apt reads only the lists of configured
//! sources, so a list file left behind by a removed source must not count; this module turns
//! each source into the list-file name prefixes apt derives from it (apt's `URItoFileName`:
//! scheme and credentials dropped, reserved characters %-quoted, `/` turned into `_`).

use super::control::{self, ControlError};

/// One `deb` source: repository URI, suite and components.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    pub uri: String,
    pub suite: String,
    pub components: Vec<String>,
}

impl Source {
    /// File-name prefixes of this source's `Packages` lists in the lists directory.
    pub fn list_prefixes(&self) -> Vec<String> {
        let uri = if self.uri.ends_with('/') {
            self.uri.clone()
        } else {
            format!("{}/", self.uri)
        };
        if self.suite.ends_with('/') {
            // Flat repository: `uri/suite/Packages`, no components.
            return vec![uri_to_file_name(&format!("{uri}{}", self.suite))];
        }
        let base = uri_to_file_name(&format!("{uri}dists/{}/", self.suite));
        self.components
            .iter()
            .map(|c| format!("{base}{}_", c.replace('/', "_")))
            .collect()
    }
}

/// apt's `URItoFileName`.
pub fn uri_to_file_name(uri: &str) -> String {
    let rest = match uri.split_once(':') {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'+') =>
        {
            rest
        }
        _ => uri,
    };
    let joined = match rest.strip_prefix("//") {
        // `host/path`, without `user:password@`.
        Some(authority) => {
            let (host, path) = authority
                .split_once('/')
                .map_or((authority, None), |(h, p)| (h, Some(p)));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            path.map_or_else(|| host.to_string(), |p| format!("{host}/{p}"))
        }
        None => rest.to_string(),
    };
    let mut out = String::with_capacity(joined.len());
    for c in joined.chars() {
        match c {
            '/' => out.push('_'),
            c if "\\|{}[]<>\"^~_=!@#$%&*".contains(c)
                || c.is_ascii_control()
                || c == ' '
                || !c.is_ascii() =>
            {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Parses a one-line-style file (`sources.list`, `*.list`).
pub fn parse_one_line(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace().peekable();
        if words.next() != Some("deb") {
            continue;
        }
        // Options: `[ a=b c=d ]`, possibly with spaces inside the brackets.
        if words.peek().is_some_and(|w| w.starts_with('[')) {
            for word in words.by_ref() {
                if word.ends_with(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(Source {
            uri: uri.to_string(),
            suite: suite.to_string(),
            components: words.map(str::to_string).collect(),
        });
    }
    out
}

/// Parses a deb822 `*.sources` file.
pub fn parse_deb822(data: &[u8]) -> Result<Vec<Source>, ControlError> {
    control::check_file(data)?;
    let mut out = Vec::new();
    for (line, stanza) in control::stanzas(data) {
        let fields = control::fields(stanza, line)?;
        let list = |name: &str| -> Result<Vec<String>, ControlError> {
            Ok(control::get_str(&fields, name)?
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect())
        };
        let enabled =
            control::get_str(&fields, "Enabled")?.is_none_or(|v| !v.eq_ignore_ascii_case("no"));
        if !enabled || !list("Types")?.iter().any(|t| t == "deb") {
            continue;
        }
        let components = list("Components")?;
        for uri in list("URIs")? {
            for suite in list("Suites")? {
                out.push(Source {
                    uri: uri.clone(),
                    suite,
                    components: components.clone(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn deb822_sources_give_apt_list_file_prefixes() {
        let text = b"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb\nEnabled: no\nURIs: http://x/\nSuites: y\nComponents: z\n";
        let sources = parse_deb822(text).unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(
            sources[0].list_prefixes(),
            vec!["deb.debian.org_debian_dists_bookworm_main_"]
        );
        assert_eq!(
            sources[1].list_prefixes(),
            vec!["deb.debian.org_debian_dists_bookworm-updates_main_"]
        );
    }

    #[test]
    fn one_line_sources_with_options_flat_repos_and_credentials() {
        let text = "# comment\ndeb [arch=amd64 signed-by=/k.gpg] https://user:pw@packages.cloud.google.com/apt cloud-sdk-bookworm main contrib\ndeb-src http://a b c\ndeb [ trusted=yes ] file:/srv/repo ./\n";
        let sources = parse_one_line(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(
            sources[0].list_prefixes(),
            vec![
                "packages.cloud.google.com_apt_dists_cloud-sdk-bookworm_main_",
                "packages.cloud.google.com_apt_dists_cloud-sdk-bookworm_contrib_"
            ]
        );
        assert_eq!(sources[1].list_prefixes(), vec!["_srv_repo_._"]);
        assert_eq!(
            uri_to_file_name("http://deb.example.org/my_repo/dists/x~y/"),
            "deb.example.org_my%5frepo_dists_x%7ey_"
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_input(data in any::<Vec<u8>>()) {
            let _ = parse_deb822(&data);
            for s in parse_one_line(&String::from_utf8_lossy(&data)) {
                let _ = s.list_prefixes();
            }
        }
    }
}
