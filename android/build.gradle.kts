// The Sleutel Android library: the Rust core (libsleutel_ffi, built by build-core.sh into
// src/main/jniLibs), its generated Kotlin bindings (build-core.sh, into
// build/generated/source/uniffi/kotlin) and the Android glue in src/main/kotlin: the keystore
// over AndroidKeyStore, the biometric prompt and the push glue. Run ./build-core.sh first.
//
// No plugin versions here: settings.gradle.kts gives them when the module builds on its own,
// and an app that includes the module gives its own.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "be.sleutel.android"
    compileSdk = 36

    defaultConfig {
        // BiometricPrompt, StrongBox and unlocked-device-only keys all arrive with API 28.
        minSdk = 28
        consumerProguardFiles("consumer-rules.pro")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            // The generated bindings are never committed: build-core.sh writes them here.
            java.srcDir("build/generated/source/uniffi/kotlin")
            jniLibs.srcDir("src/main/jniLibs")
        }
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // The @aar carries libjnidispatch for every Android ABI; the plain jar has the desktop ones.
    // `api`: the generated classes expose JNA types (their Pointer constructors).
    api("net.java.dev.jna:jna:5.19.1@aar")
    // The generated async methods are suspend functions built on kotlinx.coroutines.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.11.0")
}
