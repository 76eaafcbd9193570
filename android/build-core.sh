#!/usr/bin/env bash
# Builds what the Android module takes from the Rust workspace; run it before the Gradle build.
#
#   android/build-core.sh                   # both parts below
#   android/build-core.sh native            # libsleutel_ffi.so for arm64-v8a, armeabi-v7a and
#                                           # x86_64 (mobile profile, cargo-ndk) into src/main/jniLibs/
#   android/build-core.sh bindings [DIR]    # the Kotlin bindings into DIR (default
#                                           # build/generated/source/uniffi/kotlin); no NDK needed
#
# The bindings are generated from the library's uniffi metadata, which the mobile profile
# strips (`strip = true`): they come from an unstripped debug build for this machine instead.
# The metadata does not depend on the target, so they match the Android libraries exactly.
# scripts/test-android generates the bindings of its tests with `bindings` too.
set -euo pipefail
ANDROID_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$ANDROID_DIR")"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

# The ABIs the module ships: phones (arm64-v8a, older armeabi-v7a) and the emulator (x86_64).
ABIS=(arm64-v8a armeabi-v7a x86_64)
RUST_TARGETS=(aarch64-linux-android armv7-linux-androideabi x86_64-linux-android)
# The module's minSdk (build.gradle.kts): the libraries link against that API level's libc.
MIN_SDK=28

die() {
  echo "android/build-core.sh: $*" >&2
  exit 1
}

build_native() {
  command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
  cargo ndk --version >/dev/null 2>&1 \
    || die "cargo-ndk is not installed: run 'cargo install cargo-ndk'"
  local ndk="${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}"
  if [ -z "$ndk" ]; then
    local sdk="${ANDROID_HOME:-${ANDROID_SDK_ROOT:-}}"
    if [ -n "$sdk" ] && [ -d "$sdk/ndk" ] && [ -n "$(ls -A "$sdk/ndk" 2>/dev/null)" ]; then
      ndk="$sdk/ndk"
    fi
  fi
  if [ -z "$ndk" ] || [ ! -d "$ndk" ]; then
    die "no Android NDK found: set ANDROID_NDK_HOME, or install one with the SDK manager \
('sdkmanager \"ndk;<version>\"') under \$ANDROID_HOME/ndk"
  fi
  local installed missing=()
  installed="$(rustup target list --installed 2>/dev/null || true)"
  for target in "${RUST_TARGETS[@]}"; do
    grep -qx "$target" <<<"$installed" || missing+=("$target")
  done
  [ ${#missing[@]} -eq 0 ] || die "Rust targets missing: run 'rustup target add ${missing[*]}'"

  local abi_args=()
  for abi in "${ABIS[@]}"; do abi_args+=(-t "$abi"); done
  # 16 KB-aligned segments: Android 15 devices may use 16 KB pages, and Google Play requires
  # such libraries; NDK r28 and later do it by default, older ones need the flag.
  # The C code (SQLite, ring's C) without unwind tables (scripts/mobile-flags.sh: why), for the
  # cross-compiled targets only (TARGET_CFLAGS), as scripts/mobile-size measures it on x86_64.
  # The NDK's clang already packs relative relocations (RELR) for MIN_SDK 28 and later.
  # shellcheck source=scripts/mobile-flags.sh
  . "$ROOT/scripts/mobile-flags.sh"
  TARGET_CFLAGS="${TARGET_CFLAGS:-} $MOBILE_CFLAGS" \
    RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384" \
    cargo ndk "${abi_args[@]}" --platform "$MIN_SDK" -o "$ANDROID_DIR/src/main/jniLibs" \
    build --profile mobile --locked -p sleutel-ffi --manifest-path "$ROOT/Cargo.toml"
}

build_bindings() {
  local out="${1:-$ANDROID_DIR/build/generated/source/uniffi/kotlin}"
  command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
  cargo build --locked -p sleutel-ffi -p uniffi-bindgen --manifest-path "$ROOT/Cargo.toml"
  # The host's library: a .so on Linux, a .dylib on a Mac.
  local lib="$TARGET/debug/libsleutel_ffi.so"
  [ "$(uname -s)" = Darwin ] && lib="$TARGET/debug/libsleutel_ffi.dylib"
  [ -f "$lib" ] || die "$lib was not built"
  rm -rf "$out"
  mkdir -p "$out"
  # --no-format: ktlint is not needed to compile the code, and is not installed here.
  "$TARGET/debug/uniffi-bindgen" generate --no-format --library "$lib" --language kotlin \
    --out-dir "$out" >/dev/null
  echo "Kotlin bindings in $out"
}

case "${1:-all}" in
  all)
    build_native
    build_bindings
    ;;
  native) build_native ;;
  bindings) build_bindings "${2:-}" ;;
  *) die "unknown step '$1' (all, native or bindings [DIR])" ;;
esac
