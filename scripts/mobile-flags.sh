# shellcheck shell=bash
# The C compiler flags of the phones' library, shared by android/build-core.sh and
# scripts/mobile-size (source it). No unwind tables for C code: nothing unwinds through C frames
# (a Rust panic never crosses SQLite or ring: `extern "C"` functions abort rather than unwind,
# and rusqlite catches panics in its callbacks), so the tables would only serve crash reports
# that walk through SQLite. They are about 96 KB of the library. Rust code keeps its unwind
# tables: uniffi turns a panic into an exception by unwinding (`panic = "unwind"`).
# shellcheck disable=SC2034
MOBILE_CFLAGS="-fno-asynchronous-unwind-tables -fno-unwind-tables"
