//! The capabilities a route may give back to its containers with
//! `cap_add`, and the reason each other one is refused.

use crate::ApiError;

/// Most entries of `cap_add` a request may carry (Linux has about 40
/// capabilities; the allowlist is shorter).
pub const MAX_CAP_ADD: usize = 64;

/// Capabilities a route may give back with `cap_add`, and what each is for.
/// They are part of Docker's own default set and act only inside the
/// container: on its files and its processes, or on its own ports.
pub const CAP_ALLOWLIST: [(&str, &str); 9] = [
    ("CHOWN", "change the owner of files"),
    (
        "DAC_OVERRIDE",
        "read and write files regardless of their modes",
    ),
    (
        "FOWNER",
        "change modes and times of files owned by another user",
    ),
    ("FSETID", "keep set-user-ID bits when changing a file"),
    ("KILL", "signal processes of other users"),
    ("SETGID", "switch to another group (gosu, su-exec)"),
    ("SETUID", "switch to another user (gosu, su-exec)"),
    ("NET_BIND_SERVICE", "listen on ports below 1024"),
    ("SYS_CHROOT", "chroot"),
];

/// Capabilities refused with a reason of their own, because they are asked
/// for often or because the reason is not obvious. Any other capability
/// outside [`CAP_ALLOWLIST`] is refused too.
const CAP_REFUSED: [(&str, &str); 13] = [
    (
        "SYS_ADMIN",
        "mounts, namespaces and much of the kernel's administration: the usual first step out of a container",
    ),
    (
        "SYS_PTRACE",
        "it lets the function trace and read other processes, Ferrite's init among them",
    ),
    (
        "NET_ADMIN",
        "it lets the function reconfigure interfaces, routes and firewall rules",
    ),
    (
        "NET_RAW",
        "raw sockets let the function forge packets to other containers on the same network",
    ),
    (
        "DAC_READ_SEARCH",
        "open_by_handle_at reads files of the host outside the container",
    ),
    (
        "SYS_RESOURCE",
        "it lets the function lift the limits Ferrite sets",
    ),
    ("SYS_MODULE", "it loads kernel modules into the host's kernel"),
    ("SYS_RAWIO", "it gives raw access to the host's devices and memory"),
    ("SYS_BOOT", "it reboots the host"),
    ("SYS_TIME", "it sets the host's clock"),
    ("MKNOD", "it creates device nodes"),
    (
        "SETPCAP",
        "it changes capability sets, a way around the ones dropped",
    ),
    (
        "SETFCAP",
        "it sets file capabilities, a way around the ones dropped",
    ),
];

/// Every capability name Linux knows (without `CAP_`), to tell a refused
/// capability from a typo.
const LINUX_CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// One `cap_add` entry in its canonical form (upper case, without `CAP_`),
/// or the reason it is refused.
pub fn capability(name: &str) -> Result<String, ApiError> {
    let upper = name.trim().to_ascii_uppercase();
    let canonical = upper.strip_prefix("CAP_").unwrap_or(&upper).to_string();
    if CAP_ALLOWLIST.iter().any(|(cap, _)| *cap == canonical) {
        return Ok(canonical);
    }
    let allowed = CAP_ALLOWLIST
        .iter()
        .map(|(cap, _)| *cap)
        .collect::<Vec<_>>()
        .join(", ");
    let why = if let Some((_, why)) = CAP_REFUSED.iter().find(|(cap, _)| *cap == canonical) {
        format!("is refused: {why}")
    } else if LINUX_CAPS.contains(&canonical.as_str()) {
        "is refused: it is not needed by functions".to_string()
    } else if canonical == "ALL" {
        "is refused: name the capabilities the image needs".to_string()
    } else {
        "is not a Linux capability".to_string()
    };
    Err(ApiError::bad_request(format!(
        "route confinement.cap_add entry {name:?} {why}; the capabilities a route may add are {allowed}"
    )))
}

#[cfg(test)]
mod tests {
    use super::super::tests::refused;

    #[test]
    fn capabilities_outside_the_allowlist_are_refused_with_a_reason() {
        for (cap, needle) in [
            ("SYS_ADMIN", "usual first step out of a container"),
            ("cap_sys_ptrace", "Ferrite's init"),
            ("NET_ADMIN", "firewall"),
            ("NET_RAW", "forge packets"),
            ("SYS_NICE", "not needed by functions"),
            ("ALL", "name the capabilities"),
            ("FLY", "is not a Linux capability"),
        ] {
            let json = format!(r#"{{"cap_add":["CHOWN","{cap}"]}}"#);
            refused(&json, needle);
            refused(&json, "route confinement.cap_add entry");
            refused(&json, "NET_BIND_SERVICE");
        }
        let many = format!(r#"{{"cap_add":[{}]}}"#, vec!["\"KILL\""; 65].join(","));
        refused(&many, "at most 64 entries");
    }
}
