//! Seeds: every simulation test prints its seed when it fails, and
//! `NETSIM_SEED=<n>` replays exactly that seed.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Environment variable that overrides the seed(s) a test uses.
pub const SEED_ENV: &str = "NETSIM_SEED";

/// The seed from `NETSIM_SEED`, if set and valid (decimal or `0x` hex).
pub fn seed_from_env() -> Option<u64> {
    let v = std::env::var(SEED_ENV).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Runs `f(seed)` with `NETSIM_SEED` if set, else `default_seed`. On panic
/// prints `netsim seed = N` (and how to replay it) and re-raises the panic.
pub fn run_with_seed<R>(default_seed: u64, f: impl FnOnce(u64) -> R) -> R {
    let seed = seed_from_env().unwrap_or(default_seed);
    match catch_unwind(AssertUnwindSafe(|| f(seed))) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netsim seed = {seed} (replay with {SEED_ENV}={seed})");
            resume_unwind(e)
        }
    }
}

/// Runs `f` once per seed in `seeds` (or only the `NETSIM_SEED` one if set),
/// printing the failing seed like [`run_with_seed`].
pub fn run_seeds(seeds: impl IntoIterator<Item = u64>, mut f: impl FnMut(u64)) {
    if let Some(seed) = seed_from_env() {
        return run_with_seed(seed, f);
    }
    for seed in seeds {
        run_with_seed(seed, &mut f);
    }
}
