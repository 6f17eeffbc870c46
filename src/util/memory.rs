//! How much memory a step may plan to use, and the one refusal when an estimate exceeds it.
//!
//! Why: Rust aborts the process when an allocation fails, so a graph with 20,000 tensors
//! (histograms of 256 KiB each, every activation returned at once) used to end calibration
//! with an abort instead of an error. Steps that allocate in proportion to the graph estimate
//! first and call [`check`].
//!
//! The budget is half of the smallest of the memory the kernel says is available
//! (`MemAvailable`), what the process's address-space limit (`RLIMIT_AS`, as set by
//! `ulimit -v` or a CI sandbox) leaves beside what is already mapped, and what its memory
//! cgroup (a container's or pod's limit) leaves, because ONNX Runtime, thread stacks and the
//! images need the rest.
//! `TRTFORGE_MEMORY_BUDGET_MIB` replaces it (tests, or when the estimate is known to be
//! pessimistic).

use crate::error::{Error, Result};
use std::path::Path;

/// Bytes a step may plan to allocate.
pub fn budget() -> u64 {
    if let Some(mib) =
        crate::env::var("TRTFORGE_MEMORY_BUDGET_MIB").and_then(|v| v.parse::<u64>().ok())
    {
        return mib.saturating_mul(1 << 20);
    }
    let available = mem_available().unwrap_or(u64::MAX);
    let limit = address_space_left().unwrap_or(u64::MAX);
    let cgroup = cgroup_left().unwrap_or(u64::MAX);
    let least = available.min(limit).min(cgroup);
    if least == u64::MAX {
        // Neither is known (not Linux): no refusal on a guess.
        u64::MAX
    } else {
        least / 2
    }
}

/// `MemAvailable` from /proc/meminfo, in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// What the soft `RLIMIT_AS` leaves beside the address space already mapped (`VmSize`:
/// ONNX Runtime, thread stacks), when the limit is finite.
fn address_space_left() -> Option<u64> {
    let limit = address_space_limit()?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let used = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib.saturating_mul(1024));
    Some(limit.saturating_sub(used))
}

/// What the process's memory cgroup (a container's or a Kubernetes pod's limit) leaves:
/// `memory.max - memory.current` (cgroup v2) or `limit_in_bytes - usage_in_bytes` (v1).
/// `MemAvailable` is the host's figure inside a container, so without this a pod limited
/// to 8 GiB on a large host would be killed instead of refused.
fn cgroup_left() -> Option<u64> {
    let read = |p: &str| -> Option<u64> { std::fs::read_to_string(p).ok()?.trim().parse().ok() };
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_end_matches('/');
        if controllers.is_empty() {
            let dir = format!("/sys/fs/cgroup{path}");
            if let (Some(max), Some(cur)) = (
                read(&format!("{dir}/memory.max")),
                read(&format!("{dir}/memory.current")),
            ) {
                return Some(max.saturating_sub(cur));
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            let dir = format!("/sys/fs/cgroup/memory{path}");
            if let (Some(max), Some(cur)) = (
                read(&format!("{dir}/memory.limit_in_bytes")),
                read(&format!("{dir}/memory.usage_in_bytes")),
            ) {
                return Some(max.saturating_sub(cur));
            }
        }
    }
    None
}

/// The soft `RLIMIT_AS`, when finite.
fn address_space_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut r) } == 0;
    (ok && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

/// Refuse a step on `path` whose estimate `need` (bytes; `what` says of what) is over the
/// budget; `fix` says what the user can change.
pub fn check(path: &Path, what: &str, need: u64, fix: &str) -> Result<()> {
    check_within(path, what, need, budget(), fix)
}

/// [`check`] against a budget already read (one reading for many checks).
pub fn check_within(path: &Path, what: &str, need: u64, budget: u64, fix: &str) -> Result<()> {
    if need <= budget {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{}: {what} needs about {} but {} is available to it (half of the free memory, ulimit -v or the cgroup limit); \
         {fix}, or set TRTFORGE_MEMORY_BUDGET_MIB if the estimate is too pessimistic",
        path.display(),
        gib(need),
        gib(budget)
    )))
}

/// Bytes as GiB with two decimals (MiB below 1 GiB), for messages.
pub fn gib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else if bytes < 1 << 30 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_finite_on_linux_and_an_estimate_over_it_is_one_line() {
        assert!(budget() > 0);
        let e = check(Path::new("m.onnx"), "histograms", u64::MAX, "lower x")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.onnx: histograms needs about") && e.contains("lower x"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        assert!(check(Path::new("m.onnx"), "histograms", 1, "lower x").is_ok());
    }
}
