//! Who may call the function: only Ferrite.
//!
//! A service's task is reachable by every container on its overlay network.
//! Ferrite gives each service a random key (`FERRITE_WATCHDOG_KEY`, set on
//! the service) and sends it with every call it forwards
//! (`Ferrite-Watchdog-Key`); the watchdog compares it in constant time and
//! refuses any other call before the function runs, so nothing on the
//! network can skip a route's `jwt_key` or forge the call's `Fn-*` facts.
//!
//! The key must stay out of the function's reach too: the header is removed
//! before the function sees the request, the variable is removed from the
//! function's environment ([`crate::children`]), and the watchdog's process
//! is made non-dumpable ([`lock_down`]), so that a function running as the
//! same user cannot read it from `/proc/<watchdog>/environ` or its memory,
//! nor reach the watchdog's sockets through `/proc/<watchdog>/fd`.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use ferrite_wire::headers::{KEY_REFUSED_HEADER, WATCHDOG_KEY_ENV, WATCHDOG_KEY_HEADER};
use subtle::ConstantTimeEq;

use crate::respond;

/// Whom calls are taken from.
#[derive(Clone)]
pub enum Access {
    /// Callers that send this key: Ferrite.
    Key(String),
    /// Anyone (`--no-key`, for a service image run by hand).
    Open,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Key(_) => f.write_str("Key(..)"),
            Access::Open => f.write_str("Open"),
        }
    }
}

/// The watchdog was started with neither a key nor `--no-key`.
#[derive(Debug, thiserror::Error)]
#[error("{WATCHDOG_KEY_ENV} is not set: a service's watchdog takes calls only from Ferrite, which sets the key on the services it makes; to take calls from anyone (a service image run by hand), pass --no-key (FERRITE_WATCHDOG_NO_KEY=true)")]
pub struct NoKey;

impl Access {
    /// The key when one is set (it always wins: `--no-key` only matters
    /// without one, so a route's config cannot open a service Ferrite made);
    /// anyone when `open`; otherwise an error.
    pub fn new(key: Option<String>, open: bool) -> Result<Access, NoKey> {
        match key.filter(|k| !k.is_empty()) {
            Some(key) => Ok(Access::Key(key)),
            None if open => Ok(Access::Open),
            None => Err(NoKey),
        }
    }

    /// Check a call's key and remove the header, so the function never sees
    /// it; why the call is refused when it is not Ferrite's.
    pub fn check(&self, headers: &mut HeaderMap) -> Result<(), Refused> {
        let sent = headers.remove(WATCHDOG_KEY_HEADER);
        let Access::Key(key) = self else {
            return Ok(());
        };
        let reason = match sent {
            None => "the request has no Ferrite-Watchdog-Key header",
            Some(sent) if bool::from(sent.as_bytes().ct_eq(key.as_bytes())) => return Ok(()),
            Some(_) => "its Ferrite-Watchdog-Key is not this service's key",
        };
        tracing::debug!(reason, "call refused");
        Err(Refused(reason))
    }
}

/// A call refused for its key, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(&'static str);

impl Refused {
    /// 401 with the reason, marked so that Ferrite can tell a refused key
    /// from a function's own 401.
    pub fn response(self) -> Response {
        let mut refusal = respond::error(
            StatusCode::UNAUTHORIZED,
            &format!("this function takes calls only from Ferrite: {}", self.0),
        );
        refusal
            .headers_mut()
            .insert(KEY_REFUSED_HEADER, HeaderValue::from_static("key"));
        refusal
    }
}

/// Make the watchdog's process non-dumpable and set no-new-privileges.
///
/// Non-dumpable: only a process with `CAP_SYS_PTRACE` (which functions never
/// have) may open its `/proc/<pid>/environ`, `mem` or `fd`, so the key stays
/// out of the function's reach even when both run as the same user. It is
/// not inherited across `exec`: the functions themselves stay ordinary.
///
/// No-new-privileges is inherited by every process started afterwards, so no
/// function gains privileges through a set-user-id file, whatever the engine
/// supports (older Swarm engines, Docker 20.10 among them, ignore a service's
/// `NoNewPrivileges`). It
/// is a property of each thread: call this before any other thread starts.
pub fn lock_down() -> std::io::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    rustix::thread::set_no_new_privs(true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(key: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-other", HeaderValue::from_static("1"));
        if let Some(key) = key {
            headers.insert(WATCHDOG_KEY_HEADER, HeaderValue::from_str(key).unwrap());
        }
        headers
    }

    #[test]
    fn only_the_key_passes_and_the_header_never_stays() {
        let access = Access::new(Some("k1".into()), true).unwrap();
        let mut good = headers(Some("k1"));
        assert!(access.check(&mut good).is_ok());
        assert!(good.get(WATCHDOG_KEY_HEADER).is_none());
        assert_eq!(good["x-other"], "1");
        for sent in [None, Some("k2"), Some("k1x"), Some("")] {
            let refusal = access.check(&mut headers(sent)).unwrap_err().response();
            assert_eq!(refusal.status(), 401);
            assert_eq!(refusal.headers()[KEY_REFUSED_HEADER], "key");
        }
        let open = Access::new(None, true).unwrap();
        let mut any = headers(Some("whatever"));
        assert!(open.check(&mut any).is_ok());
        assert!(any.get(WATCHDOG_KEY_HEADER).is_none());
    }

    #[test]
    fn no_key_without_the_opt_out_is_an_error() {
        assert!(Access::new(None, false).is_err());
        assert!(Access::new(Some(String::new()), false).is_err());
        let shown = format!("{:?}", Access::new(Some("s3cr3t".into()), false));
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
