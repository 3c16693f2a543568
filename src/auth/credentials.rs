//! The key file: AWS's shared-credentials format (`[profile]` sections with
//! `aws_access_key_id` and `aws_secret_access_key`), so that the file the
//! server reads can also be the clients' `AWS_SHARED_CREDENTIALS_FILE`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Every access key of the file, with its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    secrets: HashMap<String, String>,
}

impl std::fmt::Debug for Credentials {
    // Never the secrets, wherever a `Credentials` ends up printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.secrets.keys().collect();
        ids.sort();
        f.debug_struct("Credentials")
            .field("access_key_ids", &ids)
            .finish()
    }
}

/// Why a key file was refused; each says which file and what to change.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read the credentials file {path} (auth.credentials_file): {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the credentials file {path} (auth.credentials_file) can be read by group or others \
         (mode {mode:04o}); it holds secret keys: chmod 600 it"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error("the credentials file {path} (auth.credentials_file) {problem}")]
    Invalid { path: PathBuf, problem: String },
}

impl Credentials {
    /// Reads and checks the file: it must exist, be readable by its owner
    /// only (as ssh insists for private keys), and hold at least one key
    /// pair, each access key ID once.
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        use std::os::unix::fs::PermissionsExt;
        let read = |source| CredentialsError::Read {
            path: path.to_owned(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(CredentialsError::Exposed {
                path: path.to_owned(),
                mode: mode & 0o7777,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(&text).map_err(|problem| CredentialsError::Invalid {
            path: path.to_owned(),
            problem,
        })
    }

    /// Parses the text of a shared-credentials file; `Err` says what is
    /// wrong, with its line number.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        struct Profile {
            name: String,
            line: usize,
            access_key_id: Option<(String, usize)>,
            secret: Option<String>,
        }
        let mut profiles: Vec<Profile> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[') {
                let Some(name) = name.strip_suffix(']') else {
                    return Err(format!(
                        "has a malformed section header on line {line_no}: write [profile-name]"
                    ));
                };
                profiles.push(Profile {
                    name: name.trim().to_owned(),
                    line: line_no,
                    access_key_id: None,
                    secret: None,
                });
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!(
                    "has a line that is neither a [profile] header nor key = value on line {line_no}"
                ));
            };
            let Some(profile) = profiles.last_mut() else {
                return Err(format!(
                    "has a setting before the first [profile] header on line {line_no}"
                ));
            };
            let value = value.trim();
            match key.trim() {
                "aws_access_key_id" => profile.access_key_id = Some((value.to_owned(), line_no)),
                "aws_secret_access_key" => profile.secret = Some(value.to_owned()),
                // Other settings (aws_session_token, region, …) are the clients' business.
                _ => {}
            }
        }
        let mut secrets = HashMap::new();
        let mut first_seen: HashMap<String, String> = HashMap::new();
        for profile in profiles {
            let (id, id_line, secret) = match (profile.access_key_id, profile.secret) {
                (None, None) => continue,
                (Some((id, line)), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                    (id, line, secret)
                }
                _ => {
                    return Err(format!(
                        "profile [{}] (line {}) needs both aws_access_key_id and \
                         aws_secret_access_key, each non-empty",
                        profile.name, profile.line
                    ))
                }
            };
            if let Some(other) = first_seen.get(&id) {
                return Err(format!(
                    "holds access key ID {id} twice, in profiles [{other}] and [{}] (line \
                     {id_line}): every key needs its own ID",
                    profile.name
                ));
            }
            first_seen.insert(id.clone(), profile.name);
            secrets.insert(id, secret);
        }
        if secrets.is_empty() {
            return Err(
                "holds no key: add a [profile] section with aws_access_key_id and \
                        aws_secret_access_key"
                    .to_owned(),
            );
        }
        Ok(Credentials { secrets })
    }

    /// The secret of an access key ID, if the file has it.
    pub fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.secrets.get(access_key_id).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const TWO_PROFILES: &str = "\
# keys of the test bed
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secret/default+1
region = us-east-1

; the admin
[admin]
aws_access_key_id=AKIDADMIN
aws_secret_access_key=secret-admin
";

    #[test]
    fn every_profile_with_a_key_pair_is_accepted() {
        let credentials = Credentials::parse(TWO_PROFILES).unwrap();
        assert_eq!(credentials.len(), 2);
        assert_eq!(credentials.secret("AKIDDEFAULT"), Some("secret/default+1"));
        assert_eq!(credentials.secret("AKIDADMIN"), Some("secret-admin"));
        assert_eq!(credentials.secret("AKIDOTHER"), None);
    }

    #[test]
    fn a_profile_without_keys_is_ignored_and_one_with_half_a_pair_refused() {
        let credentials =
            Credentials::parse("[settings]\nregion = eu-west-1\n[k]\naws_access_key_id = A\naws_secret_access_key = S\n")
                .unwrap();
        assert_eq!(credentials.len(), 1);
        let err = Credentials::parse("[k]\naws_access_key_id = A\n").unwrap_err();
        assert!(err.contains("profile [k] (line 1) needs both"), "{err}");
    }

    #[test]
    fn a_duplicate_access_key_id_is_refused_naming_both_profiles() {
        let err = Credentials::parse(
            "[a]\naws_access_key_id = AKID\naws_secret_access_key = one\n\
             [b]\naws_access_key_id = AKID\naws_secret_access_key = two\n",
        )
        .unwrap_err();
        assert!(
            err.contains("AKID twice, in profiles [a] and [b] (line 5)"),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_keys_is_refused() {
        for text in ["", "# nothing\n", "[default]\nregion = us-east-1\n"] {
            let err = Credentials::parse(text).unwrap_err();
            assert!(err.contains("holds no key"), "{text:?}: {err}");
        }
    }

    #[test]
    fn malformed_lines_are_refused_with_their_line_number() {
        let err = Credentials::parse("[default\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        let err = Credentials::parse("[a]\naws_access_key_id\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        let err = Credentials::parse("aws_access_key_id = A\n").unwrap_err();
        assert!(err.contains("before the first [profile]"), "{err}");
    }

    #[test]
    fn a_file_readable_by_group_or_others_is_refused_like_ssh_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, TWO_PROFILES).unwrap();
        for mode in [0o640, 0o604, 0o660, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = Credentials::load(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{mode:o}: {err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Credentials::load(&path).unwrap().len(), 2);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(Credentials::load(&path).unwrap().len(), 2);
    }

    #[test]
    fn a_missing_file_is_refused_naming_it() {
        let err = Credentials::load(Path::new("/nonexistent/credentials"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read the credentials file /nonexistent/credentials"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let credentials = Credentials::parse(TWO_PROFILES).unwrap();
        let shown = format!("{credentials:?}");
        assert!(shown.contains("AKIDADMIN"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
