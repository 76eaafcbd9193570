package be.sleutel.android

import android.os.Build
import be.sleutel.core.KeyProtection
import be.sleutel.core.KeystoreException
import java.security.Signature
import java.util.Collections
import kotlin.concurrent.thread
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment

/**
 * [AndroidKeystore]'s keys over [StandInKeyStore]: generation (StrongBox and its fallback), the
 * public key, signatures with and without the biometric prompt, deletion, the hardware question,
 * and the failures the core sees.
 */
@RunWith(RobolectricTestRunner::class)
class AndroidKeystoreTest {
    private val message = "the request's signing input".toByteArray()

    /** What the biometric gate of these tests was asked, and what it answers. */
    private class RecordingGate : BiometricUnlock {
        val prompts: MutableList<String?> = Collections.synchronizedList(mutableListOf())
        var failure: Exception? = null

        override suspend fun unlock(signature: Signature, prompt: String?): Signature {
            prompts += prompt
            failure?.let { throw it }
            return signature
        }
    }

    private val gate = RecordingGate()

    private fun keystore(store: StandInKeyStore, sdkInt: Int = Build.VERSION_CODES.VANILLA_ICE_CREAM) =
        AndroidKeystore(
            store.provider,
            AndroidKeystore.secretsDir(RuntimeEnvironment.getApplication()),
            gate,
            sdkInt,
        )

    /** Runs [block] on a thread other than the main (test) thread, as the core's calls run. */
    private fun <T> inBackground(block: () -> T): T {
        var result: Result<T>? = null
        thread { result = runCatching(block) }.join()
        return result!!.getOrThrow()
    }

    private fun verifies(store: StandInKeyStore, alias: String, signature: ByteArray): Boolean {
        val verifier = Signature.getInstance("SHA256withECDSA")
        verifier.initVerify(store.entries.getValue(alias).keyPair!!.public)
        verifier.update(message)
        return verifier.verify(signature)
    }

    private inline fun <reified E : KeystoreException> assertThrows(block: () -> Unit): E {
        try {
            block()
        } catch (e: KeystoreException) {
            if (e is E) return e
            throw AssertionError("expected ${E::class.simpleName}, got $e", e)
        }
        fail("expected ${E::class.simpleName}, nothing was thrown")
        throw AssertionError()
    }

    @Test
    fun openingOnAPhoneWithoutAnAndroidKeyStoreProviderIsUnavailable() {
        // Robolectric's framework, like the JVM, has no AndroidKeyStore provider.
        val refused = assertThrows<KeystoreException.Unavailable> {
            AndroidKeystore(RuntimeEnvironment.getApplication(), gate)
        }

        assertEquals("this phone has no AndroidKeyStore provider", refused.detail)
    }

    @Test
    fun generatedKeyIsReturnedAsTheUncompressedP256PointOfItsPublicKey() {
        val store = StandInKeyStore()
        val keystore = keystore(store)

        val point = keystore.generateKey("sleutel-device-1", KeyProtection.DEVICE)

        assertEquals(65, point.size)
        assertEquals(0x04.toByte(), point[0])
        assertArrayEquals(point, keystore.publicKey("sleutel-device-1"))
    }

    @Test
    fun keyIsGeneratedInStrongBoxWhenThePhoneHasOne() {
        val store = StandInKeyStore(hasStrongBox = true)

        keystore(store).generateKey("sleutel-device-1", KeyProtection.DEVICE)

        assertEquals(listOf(true), store.specsSeen.map { it.isStrongBoxBacked })
        assertTrue(store.entries.getValue("sleutel-device-1").spec.isStrongBoxBacked)
    }

    @Test
    fun withoutStrongBoxTheKeyIsGeneratedInTheTeeInstead() {
        val store = StandInKeyStore(hasStrongBox = false)

        keystore(store).generateKey("sleutel-biometric-1", KeyProtection.BIOMETRIC)

        assertEquals(listOf(true, false), store.specsSeen.map { it.isStrongBoxBacked })
        val spec = store.entries.getValue("sleutel-biometric-1").spec
        assertFalse(spec.isStrongBoxBacked)
        assertTrue("the fallback keeps the protection", spec.isUserAuthenticationRequired)
    }

    @Test
    fun deviceKeySignsWithoutAPrompt() {
        val store = StandInKeyStore()
        val keystore = keystore(store)
        keystore.generateKey("sleutel-device-1", KeyProtection.DEVICE)

        val signature = keystore.sign("sleutel-device-1", message, null)

        assertTrue(verifies(store, "sleutel-device-1", signature))
        assertTrue(gate.prompts.isEmpty())
    }

    @Test
    fun biometricKeySignsAfterThePromptShowingTheRequestText() {
        val store = StandInKeyStore()
        val keystore = keystore(store)
        keystore.generateKey("sleutel-biometric-1", KeyProtection.BIOMETRIC)

        val signature = inBackground { keystore.sign("sleutel-biometric-1", message, "Log in to Tax-on-web?") }

        assertTrue(verifies(store, "sleutel-biometric-1", signature))
        assertEquals(listOf<String?>("Log in to Tax-on-web?"), gate.prompts)
    }

    @Test
    fun biometricSignatureOnTheMainThreadIsRefusedWithoutAPrompt() {
        val keystore = keystore(StandInKeyStore())
        keystore.generateKey("sleutel-biometric-1", KeyProtection.BIOMETRIC)

        // Robolectric runs the test on the main thread.
        val refused = assertThrows<KeystoreException.Unavailable> {
            keystore.sign("sleutel-biometric-1", message, null)
        }

        assertTrue(refused.detail, refused.detail.contains("main thread"))
        assertTrue(gate.prompts.isEmpty())
    }

    @Test
    fun promptDismissedByThePersonReachesTheCoreAsUserCancelled() {
        val keystore = keystore(StandInKeyStore())
        keystore.generateKey("sleutel-biometric-1", KeyProtection.BIOMETRIC)
        gate.failure = KeystoreException.UserCancelled()

        assertThrows<KeystoreException.UserCancelled> {
            inBackground { keystore.sign("sleutel-biometric-1", message, null) }
        }
    }

    @Test
    fun unexpectedFailureIsUnavailableNamingTheExceptionButNotItsMessage() {
        val keystore = keystore(StandInKeyStore())
        keystore.generateKey("sleutel-biometric-1", KeyProtection.BIOMETRIC)
        gate.failure = IllegalStateException("alias sleutel-biometric-1 and key material")

        val failure = assertThrows<KeystoreException.Unavailable> {
            inBackground { keystore.sign("sleutel-biometric-1", message, null) }
        }

        assertEquals("signing failed: java.lang.IllegalStateException", failure.detail)
    }

    @Test
    fun missingKeyIsKeyNotFoundForEveryOperationOnIt() {
        val keystore = keystore(StandInKeyStore())

        assertThrows<KeystoreException.KeyNotFound> { keystore.publicKey("sleutel-device-9") }
        assertThrows<KeystoreException.KeyNotFound> { keystore.sign("sleutel-device-9", message, null) }
        assertThrows<KeystoreException.KeyNotFound> { keystore.isHardwareBacked("sleutel-device-9") }
    }

    @Test
    fun deletedKeyIsGone() {
        val store = StandInKeyStore()
        val keystore = keystore(store)
        keystore.generateKey("sleutel-device-1", KeyProtection.DEVICE)

        keystore.deleteKey("sleutel-device-1")

        assertFalse(store.entries.containsKey("sleutel-device-1"))
        assertThrows<KeystoreException.KeyNotFound> { keystore.publicKey("sleutel-device-1") }
    }

    @Test
    fun deletingAMissingKeyIsNotAnError() {
        keystore(StandInKeyStore()).deleteKey("sleutel-device-9")
    }

    @Test
    fun generatingUnderAnAliasInUseReplacesTheKey() {
        val keystore = keystore(StandInKeyStore())
        val first = keystore.generateKey("sleutel-device-1", KeyProtection.DEVICE)

        val second = keystore.generateKey("sleutel-device-1", KeyProtection.DEVICE)

        assertFalse(first.contentEquals(second))
        assertArrayEquals(second, keystore.publicKey("sleutel-device-1"))
    }

    @Test
    fun keyInTheTeeOrStrongBoxIsHardwareBackedFromItsSecurityLevel() {
        for (hasStrongBox in listOf(false, true)) {
            val keystore = keystore(StandInKeyStore(hasStrongBox = hasStrongBox))
            keystore.generateKey("sleutel-device-1", KeyProtection.DEVICE)

            assertTrue("StrongBox: $hasStrongBox", keystore.isHardwareBacked("sleutel-device-1"))
        }
    }

    @Test
    fun softwareKeyIsNotHardwareBacked() {
        val keystore = keystore(StandInKeyStore(secureHardware = false))
        keystore.generateKey("sleutel-device-1", KeyProtection.DEVICE)

        assertFalse(keystore.isHardwareBacked("sleutel-device-1"))
    }

    @Test
    fun beforeApi31HardwareBackingIsReadFromInsideSecureHardware() {
        for (secureHardware in listOf(false, true)) {
            val keystore = keystore(StandInKeyStore(secureHardware = secureHardware), sdkInt = Build.VERSION_CODES.R)
            keystore.generateKey("sleutel-device-1", KeyProtection.DEVICE)

            assertEquals(secureHardware, keystore.isHardwareBacked("sleutel-device-1"))
        }
    }
}
