// Lets the module build on its own (`gradle assembleRelease` in android/), with the plugin
// versions below. An app that includes the module in its own build brings its own Android
// Gradle plugin and Kotlin versions instead (see README.md).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
    plugins {
        id("com.android.library") version "8.13.0"
        id("org.jetbrains.kotlin.android") version "2.4.21"
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "sleutel-android"
