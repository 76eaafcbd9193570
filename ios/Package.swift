// swift-tools-version:5.9
// The Sleutel phone core for iOS apps: the Rust core as a static library in an XCFramework, its
// generated Swift API, and the iOS parts written by hand (Secure Enclave keystore, biometric gate,
// push registration, Notification Service Extension helper). Neither the XCFramework nor the
// generated Swift is committed: `./build-xcframework.sh` makes both, on a Mac with Xcode.
import PackageDescription

let package = Package(
    name: "Sleutel",
    platforms: [.iOS(.v15)],
    products: [
        // One library: `import Sleutel` brings the generated API along (Exports.swift).
        .library(name: "Sleutel", targets: ["Sleutel"]),
    ],
    targets: [
        // The C side: libsleutel_ffi.a per platform, with the two uniffi headers and their
        // module map. Built by build-xcframework.sh.
        .binaryTarget(
            name: "SleutelCoreFFI",
            path: "SleutelCoreFFI.xcframework"
        ),
        // The Swift API uniffi generates from the library: sleutel_core.swift and
        // sleutel_protocol.swift, written here by build-xcframework.sh.
        .target(
            name: "SleutelCore",
            dependencies: ["SleutelCoreFFI"],
            path: "Generated/SleutelCore",
            // The Rust library checks the server's TLS certificate against the system's trust
            // store (rustls-platform-verifier over Security.framework).
            linkerSettings: [.linkedFramework("Security")]
        ),
        // What an iOS app needs beyond the generated API, written by hand.
        .target(
            name: "Sleutel",
            dependencies: ["SleutelCore"],
            path: "Sources/Sleutel"
        ),
        // The pure parts (error table, token and payload, notification text), on a Mac:
        // xcodebuild test on an iOS simulator (see README.md).
        .testTarget(
            name: "SleutelTests",
            dependencies: ["Sleutel"],
            path: "Tests/SleutelTests"
        ),
    ]
)
