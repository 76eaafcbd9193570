//! `uniffi-bindgen`, built from the same uniffi version as the library, so the generated code
//! always matches the scaffolding compiled into `libsleutel_ffi`. Run it as
//! `cargo run -p uniffi-bindgen -- generate --library <lib> --language kotlin --out-dir <dir>`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
