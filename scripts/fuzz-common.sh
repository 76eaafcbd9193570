# What scripts/fuzz-smoke and scripts/fuzz-long share: the toolchain switches and cargo-fuzz.
# Source it from the repository's root.

# cargo-fuzz passes nightly-only flags (-Zsanitizer, -Cpasses=sancov-module); stable compilers
# accept them when told they are building themselves. Nothing else here needs a nightly.
export RUSTC_BOOTSTRAP=1

# The fuzz crate builds into its own folder (fuzz/target), apart from the workspace's: its
# dependencies are compiled with coverage instrumentation.
unset CARGO_TARGET_DIR

# Smoke and long runs build the same way, so one build serves both: optimised, with debug
# assertions and overflow checks (a panic there is a finding), without AddressSanitizer (the
# targets are safe Rust; ASan would double the build and slow each run, and finds nothing
# that safe code can do).
FUZZ_BUILD_FLAGS=(--release --debug-assertions --sanitizer none)

# Installs cargo-fuzz where it is missing (a fresh machine, CI).
ensure_cargo_fuzz() {
  if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
  fi
}

# The names of every target, one a line, from the fuzz crate's manifest.
fuzz_targets() {
  (cd fuzz && cargo fuzz list)
}
