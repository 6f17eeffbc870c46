//! Every environment variable the library reads goes through [`var`], so the full set is
//! greppable in one place (build.rs has its own twin that also prints rerun-if-env-changed).

/// Read an environment variable; empty counts as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// True when running under CI (`CI=true`), where missing shared data is a failure, not a skip.
pub fn in_ci() -> bool {
    matches!(var("CI").as_deref(), Some("true") | Some("1"))
}
