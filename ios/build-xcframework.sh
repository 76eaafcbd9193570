#!/usr/bin/env bash
# Builds what the Swift package needs and does not commit, on a Mac with Xcode:
#
#   ios/SleutelCoreFFI.xcframework   libsleutel_ffi.a for iPhones (aarch64-apple-ios) and for
#                                    the simulator (aarch64-apple-ios-sim and x86_64-apple-ios,
#                                    joined with lipo), each with the two uniffi headers and
#                                    the module map of the C module SleutelCoreFFI
#   ios/Generated/SleutelCore/       sleutel_core.swift and sleutel_protocol.swift, the Swift API
#
#   ios/build-xcframework.sh
#
# The libraries are built with the workspace's mobile profile (LTO, size-optimised, stripped). The
# Swift API is generated from an unstripped debug build for the Mac itself, because the mobile
# profile strips the metadata uniffi-bindgen reads; the API, and the checksums the generated code
# checks at start-up, are the same in both. Generated the way scripts/test-bindings does it:
# one file per crate, renamed, and one module map over both headers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
STAGE="$TARGET/ios"                       # headers and the simulator's joined library
XCFRAMEWORK="$ROOT/ios/SleutelCoreFFI.xcframework"
GENERATED="$ROOT/ios/Generated/SleutelCore"
DEVICE_TARGET="aarch64-apple-ios"
SIMULATOR_TARGETS=("aarch64-apple-ios-sim" "x86_64-apple-ios")
# The package's minimum (Package.swift): the Rust objects are built for the same, so that the
# linker does not warn about objects newer than the app.
export IPHONEOS_DEPLOYMENT_TARGET="15.0"

fail() {
  echo "build-xcframework: $*" >&2
  exit 1
}

# What is missing is said before anything is built, with the command that fixes it.
if [ "$(uname -s)" != "Darwin" ]; then
  fail "needs macOS with Xcode (this is $(uname -s)). On Linux, scripts/check-swift checks the" \
    "Swift sources without compiling them."
fi
if ! xcodebuild -version >/dev/null 2>&1; then
  fail "xcodebuild does not work: install Xcode (not only the Command Line Tools) and select it" \
    "with: sudo xcode-select --switch /Applications/Xcode.app"
fi
if ! xcrun --sdk iphoneos --show-sdk-path >/dev/null 2>&1 \
  || ! xcrun --sdk iphonesimulator --show-sdk-path >/dev/null 2>&1; then
  fail "Xcode has no iOS SDK: install the iOS platform in Xcode > Settings > Components"
fi
command -v cargo >/dev/null || fail "cargo not found: install Rust with rustup (https://rustup.rs)"
if command -v rustup >/dev/null; then
  INSTALLED="$(rustup target list --installed)"
  for target in "$DEVICE_TARGET" "${SIMULATOR_TARGETS[@]}"; do
    grep -qx "$target" <<<"$INSTALLED" \
      || fail "the Rust target $target is not installed: rustup target add $DEVICE_TARGET ${SIMULATOR_TARGETS[*]}"
  done
else
  echo "build-xcframework: no rustup, so the iOS targets cannot be checked first" >&2
fi

# shellcheck source=scripts/steps.sh
. scripts/steps.sh
trap 'steps_done "ios/build-xcframework.sh"' EXIT

step "Swift API: generate from an unstripped build for this Mac"
cargo build --locked -p sleutel-ffi -p uniffi-bindgen
rm -rf "$STAGE" "$GENERATED"
mkdir -p "$STAGE/generated" "$STAGE/headers/SleutelCoreFFI" "$GENERATED"
for crate in sleutel_core sleutel_protocol; do
  "$TARGET/debug/uniffi-bindgen" generate --no-format --library "$TARGET/debug/libsleutel_ffi.dylib" \
    --crate "$crate" --language swift --out-dir "$STAGE/generated/$crate" >/dev/null
  # uniffi names each file after the module; one module holds both crates' files.
  mv "$STAGE/generated/$crate/SleutelCore.swift" "$GENERATED/$crate.swift"
  mv "$STAGE/generated/$crate/"*.h "$STAGE/headers/SleutelCoreFFI/"
done
# The headers and their module map sit in a folder named after the module, inside the
# XCFramework's Headers: Xcode copies every static library's Headers into one include folder,
# where two packages' top-level module.modulemap files would collide; clang finds the module in
# a subfolder of that name.
{
  echo "module SleutelCoreFFI {"
  for header in "$STAGE"/headers/SleutelCoreFFI/*.h; do echo "    header \"$(basename "$header")\""; done
  echo "    export *"
  echo "}"
} >"$STAGE/headers/SleutelCoreFFI/module.modulemap"

step "libsleutel_ffi.a: mobile-profile builds for $DEVICE_TARGET and ${SIMULATOR_TARGETS[*]}"
for target in "$DEVICE_TARGET" "${SIMULATOR_TARGETS[@]}"; do
  cargo build --locked --profile mobile -p sleutel-ffi --target "$target"
done
mkdir -p "$STAGE/simulator"
lipo -create \
  "$TARGET/${SIMULATOR_TARGETS[0]}/mobile/libsleutel_ffi.a" \
  "$TARGET/${SIMULATOR_TARGETS[1]}/mobile/libsleutel_ffi.a" \
  -output "$STAGE/simulator/libsleutel_ffi.a"

step "SleutelCoreFFI.xcframework"
rm -rf "$XCFRAMEWORK"
xcodebuild -create-xcframework \
  -library "$TARGET/$DEVICE_TARGET/mobile/libsleutel_ffi.a" -headers "$STAGE/headers" \
  -library "$STAGE/simulator/libsleutel_ffi.a" -headers "$STAGE/headers" \
  -output "$XCFRAMEWORK"
echo "built $XCFRAMEWORK and $GENERATED"
