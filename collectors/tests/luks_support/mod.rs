//! Shared by the `luks_*` tests: running cryptsetup, loop devices and mounts that clean up after
//! themselves (Drop guards, so a failing assertion does not leak them), and a parser of
//! `cryptsetup luksDump` text into the collector's `LuksHeader` for field-by-field comparison.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use evidence_protocol::facts::disk_encryption::{LuksHeader, LuksKeyslot, Pbkdf};

pub use evidence_tests::require;

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Runs a command, panicking with its stderr when it fails; returns stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn cryptsetup(args: &[&str]) -> String {
    run("cryptsetup", args)
}

/// A 20 MiB sparse image file.
pub fn image(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .set_len(20 << 20)
        .unwrap();
    path
}

/// The passphrase file for slot 0 of `image` (`<image>.key`), created on first use.
pub fn key_file(image: &Path) -> String {
    let key = image.with_extension("key");
    if !key.exists() {
        std::fs::write(&key, b"first passphrase").unwrap();
    }
    path_str(&key).to_string()
}

/// PBKDF2 at the minimum iteration count: fast key slots for tests (no benchmark run).
pub const FAST_PBKDF2: &[&str] = &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];

/// `luksFormat` options for a LUKS2 container with a [`FAST_PBKDF2`] key slot.
pub const LUKS2_FAST: &[&str] = &[
    "--type",
    "luks2",
    "--pbkdf",
    "pbkdf2",
    "--pbkdf-force-iterations",
    "1000",
];

/// `cryptsetup luksFormat` with `options`, keyed by [`key_file`].
pub fn format(image: &Path, options: &[&str]) {
    let key = key_file(image);
    let mut args = vec!["luksFormat", "-q", "--key-file", key.as_str()];
    args.extend_from_slice(options);
    args.push(path_str(image));
    cryptsetup(&args);
}

/// A new [`image`] `name` in `dir`, LUKS-formatted with `options`.
pub fn luks_image(dir: &Path, name: &str, options: &[&str]) -> PathBuf {
    let path = image(dir, name);
    format(&path, options);
    path
}

/// `cryptsetup luksAddKey` of a second passphrase, with `options`.
pub fn add_key(image: &Path, options: &[&str]) {
    let key = key_file(image);
    let second = image.with_extension("key2");
    std::fs::write(&second, b"second passphrase").unwrap();
    let mut args = vec!["luksAddKey", "-q", "--key-file", key.as_str()];
    args.extend_from_slice(options);
    args.push(path_str(image));
    args.push(path_str(&second));
    cryptsetup(&args);
}

/// `cryptsetup luksDump` of `device`, parsed.
pub fn luks_dump(device: &Path) -> LuksHeader {
    parse_luks_dump(&cryptsetup(&["luksDump", path_str(device)]))
}

/// A loop device attached to a file, detached on drop.
pub struct LoopDevice(PathBuf);

impl LoopDevice {
    pub fn attach(file: &Path) -> Self {
        let dev = run("losetup", &["-f", "--show", path_str(file)]);
        LoopDevice(PathBuf::from(dev.trim()))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Kernel name, e.g. `loop3`.
    pub fn name(&self) -> String {
        self.0.file_name().unwrap().to_string_lossy().into_owned()
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// A mounted filesystem, unmounted on drop.
pub struct Mounted(pub PathBuf);

impl Mounted {
    pub fn mount(device: &Path, on: &Path) -> Self {
        run("mount", &[path_str(device), path_str(on)]);
        Mounted(on.to_path_buf())
    }

    /// Mounts `device` on a new directory `<dir>/mnt`.
    pub fn mount_in(device: &Path, dir: &Path) -> Self {
        let mount_point = dir.join("mnt");
        std::fs::create_dir(&mount_point).unwrap();
        Mounted::mount(device, &mount_point)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// An open dm-crypt mapping, closed on drop.
pub struct CryptMapping(pub String);

impl Drop for CryptMapping {
    fn drop(&mut self) {
        let _ = Command::new("cryptsetup").args(["close", &self.0]).status();
    }
}

/// Parses `cryptsetup luksDump` (2.x) text for LUKS1 and LUKS2 into the fields the collector
/// reports.
pub fn parse_luks_dump(text: &str) -> LuksHeader {
    let field = |name: &str| -> Option<String> {
        text.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
    };
    let version: u16 = field("Version").expect("Version").parse().unwrap();
    let uuid = field("UUID").expect("UUID");
    if version == 1 {
        let hash = field("Hash spec").unwrap();
        let key_bits: u32 = field("MK bits").unwrap().parse().unwrap();
        let mut keyslots = Vec::new();
        let mut current: Option<u32> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("Key Slot ") {
                let (n, state) = rest.split_once(": ").unwrap();
                current = (state == "ENABLED").then(|| n.parse().unwrap());
            } else if let (Some(slot), Some(it)) =
                (current, line.trim().strip_prefix("Iterations:"))
            {
                keyslots.push(LuksKeyslot {
                    slot,
                    key_bits,
                    pbkdf: Pbkdf {
                        kind: "pbkdf2".into(),
                        hash: Some(hash.clone()),
                        iterations: Some(it.trim().parse().unwrap()),
                        time_cost: None,
                        memory_kib: None,
                        parallelism: None,
                    },
                });
            }
        }
        return LuksHeader {
            version,
            uuid,
            label: None,
            cipher: field("Cipher name").unwrap(),
            cipher_mode: field("Cipher mode").unwrap(),
            key_bits: Some(key_bits),
            hash,
            keyslots,
        };
    }
    // LUKS2: sections "Data segments:", "Keyslots:", "Tokens:", "Digests:".
    let mut section = "";
    let mut cipher = None;
    let mut digest_hash = None;
    let mut keyslots: Vec<LuksKeyslot> = Vec::new();
    for line in text.lines() {
        if !line.starts_with([' ', '\t']) && line.ends_with(':') {
            section = line.trim_end_matches(':');
            continue;
        }
        let trimmed = line.trim();
        let (key, value) = trimmed
            .split_once(':')
            .map(|(k, v)| (k.trim(), v.trim()))
            .unwrap_or((trimmed, ""));
        match section {
            "Data segments" if key == "cipher" && cipher.is_none() => {
                cipher = Some(value.to_string())
            }
            "Digests" if key == "Hash" && digest_hash.is_none() => {
                digest_hash = Some(value.to_string())
            }
            "Keyslots"
                if line.starts_with("  ")
                    && !line.starts_with("   ")
                    && !line.starts_with('\t') =>
            {
                keyslots.push(LuksKeyslot {
                    slot: key.parse().unwrap(),
                    key_bits: 0,
                    pbkdf: Pbkdf {
                        kind: String::new(),
                        hash: None,
                        iterations: None,
                        time_cost: None,
                        memory_kib: None,
                        parallelism: None,
                    },
                });
            }
            "Keyslots" => {
                let Some(slot) = keyslots.last_mut() else {
                    continue;
                };
                let number = || {
                    value
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .parse::<u32>()
                        .unwrap()
                };
                match key {
                    "Key" => slot.key_bits = number(),
                    "PBKDF" => slot.pbkdf.kind = value.to_string(),
                    "Hash" => slot.pbkdf.hash = Some(value.to_string()),
                    "Iterations" => slot.pbkdf.iterations = Some(number()),
                    "Time cost" => slot.pbkdf.time_cost = Some(number()),
                    "Memory" => slot.pbkdf.memory_kib = Some(number()),
                    "Threads" => slot.pbkdf.parallelism = Some(number()),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let cipher = cipher.expect("a data segment cipher");
    let (c, mode) = cipher.split_once('-').unwrap();
    let label = field("Label").filter(|l| l != "(no label)");
    LuksHeader {
        version,
        uuid,
        label,
        cipher: c.to_string(),
        cipher_mode: mode.to_string(),
        key_bits: keyslots.first().map(|k| k.key_bits),
        hash: digest_hash.expect("a digest hash"),
        keyslots,
    }
}
