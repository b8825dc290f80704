//! Secret settings read from files, so that a key or password can come from
//! a Docker secret (`/run/secrets/...`) instead of an environment variable
//! that `docker inspect` shows: `JWT_AUTH_KEY_FILE`, `DB_PASSWORD_FILE`,
//! `MQ_PASSWORD_FILE`, `DOCKER_AUTH_FILE` and `FERRITE_CALLBACK_KEY_FILE`. Each file's content, less one trailing newline, is the
//! secret. Every problem (both a setting and its file, an unreadable, empty
//! or oversized file, a URL that already has a password) stops the server at
//! start with one line that names the setting and never the secret.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ServerConfig;

/// Largest secret file read: far above any key or password, and small
/// enough that a wrong path (a log, a disk image) is refused at once.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Shortest `JWT_AUTH_KEY` that does not draw a warning: an HS256 key should
/// be as long as the hash (RFC 7518, section 3.2).
const RECOMMENDED_KEY_BYTES: usize = ServerConfig::RECOMMENDED_KEY_BYTES;

/// Why the secret settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("set JWT_AUTH_KEY or JWT_AUTH_KEY_FILE, not both")]
    KeyTwice,
    #[error("set DOCKER_AUTH or DOCKER_AUTH_FILE, not both")]
    DockerAuthTwice,
    #[error("set FERRITE_CALLBACK_KEY or FERRITE_CALLBACK_KEY_FILE, not both")]
    CallbackKeyTwice,
    #[error(
        "FERRITE_CALLBACK_KEY is shorter than {RECOMMENDED_KEY_BYTES} bytes: receivers trust what \
         it signs, so it must not be guessable"
    )]
    ShortCallbackKey,
    #[error(
        "{0} is empty: set a key (at least {RECOMMENDED_KEY_BYTES} bytes), or unset it to keep \
         /v1 to loopback clients"
    )]
    EmptyKey(&'static str),
    #[error("{setting} {}: cannot read it: {source}", path.display())]
    Unreadable {
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{setting} {}: larger than {MAX_SECRET_FILE_BYTES} bytes, not a secret", path.display())]
    TooLarge {
        setting: &'static str,
        path: PathBuf,
    },
    #[error("{setting} {}: the file is empty", path.display())]
    EmptyFile {
        setting: &'static str,
        path: PathBuf,
    },
    #[error("{file_setting} is set but {url_setting} already has a password: keep one of them")]
    PasswordTwice {
        file_setting: &'static str,
        url_setting: &'static str,
    },
    #[error("{file_setting} is set but {url_setting} {reason}")]
    NoPasswordHere {
        file_setting: &'static str,
        url_setting: &'static str,
        reason: String,
    },
}

impl ServerConfig {
    /// Shortest `JWT_AUTH_KEY` that does not draw a warning at start.
    pub const RECOMMENDED_KEY_BYTES: usize = 32;

    /// This configuration with its secret files read in: `jwt_auth_key` from
    /// JWT_AUTH_KEY_FILE, and the passwords of DB_URL and MQ_URL from their
    /// files, percent-encoded into the URLs. An empty key is refused here too.
    pub fn with_secret_files(mut self) -> Result<ServerConfig, SecretError> {
        if let Some(path) = self.jwt_auth_key_file.take() {
            if self.jwt_auth_key.is_some() {
                return Err(SecretError::KeyTwice);
            }
            self.jwt_auth_key = Some(read_secret("JWT_AUTH_KEY_FILE", &path)?);
        }
        if self.jwt_auth_key.as_deref() == Some("") {
            return Err(SecretError::EmptyKey("JWT_AUTH_KEY"));
        }
        if let Some(path) = self.db_password_file.take() {
            let password = read_secret("DB_PASSWORD_FILE", &path)?;
            if !self.db_url.starts_with("postgres") {
                return Err(SecretError::NoPasswordHere {
                    file_setting: "DB_PASSWORD_FILE",
                    url_setting: "DB_URL",
                    reason: "is not a postgres:// URL".to_string(),
                });
            }
            self.db_url = with_password(&self.db_url, &password, "DB_PASSWORD_FILE", "DB_URL")?;
        }
        if let Some(path) = self.mq_password_file.take() {
            let password = read_secret("MQ_PASSWORD_FILE", &path)?;
            let url = self.mq_url.as_deref().unwrap_or_default();
            if !url.starts_with("redis://") {
                return Err(SecretError::NoPasswordHere {
                    file_setting: "MQ_PASSWORD_FILE",
                    url_setting: "MQ_URL",
                    reason: "is not a redis:// URL".to_string(),
                });
            }
            self.mq_url = Some(with_password(url, &password, "MQ_PASSWORD_FILE", "MQ_URL")?);
        }
        if let Some(path) = self.docker_auth_file.take() {
            if self.docker_auth.is_some() {
                return Err(SecretError::DockerAuthTwice);
            }
            self.docker_auth = Some(read_secret("DOCKER_AUTH_FILE", &path)?);
        }
        if let Some(path) = self.callback_key_file.take() {
            if self.callback_key.is_some() {
                return Err(SecretError::CallbackKeyTwice);
            }
            self.callback_key = Some(read_secret("FERRITE_CALLBACK_KEY_FILE", &path)?);
        }
        if self
            .callback_key
            .as_ref()
            .is_some_and(|key| key.len() < RECOMMENDED_KEY_BYTES)
        {
            return Err(SecretError::ShortCallbackKey);
        }
        Ok(self)
    }

    /// The content of a secret file, less one trailing newline: the rule of
    /// every `*_FILE` setting, the server's and the CLI's (`setting` names it
    /// in errors).
    pub fn read_secret_file(setting: &'static str, path: &Path) -> Result<String, SecretError> {
        read_secret(setting, path)
    }

    /// Whether the management key is shorter than [`RECOMMENDED_KEY_BYTES`].
    pub fn jwt_auth_key_is_short(&self) -> bool {
        self.jwt_auth_key
            .as_ref()
            .is_some_and(|key| key.len() < RECOMMENDED_KEY_BYTES)
    }
}

/// The content of a secret file, less one trailing newline (`\n` or `\r\n`,
/// as `echo` and editors leave them).
fn read_secret(setting: &'static str, path: &Path) -> Result<String, SecretError> {
    let unreadable = |source| SecretError::Unreadable {
        setting,
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(SecretError::TooLarge {
            setting,
            path: path.to_path_buf(),
        });
    }
    let mut text = String::from_utf8(bytes).map_err(|_| {
        unreadable(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(SecretError::EmptyFile {
            setting,
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

/// `url` with `password` as the password of its user info, percent-encoded
/// (`redis://host/p` becomes `redis://:PASSWORD@host/p`).
fn with_password(
    url: &str,
    password: &str,
    file_setting: &'static str,
    url_setting: &'static str,
) -> Result<String, SecretError> {
    let unusable = |reason: String| SecretError::NoPasswordHere {
        file_setting,
        url_setting,
        reason,
    };
    let mut parsed = url::Url::parse(url)
        .map_err(|e| unusable(format!("is not a URL a password can be added to ({e})")))?;
    let in_query = parsed
        .query_pairs()
        .any(|(key, _)| key.eq_ignore_ascii_case("password"));
    if parsed.password().is_some() || in_query {
        return Err(SecretError::PasswordTwice {
            file_setting,
            url_setting,
        });
    }
    parsed
        .set_password(Some(password))
        .map_err(|()| unusable("has no host to log in to".to_string()))?;
    Ok(parsed.into())
}

#[cfg(test)]
mod tests {
    use crate::config::tests::config;

    fn file(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    #[test]
    fn passwords_go_into_the_urls_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let db = file(&dir, "db", "p@ss:w/rd\n");
        let mq = file(&dir, "mq", "r3dis\r\n");
        let config = config(&[
            "--db-url",
            "postgres://ferrite@127.0.0.1:5432/f?sslmode=disable",
            "--db-password-file",
            &db,
            "--mq-url",
            "redis://127.0.0.1:6379/prefix",
            "--mq-password-file",
            &mq,
        ])
        .with_secret_files()
        .unwrap();
        assert_eq!(
            config.db_url,
            "postgres://ferrite:p%40ss%3Aw%2Frd@127.0.0.1:5432/f?sslmode=disable"
        );
        assert_eq!(
            config.mq_url.as_deref(),
            Some("redis://:r3dis@127.0.0.1:6379/prefix")
        );
    }

    #[test]
    fn registry_credentials_come_from_one_place() {
        let dir = tempfile::tempdir().unwrap();
        let document = r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"}}}"#;
        let auth = file(&dir, "auth", &format!("{document}\n"));
        let read = config(&["--docker-auth-file", &auth])
            .with_secret_files()
            .unwrap();
        assert_eq!(read.docker_auth.as_deref(), Some(document));
        let twice = config(&["--docker-auth-file", &auth, "--docker-auth", document])
            .with_secret_files()
            .unwrap_err();
        assert!(matches!(twice, super::SecretError::DockerAuthTwice));
        let registry = config(&["--service-registry", "127.0.0.1:5000/team"]);
        assert_eq!(
            registry.service_registry.as_deref(),
            Some("127.0.0.1:5000/team")
        );
    }

    #[test]
    fn the_key_comes_from_one_place_and_is_never_empty() {
        let dir = tempfile::tempdir().unwrap();
        let key = file(&dir, "key", "0123456789abcdef0123456789abcdef\n");
        let read = config(&["--jwt-auth-key-file", &key])
            .with_secret_files()
            .unwrap();
        assert_eq!(
            read.jwt_auth_key.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert!(!read.jwt_auth_key_is_short());
        assert!(config(&["--jwt-auth-key", "short"]).jwt_auth_key_is_short());
        let fail = |args: &[&str]| config(args).with_secret_files().unwrap_err().to_string();
        assert_eq!(
            fail(&["--jwt-auth-key", "k", "--jwt-auth-key-file", &key]),
            "set JWT_AUTH_KEY or JWT_AUTH_KEY_FILE, not both"
        );
        assert!(fail(&["--jwt-auth-key", ""]).starts_with("JWT_AUTH_KEY is empty"));
        let empty = file(&dir, "empty", "\n");
        assert!(fail(&["--jwt-auth-key-file", &empty]).ends_with("the file is empty"));
        let missing = dir.path().join("missing").display().to_string();
        assert!(fail(&["--jwt-auth-key-file", &missing]).contains("cannot read it"));
        let big = file(&dir, "big", &"k".repeat(70 * 1024));
        assert!(fail(&["--jwt-auth-key-file", &big]).contains("not a secret"));
    }

    #[test]
    fn a_password_needs_a_url_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let pw = file(&dir, "pw", "hunter2");
        let fail = |args: &[&str]| config(args).with_secret_files().unwrap_err().to_string();
        for args in [
            ["--db-url", "postgres://u:old@h/db", "--db-password-file"],
            [
                "--db-url",
                "postgres://u@h/db?password=old",
                "--db-password-file",
            ],
            ["--mq-url", "redis://:old@h:6379/p", "--mq-password-file"],
        ] {
            let message = fail(&[args[0], args[1], args[2], &pw]);
            assert!(message.contains("already has a password"), "{message}");
            assert!(!message.contains("hunter2") && !message.contains("old"));
        }
        assert!(fail(&["--db-password-file", &pw]).contains("DB_URL is not a postgres:// URL"));
        assert!(fail(&["--mq-password-file", &pw]).contains("MQ_URL is not a redis:// URL"));
    }

    #[test]
    fn the_callback_key_comes_from_one_place_and_is_long() {
        let dir = tempfile::tempdir().unwrap();
        let key = file(&dir, "callback", "0123456789abcdef0123456789abcdef\n");
        let read = config(&["--callback-key-file", &key])
            .with_secret_files()
            .unwrap();
        assert_eq!(
            read.callback_key.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        let fail = |args: &[&str]| config(args).with_secret_files().unwrap_err().to_string();
        assert_eq!(
            fail(&["--callback-key", "k", "--callback-key-file", &key]),
            "set FERRITE_CALLBACK_KEY or FERRITE_CALLBACK_KEY_FILE, not both"
        );
        let short = fail(&["--callback-key", "shortkey"]);
        assert!(short.contains("shorter than 32 bytes"), "{short}");
        assert!(!short.contains("shortkey"), "{short}");
    }
}
