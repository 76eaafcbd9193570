package be.sleutel.android

import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import be.sleutel.core.KeyProtection
import java.security.spec.ECGenParameterSpec
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner

/**
 * The key parameters [AndroidKeystore] asks the Android keystore for, per protection and per API
 * level. Robolectric runs the API 35 framework, so the API 28-29 path is chosen through
 * [KeySpecs]'s level and read back through API 35's `KeyGenParameterSpec`.
 */
@RunWith(RobolectricTestRunner::class)
class KeySpecsTest {
    private val alias = "sleutel-device-1"

    private fun spec(
        protection: KeyProtection,
        sdkInt: Int = Build.VERSION_CODES.VANILLA_ICE_CREAM,
        strongBox: Boolean = true,
    ) = KeySpecs(sdkInt).signingKey(alias, protection, strongBox)

    private fun assertEs256SigningKey(spec: KeyGenParameterSpec) {
        assertEquals(alias, spec.keystoreAlias)
        assertEquals(KeyProperties.PURPOSE_SIGN, spec.purposes)
        assertArrayEquals(arrayOf(KeyProperties.DIGEST_SHA256), spec.digests)
        assertEquals("secp256r1", (spec.algorithmParameterSpec as ECGenParameterSpec).name)
    }

    @Test
    fun deviceKeyIsAP256SigningKeyForSha256() {
        assertEs256SigningKey(spec(KeyProtection.DEVICE))
    }

    @Test
    fun deviceKeyNeedsAnUnlockedPhoneAndNoPrompt() {
        val spec = spec(KeyProtection.DEVICE)

        assertTrue(spec.isUnlockedDeviceRequired)
        assertFalse(spec.isUserAuthenticationRequired)
    }

    @Test
    fun biometricKeyIsAP256SigningKeyForSha256() {
        assertEs256SigningKey(spec(KeyProtection.BIOMETRIC))
    }

    @Test
    fun biometricKeyNeedsAStrongBiometricForEveryUseFromApi30() {
        val spec = spec(KeyProtection.BIOMETRIC, sdkInt = Build.VERSION_CODES.R)

        assertTrue(spec.isUserAuthenticationRequired)
        assertEquals(0, spec.userAuthenticationValidityDurationSeconds)
        assertEquals(KeyProperties.AUTH_BIOMETRIC_STRONG, spec.userAuthenticationType)
    }

    @Test
    fun biometricKeyNeedsAStrongBiometricForEveryUseOnApi28And29() {
        // API 28-29 say it with a validity of -1; the framework reads that back as (0, strong
        // biometric), the very parameters API 30+ set directly.
        for (sdkInt in listOf(Build.VERSION_CODES.P, Build.VERSION_CODES.Q)) {
            val spec = spec(KeyProtection.BIOMETRIC, sdkInt = sdkInt)

            assertTrue(spec.isUserAuthenticationRequired)
            assertEquals(0, spec.userAuthenticationValidityDurationSeconds)
            assertEquals(KeyProperties.AUTH_BIOMETRIC_STRONG, spec.userAuthenticationType)
        }
    }

    @Test
    fun biometricKeyIsInvalidatedWhenABiometricIsEnrolled() {
        assertTrue(spec(KeyProtection.BIOMETRIC).isInvalidatedByBiometricEnrollment)
    }

    @Test
    fun signingKeysAskForStrongBoxOnlyWhenTold() {
        for (protection in KeyProtection.entries) {
            assertTrue(spec(protection, strongBox = true).isStrongBoxBacked)
            assertFalse(spec(protection, strongBox = false).isStrongBoxBacked)
        }
    }

    @Test
    fun secretsKeyIsAes256GcmWithKeystoreDrawnIvsAndNoPrompt() {
        val spec = KeySpecs().secretsKey("secrets")

        assertEquals(KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT, spec.purposes)
        assertEquals(256, spec.keySize)
        assertArrayEquals(arrayOf(KeyProperties.BLOCK_MODE_GCM), spec.blockModes)
        assertArrayEquals(arrayOf(KeyProperties.ENCRYPTION_PADDING_NONE), spec.encryptionPaddings)
        assertTrue(spec.isRandomizedEncryptionRequired)
        assertFalse(spec.isUserAuthenticationRequired)
    }
}
