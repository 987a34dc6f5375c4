//! File transfer through commands: a tar archive into `tar -x`, `find` for listings, `cat`
//! for reads. Works on any image with a POSIX shell, GNU tar and GNU find; the archive is
//! written here, so no tar crate is needed.

use agent_runtime_api::{AdapterError, AdapterResult, FileStat, FileTree, RelPath};
use chrono::{DateTime, Utc};

/// `sh -c WRITE sh MODE DIR...`: creates the directories, gives each the mode before it
/// (`-` leaves it as it is), then unpacks stdin at `/`.
pub(crate) const WRITE: &str = r#"while [ $# -gt 1 ]; do mkdir -p -- "$2" || exit 1; if [ "$1" != - ]; then chmod "$1" -- "$2" || exit 1; fi; shift 2; done; exec tar -x -f - -C /"#;
/// `sh -c LIST sh DIR COUNT`: one `size mtime path\0` record per regular file, at most
/// COUNT of them; nothing when the directory is missing.
pub(crate) const LIST: &str =
    r#"cd -- "$1" 2>/dev/null || exit 0; find . -type f -printf '%s %T@ %P\0' | head -z -n "$2""#;
/// `sh -c READ sh FILE COUNT`: at most COUNT bytes of the file, or exit code [`MISSING`].
pub(crate) const READ: &str =
    r#"[ -f "$1" ] && exec head -c "$2" -- "$1"; echo "no such file: $1" >&2; exit 44"#;
/// The exit code of [`READ`] for a missing file.
pub(crate) const MISSING: i32 = 44;

const BLOCK: usize = 512;

/// A tree of files to place, and whether only their owner may read them.
pub(crate) struct Placed<'a> {
    /// The directory, absolute and normalized, as the configuration checks.
    pub(crate) dir: &'a str,
    /// The files.
    pub(crate) tree: &'a FileTree,
    /// Files 0600 (0700 if executable) and the directory 0700, rather than 0644 / 0755.
    pub(crate) owner_only: bool,
}

/// A tar archive of `trees`, each file stored at `{dir}/{path}` relative to `/`.
pub(crate) fn archive(trees: &[Placed<'_>]) -> AdapterResult<Vec<u8>> {
    let mut out = Vec::new();
    for placed in trees {
        let dir = placed.dir.trim_start_matches('/');
        for file in &placed.tree.files {
            let path = format!("{dir}/{}", file.path);
            let mode = match (placed.owner_only, file.executable) {
                (false, false) => 0o644,
                (false, true) => 0o755,
                (true, false) => 0o600,
                (true, true) => 0o700,
            };
            append(&mut out, &path, mode, &file.contents)?;
        }
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

fn append(out: &mut Vec<u8>, path: &str, mode: u32, contents: &[u8]) -> AdapterResult<()> {
    // Names over 100 bytes go in a PAX extended header, which GNU and BSD tar read.
    if path.len() > 100 {
        let record = pax_record("path", path);
        out.extend(header("././@PaxHeader", 0o644, record.len() as u64, b'x')?);
        push_padded(out, record.as_bytes());
    }
    let short: String = path
        .chars()
        .scan(0, |n, c| {
            *n += c.len_utf8();
            (*n <= 100).then_some(c)
        })
        .collect();
    out.extend(header(&short, mode, contents.len() as u64, b'0')?);
    push_padded(out, contents);
    Ok(())
}

fn push_padded(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
}

/// `"<len> key=value\n"`, where `<len>` counts the whole record including itself.
fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

fn header(name: &str, mode: u32, size: u64, kind: u8) -> AdapterResult<[u8; BLOCK]> {
    if size >= 1 << 33 {
        return Err(AdapterError::invalid_input(format!(
            "{name}: files of 8 GiB or more cannot be sent"
        )));
    }
    let mtime = Utc::now().timestamp().max(0) as u64;
    let mut block = [0u8; BLOCK];
    block[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut block[100..108], u64::from(mode));
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], mtime);
    block[156] = kind;
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|b| u32::from(*b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(block)
}

/// Zero-padded octal digits followed by a NUL, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(digits.as_bytes());
}

/// Parses the output of [`LIST`], sorted by path. Names that are not valid relative paths
/// (which the runtime could not address anyway) are skipped.
pub(crate) fn parse_listing(output: &[u8]) -> AdapterResult<Vec<FileStat>> {
    let mut stats = Vec::new();
    for record in output.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let text = String::from_utf8_lossy(record);
        let mut fields = text.splitn(3, ' ');
        let (Some(size), Some(mtime), Some(path)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(AdapterError::other(format!(
                "unexpected listing line {text:?}"
            )));
        };
        let size = size
            .parse()
            .map_err(|_| AdapterError::other(format!("bad size in {text:?}")))?;
        let Ok(path) = RelPath::new(path) else {
            tracing::debug!(
                path,
                "skipping a file whose name is not a valid relative path"
            );
            continue;
        };
        stats.push(FileStat {
            path,
            size,
            modified_at: parse_mtime(mtime),
        });
    }
    stats.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(stats)
}

/// `find`'s `%T@`: seconds since the epoch with a fraction.
fn parse_mtime(text: &str) -> DateTime<Utc> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let nanos: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(9)
        .collect();
    let secs = secs.parse().unwrap_or_default();
    DateTime::from_timestamp(secs, nanos.parse().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("path", "a"), "9 path=a\n");
        assert_eq!(pax_record("path", "abc"), "12 path=abc\n");
        let long = "x".repeat(95);
        let record = pax_record("path", &long);
        assert_eq!(record.len().to_string(), record.split(' ').next().unwrap());
    }

    #[test]
    fn archives_are_block_aligned_with_valid_checksums() {
        let mut tree = FileTree::default();
        tree.insert(RelPath::new("a.txt").unwrap(), b"hello".to_vec());
        let long = format!("{}/f.txt", "d".repeat(110));
        tree.insert(RelPath::new(&long).unwrap(), Vec::new());
        let placed = Placed {
            dir: "/ws",
            tree: &tree,
            owner_only: false,
        };
        let bytes = archive(&[placed]).unwrap();
        assert_eq!(bytes.len() % BLOCK, 0);
        assert_eq!(&bytes[..9], b"ws/a.txt\0");
        let header = &bytes[..BLOCK];
        let stored =
            u32::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        let sum: u32 = header
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        assert_eq!(stored, sum);
        assert_eq!(header[156], b'0');
        assert_eq!(
            bytes[2 * BLOCK + 156],
            b'x',
            "the long name gets a PAX header"
        );
    }

    #[test]
    fn parses_listings() {
        let out = b"4 1700000000.5000000000 b/c.txt\x000 1700000001 a.txt\x003 1 bad\\name\x00";
        let stats = parse_listing(out).unwrap();
        let paths: Vec<&str> = stats.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["a.txt", "b/c.txt"]);
        assert_eq!(stats[1].size, 4);
        assert_eq!(stats[1].modified_at.timestamp_subsec_millis(), 500);
        assert!(parse_listing(b"garbage\0").is_err());
    }
}
