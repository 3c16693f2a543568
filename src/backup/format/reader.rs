//! Reading an export: one line at a time, each checked with the API's own
//! rules, remembering only what later lines must be checked against.

use super::*;

/// Where each thing was first seen, to refuse a second one naming both
/// lines. An association is remembered by a digest of its key and one of
/// its service account with their lines, not by the strings: 32 bytes
/// instead of the whole association, whatever order the file has.
#[derive(Default)]
struct Seen {
    /// Every cluster, with its line and how many associations it has.
    clusters: HashMap<ClusterName, ClusterSeen>,
    /// Whether associations are remembered (off for a file already checked).
    associations_off: bool,
    /// (cluster, association ID) -> line.
    ids: HashMap<Digest, Line32>,
    /// (cluster, namespace, service account) -> line.
    service_accounts: HashMap<Digest, Line32>,
}

struct ClusterSeen {
    line: u64,
    associations: u64,
}

/// 96 bits of SHA-256: two different keys among a billion agree with a
/// chance of about 10^-11, and an entry with its line takes 16 bytes.
type Digest = [u8; 12];

/// A line number as remembered: files of more than 4 billion lines show
/// the largest one.
type Line32 = u32;

/// A digest of `parts` that tells them apart from any other parts.
fn digest(parts: &[&str]) -> Digest {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    let bytes = hash.finalize();
    bytes[..12].try_into().expect("32 bytes")
}

/// One checked line of an export after its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Cluster(Cluster),
    Association(Association),
}

/// What a whole file holds, every line checked, without its associations:
/// what an import needs before it writes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    /// In file order.
    pub clusters: Vec<Cluster>,
    /// How many associations each cluster has in the file.
    pub counts: HashMap<ClusterName, u64>,
    pub associations: u64,
}

/// The lines of a file, each bounded by [`MAX_LINE_BYTES`].
struct Lines<R> {
    input: R,
    /// The number of the line in `buf`.
    number: u64,
    bytes_read: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// Reads the next line into `buf`, without its line end; false at the
    /// end of the input.
    fn next_line(&mut self) -> Result<bool, FileError> {
        self.buf.clear();
        // Every call reads at least one byte or reports the end.
        let n = (&mut self.input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(false);
        }
        self.number += 1;
        self.bytes_read += n as u64;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if n > MAX_LINE_BYTES {
            return Err(at(
                self.number,
                format!("the line is longer than {MAX_LINE_BYTES} bytes; no export line is"),
            ));
        }
        if self.buf.iter().all(u8::is_ascii_whitespace) {
            return Err(at(
                self.number,
                "the line is empty; every line is one JSON object",
            ));
        }
        Ok(true)
    }
}

/// Reads an export one line at a time, checking each. What it keeps is the
/// clusters' names and a digest per association (none at all
/// [`Reader::without_duplicate_checks`]), never the associations.
pub struct Reader<R> {
    lines: Lines<R>,
    identity: AwsIdentity,
    /// `limits.associations_per_cluster`.
    limit: u64,
    header: Header,
    seen: Seen,
    clusters: u64,
    associations: u64,
    ended: bool,
}

impl<R: BufRead> Reader<R> {
    /// Reads and checks the header; `limit` is the most associations a
    /// cluster may have (`limits.associations_per_cluster`).
    pub fn new(input: R, identity: &AwsIdentity, limit: u64) -> Result<Self, FileError> {
        let mut lines = Lines {
            input,
            number: 0,
            bytes_read: 0,
            buf: Vec::new(),
        };
        if !lines.next_line()? {
            return Err(FileError::Empty);
        }
        let header = parse_header(&lines.buf, identity)?;
        Ok(Reader {
            lines,
            identity: identity.clone(),
            limit,
            header,
            seen: Seen::default(),
            clusters: 0,
            associations: 0,
            ended: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Stops remembering associations, for a file already checked whole:
    /// a second ID or service account then goes unnoticed here (the store
    /// refuses a key given twice), and memory stays flat.
    pub fn without_duplicate_checks(mut self) -> Self {
        self.seen.associations_off = true;
        self
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.lines.bytes_read
    }

    /// The next cluster or association, checked; `None` after the end line
    /// once the input ends there.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, FileError> {
        loop {
            if !self.lines.next_line()? {
                if !self.ended {
                    return Err(FileError::Truncated {
                        lines: self.lines.number,
                    });
                }
                return Ok(None);
            }
            let number = self.lines.number;
            if self.ended {
                return Err(at(
                    number,
                    "a line after the end line; the end line is the last",
                ));
            }
            let line: Line = serde_json::from_slice(&self.lines.buf)
                .map_err(|e| at(number, json_problem(&e)))?;
            let problem = |e: DomainError| at(number, e.to_string());
            match line {
                Line::Cluster(line) => {
                    let cluster = line.parse(&self.identity).map_err(problem)?;
                    let seen = ClusterSeen {
                        line: number,
                        associations: 0,
                    };
                    if let Some(first) = self.seen.clusters.insert(cluster.name.clone(), seen) {
                        return Err(at(
                            number,
                            format!("cluster {} is already on line {}", cluster.name, first.line),
                        ));
                    }
                    self.clusters += 1;
                    return Ok(Some(Entry::Cluster(cluster)));
                }
                Line::Association(line) => {
                    let a = line.parse(&self.identity).map_err(problem)?;
                    check_association(&a, number, self.limit, &mut self.seen)?;
                    self.associations += 1;
                    return Ok(Some(Entry::Association(a)));
                }
                Line::End(end) => {
                    if (end.clusters, end.associations) != (self.clusters, self.associations) {
                        return Err(at(
                            number,
                            format!(
                                "the end line counts {} clusters and {} associations, but the \
                                 file has {} and {}; it is damaged, export again",
                                end.clusters, end.associations, self.clusters, self.associations
                            ),
                        ));
                    }
                    self.ended = true;
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Entry, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

/// Reads and checks a whole export, every line, keeping only its clusters
/// and counts. `progress` hears the number of bytes read after each line.
pub fn check(
    input: impl BufRead,
    identity: &AwsIdentity,
    limit: u64,
    mut progress: impl FnMut(u64),
) -> Result<Summary, FileError> {
    let mut reader = Reader::new(input, identity, limit)?;
    progress(reader.bytes_read());
    let mut clusters = Vec::new();
    let mut associations = 0;
    while let Some(entry) = reader.next_entry()? {
        match entry {
            Entry::Cluster(cluster) => clusters.push(cluster),
            Entry::Association(_) => associations += 1,
        }
        progress(reader.bytes_read());
    }
    progress(reader.bytes_read());
    let counts = reader
        .seen
        .clusters
        .into_iter()
        .map(|(name, seen)| (name, seen.associations))
        .collect();
    Ok(Summary {
        header: reader.header,
        clusters,
        counts,
        associations,
    })
}

/// Reads and checks a whole export, every line, and holds all of it: for
/// files known to be small.
pub fn read(
    input: impl BufRead,
    identity: &AwsIdentity,
    limit: u64,
) -> Result<ExportFile, FileError> {
    let mut reader = Reader::new(input, identity, limit)?;
    let mut clusters = Vec::new();
    let mut associations = Vec::new();
    while let Some(entry) = reader.next_entry()? {
        match entry {
            Entry::Cluster(cluster) => clusters.push(cluster),
            Entry::Association(a) => associations.push(a),
        }
    }
    Ok(ExportFile {
        header: reader.header,
        clusters,
        associations,
    })
}

/// An association may come only after its cluster, once per ID and once
/// per (namespace, service account) of its cluster, and no more than
/// `limit` in one cluster: what the store's keys, index and limit require.
fn check_association(
    a: &Association,
    number: u64,
    limit: u64,
    seen: &mut Seen,
) -> Result<(), FileError> {
    let Some(cluster) = seen.clusters.get_mut(&a.cluster) else {
        return Err(at(
            number,
            format!(
                "association {} is in cluster {}, which no earlier line declares (a cluster's \
                 line comes before its associations)",
                a.id, a.cluster
            ),
        ));
    };
    cluster.associations += 1;
    if cluster.associations > limit {
        return Err(at(
            number,
            format!(
                "cluster {} has more than {limit} associations, the most a cluster may have \
                 (limits.associations_per_cluster); import with a configuration that raises it",
                a.cluster
            ),
        ));
    }
    if seen.associations_off {
        return Ok(());
    }
    let line = Line32::try_from(number).unwrap_or(Line32::MAX);
    let id = digest(&[a.cluster.as_str(), a.id.as_str()]);
    if let Some(first) = seen.ids.insert(id, line) {
        return Err(at(
            number,
            format!(
                "association {} of cluster {} is already on line {first}",
                a.id, a.cluster
            ),
        ));
    }
    let slot = digest(&[
        a.cluster.as_str(),
        a.namespace.as_str(),
        a.service_account.as_str(),
    ]);
    if let Some(first) = seen.service_accounts.insert(slot, line) {
        return Err(at(
            number,
            format!(
                "cluster {} already has an association (line {first}) for namespace {} and \
                 service account {}; there can be only one",
                a.cluster, a.namespace, a.service_account
            ),
        ));
    }
    Ok(())
}
