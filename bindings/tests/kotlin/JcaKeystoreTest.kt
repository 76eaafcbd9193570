package be.sleutel.core.test

import be.sleutel.core.InMemoryKeyPairStore
import be.sleutel.core.InMemorySecretStore
import be.sleutel.core.JcaKeystore
import be.sleutel.core.KeyPairStore
import be.sleutel.core.KeyProtection
import be.sleutel.core.KeystoreException
import be.sleutel.core.PresenceRequest
import be.sleutel.core.StoredKeyPair
import be.sleutel.core.UserPresenceGate
import java.math.BigInteger
import java.security.AlgorithmParameters
import java.security.KeyFactory
import java.security.KeyPair
import java.security.Signature
import java.security.spec.ECGenParameterSpec
import java.security.spec.ECParameterSpec
import java.security.spec.ECPoint
import java.security.spec.ECPublicKeySpec
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** [JcaKeystore] on its own, with the JVM's default provider. */
class JcaKeystoreTest {
    private val keys = InMemoryKeyPairStore()
    private val secrets = InMemorySecretStore()
    private val keystore = JcaKeystore(keys, secrets)

    @Test
    fun generatedPublicKeyIsAnUncompressedP256PointThatVerifiesTheDerSignature() {
        val point = keystore.generateKey("device", KeyProtection.DEVICE)
        assertEquals(65, point.size)
        assertEquals(0x04.toByte(), point[0])
        assertArrayEquals(point, keystore.publicKey("device"))

        val message = "header.payload".toByteArray()
        val signature = keystore.sign("device", message, null)
        assertEquals("DER sequence", 0x30.toByte(), signature[0])
        val verifier = Signature.getInstance("SHA256withECDSA")
        verifier.initVerify(publicKeyFromPoint(point))
        verifier.update(message)
        assertTrue(verifier.verify(signature))
    }

    @Test
    fun generatingUnderAnExistingAliasReplacesTheKey() {
        val first = keystore.generateKey("device", KeyProtection.DEVICE)
        val second = keystore.generateKey("device", KeyProtection.DEVICE)
        assertFalse(first.contentEquals(second))
        assertArrayEquals(second, keystore.publicKey("device"))
    }

    @Test
    fun missingKeyRaisesKeyNotFound() {
        assertThrows<KeystoreException.KeyNotFound> { keystore.publicKey("nothing") }
        assertThrows<KeystoreException.KeyNotFound> { keystore.sign("nothing", byteArrayOf(1), null) }
        assertThrows<KeystoreException.KeyNotFound> { keystore.isHardwareBacked("nothing") }
    }

    @Test
    fun deletedKeyIsGoneAndDeletingTwiceIsNotAnError() {
        keystore.generateKey("device", KeyProtection.DEVICE)
        keystore.deleteKey("device")
        keystore.deleteKey("device")
        assertTrue(keys.aliases.isEmpty())
        assertThrows<KeystoreException.KeyNotFound> { keystore.publicKey("device") }
    }

    @Test
    fun defaultJvmProviderIsNotHardwareBacked() {
        keystore.generateKey("device", KeyProtection.DEVICE)
        assertFalse(keystore.isHardwareBacked("device"))
    }

    @Test
    fun secretSlotsStoreReplaceAndDelete() {
        assertNull(keystore.getSecret("salt"))
        keystore.putSecret("salt", byteArrayOf(1, 2, 3))
        keystore.putSecret("salt", byteArrayOf(4, 5))
        assertArrayEquals(byteArrayOf(4, 5), keystore.getSecret("salt"))
        keystore.deleteSecret("salt")
        keystore.deleteSecret("salt")
        assertNull(keystore.getSecret("salt"))
    }

    @Test
    fun gateSeesAliasProtectionAndPromptAndItsErrorPassesUnchanged() {
        val seen = mutableListOf<PresenceRequest>()
        val gated = JcaKeystore(keys, secrets, userPresence = UserPresenceGate { request ->
            seen += request
            if (request.protection == KeyProtection.BIOMETRIC) throw KeystoreException.BiometricLockedOut()
        })
        gated.generateKey("device", KeyProtection.DEVICE)
        gated.generateKey("bio", KeyProtection.BIOMETRIC)

        gated.sign("device", byteArrayOf(1), null)
        assertThrows<KeystoreException.BiometricLockedOut> { gated.sign("bio", byteArrayOf(1), "Bevestig") }
        assertEquals(listOf("device", "bio"), seen.map { it.alias })
        assertEquals(listOf(null, "Bevestig"), seen.map { it.prompt })
    }

    @Test
    fun storageFailureBecomesUnavailableWithoutItsMessage() {
        val broken = object : KeyPairStore {
            override fun save(alias: String, keyPair: KeyPair, protection: KeyProtection) =
                throw IllegalStateException("private key bytes 0xDEADBEEF")
            override fun load(alias: String): StoredKeyPair? = throw IllegalStateException("0xDEADBEEF")
            override fun delete(alias: String) = Unit
            override fun isHardwareBacked(alias: String, key: StoredKeyPair) = false
        }
        val failing = JcaKeystore(broken, secrets)
        for (call in listOf<() -> Unit>(
            { failing.generateKey("device", KeyProtection.DEVICE) },
            { failing.sign("device", byteArrayOf(1), null) },
        )) {
            val e = assertThrows<KeystoreException.Unavailable>(call)
            assertTrue(e.detail, e.detail.contains("IllegalStateException"))
            assertFalse(e.detail, e.detail.contains("DEADBEEF"))
        }
    }

    @Test
    fun unknownProviderAlgorithmBecomesUnavailable() {
        val spec = be.sleutel.core.KeyGenSpecFactory { _, _ -> ECGenParameterSpec("no-such-curve") }
        val failing = JcaKeystore(keys, secrets, keyGenSpecs = spec)
        assertThrows<KeystoreException.Unavailable> { failing.generateKey("device", KeyProtection.DEVICE) }
        assertTrue(keys.aliases.isEmpty())
    }

    private fun publicKeyFromPoint(point: ByteArray): java.security.PublicKey {
        val parameters = AlgorithmParameters.getInstance("EC")
        parameters.init(ECGenParameterSpec("secp256r1"))
        val spec = parameters.getParameterSpec(ECParameterSpec::class.java)
        val x = BigInteger(1, point.copyOfRange(1, 33))
        val y = BigInteger(1, point.copyOfRange(33, 65))
        return KeyFactory.getInstance("EC").generatePublic(ECPublicKeySpec(ECPoint(x, y), spec))
    }

    private inline fun <reified E : Throwable> assertThrows(block: () -> Unit): E {
        try {
            block()
        } catch (e: Throwable) {
            if (e is E) return e
            throw AssertionError("expected ${E::class.simpleName}, got $e", e)
        }
        fail("expected ${E::class.simpleName}")
        throw IllegalStateException()
    }
}
