//! The per-service key that lets a service's watchdog tell Ferrite from
//! anything else on the overlay network.
//!
//! A task's address is reachable by every container on its network, so a
//! watchdog that trusted every caller would let them skip a route's
//! `jwt_key` and forge the call's `Fn-*` facts. Ferrite therefore gives each
//! service a random key when it creates it (an environment variable of the
//! task, kept through every update), reads it back from the service's spec
//! (so every manager sharing the store knows it; workers read it from what
//! the autoscaler's lease holder publishes), and sends it with each call it
//! forwards; the watchdog takes only calls that carry it. The names of the
//! variable and headers are [`ferrite_wire::headers`], shared with the
//! watchdog.

use std::fmt::{self, Write};

use ferrite_wire::headers::WATCHDOG_KEY_ENV;

/// Random bytes in a key: 256 bits, beyond guessing.
const KEY_BYTES: usize = 32;

/// A service's key. Its `Debug` does not show it, so that it never lands in a
/// log line through a struct that holds it. It travels between nodes as its
/// text, through the shared state only Ferrite nodes reach.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct WatchdogKey(String);

impl WatchdogKey {
    /// A new key: 32 random bytes from the operating system, as 64 lower-case
    /// hex digits (a header value and an environment value as it is).
    pub fn generate() -> Result<WatchdogKey, getrandom::Error> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes)?;
        let hex = bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        Ok(WatchdogKey(hex))
    }

    /// The key in a service's environment (`KEY=VALUE` entries), if it has
    /// one that can be sent: not empty, visible ASCII only (a spec edited by
    /// hand may hold anything; such a key counts as none, and the service
    /// gets a new one).
    pub fn from_env<'a>(env: impl IntoIterator<Item = &'a String>) -> Option<WatchdogKey> {
        env.into_iter()
            .filter_map(|entry| entry.split_once('='))
            .find(|(name, _)| *name == WATCHDOG_KEY_ENV)
            .and_then(|(_, value)| WatchdogKey::try_from(value.to_string()).ok())
    }

    /// The key itself, to send or to set.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A key read from elsewhere (a spec, the shared state) counts only when it
/// can be sent: not empty, visible ASCII only.
impl TryFrom<String> for WatchdogKey {
    type Error = &'static str;

    fn try_from(value: String) -> Result<WatchdogKey, &'static str> {
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(WatchdogKey(value))
        } else {
            Err("a watchdog key is visible ASCII, not empty")
        }
    }
}

impl From<WatchdogKey> for String {
    fn from(key: WatchdogKey) -> String {
        key.0
    }
}

impl fmt::Debug for WatchdogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WatchdogKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_hex_and_never_shown() {
        let a = WatchdogKey::generate().unwrap();
        let b = WatchdogKey::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn the_key_is_read_back_from_an_environment() {
        let env = vec![
            "A=1".to_string(),
            format!("{WATCHDOG_KEY_ENV}=abc=d"),
            "B=2".to_string(),
        ];
        assert_eq!(WatchdogKey::from_env(&env).unwrap().expose(), "abc=d");
        for value in ["", "a b", "a\nb"] {
            let none = vec![format!("{WATCHDOG_KEY_ENV}={value}"), "X=1".to_string()];
            assert_eq!(WatchdogKey::from_env(&none), None, "{value:?}");
        }
    }
}
