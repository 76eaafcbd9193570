package be.sleutel.android

import android.os.Build
import be.sleutel.core.KeystoreException
import java.io.File
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment

/** The secret slots of [AndroidKeystore]: AES-GCM files in the no-backup directory. */
@RunWith(RobolectricTestRunner::class)
class SecretSlotsTest {
    private val store = StandInKeyStore()
    private val dir = AndroidKeystore.secretsDir(RuntimeEnvironment.getApplication())
    private val keystore = AndroidKeystore(
        store.provider,
        dir,
        { _, _ -> throw AssertionError("no biometric key here") },
        Build.VERSION_CODES.VANILLA_ICE_CREAM,
    )
    private val salt = ByteArray(16) { it.toByte() }

    private fun slotFiles(): List<File> = dir.listFiles().orEmpty().filter { it.name.endsWith(".slot") }

    private fun assertUnavailable(block: () -> Unit): KeystoreException.Unavailable {
        try {
            block()
        } catch (e: KeystoreException.Unavailable) {
            return e
        }
        fail("expected KeystoreException.Unavailable")
        throw AssertionError()
    }

    @Test
    fun storedSecretReadsBack() {
        keystore.putSecret("salt/sleutel-device-1", salt)

        assertArrayEquals(salt, keystore.getSecret("salt/sleutel-device-1"))
    }

    @Test
    fun missingSecretIsNull() {
        assertNull(keystore.getSecret("salt/sleutel-device-1"))
    }

    @Test
    fun storingAgainReplacesTheValue() {
        keystore.putSecret("salt/sleutel-device-1", salt)

        keystore.putSecret("salt/sleutel-device-1", byteArrayOf(7))

        assertArrayEquals(byteArrayOf(7), keystore.getSecret("salt/sleutel-device-1"))
        assertEquals(1, slotFiles().size)
    }

    @Test
    fun deletedSecretIsGone() {
        keystore.putSecret("salt/sleutel-device-1", salt)

        keystore.deleteSecret("salt/sleutel-device-1")

        assertNull(keystore.getSecret("salt/sleutel-device-1"))
        assertTrue(slotFiles().isEmpty())
    }

    @Test
    fun deletingAMissingSecretIsNotAnError() {
        keystore.deleteSecret("salt/sleutel-device-1")
    }

    @Test
    fun secretIsKeptEncryptedInTheNoBackupDirectory() {
        keystore.putSecret("salt/sleutel-device-1", salt)

        val file = slotFiles().single()
        assertTrue(file.canonicalPath.startsWith(RuntimeEnvironment.getApplication().noBackupFilesDir.canonicalPath))
        assertFalse("the file names no slot", file.name.contains("sleutel-device-1"))
        val bytes = file.readBytes()
        assertFalse("the value is not in the clear", bytes.toList().windowed(salt.size).any { it == salt.toList() })
    }

    @Test
    fun everyWriteDrawsAFreshIv() {
        keystore.putSecret("salt/sleutel-device-1", salt)
        val first = slotFiles().single().readBytes()

        keystore.putSecret("salt/sleutel-device-1", salt)
        val second = slotFiles().single().readBytes()

        val iv = 2 until 2 + SecretSlots.GCM_IV_BYTES
        assertFalse(first.sliceArray(iv).contentEquals(second.sliceArray(iv)))
    }

    @Test
    fun alteredSecretIsRefusedAsDamaged() {
        keystore.putSecret("salt/sleutel-device-1", salt)
        val file = slotFiles().single()
        val bytes = file.readBytes()
        bytes[bytes.size - 1] = (bytes[bytes.size - 1].toInt() xor 1).toByte()
        file.writeBytes(bytes)

        val refused = assertUnavailable { keystore.getSecret("salt/sleutel-device-1") }

        assertEquals("a secret slot is damaged or was altered", refused.detail)
    }

    @Test
    fun secretCopiedOverAnotherSlotIsRefused() {
        keystore.putSecret("salt/sleutel-device-1", salt)
        val original = slotFiles().single()
        keystore.putSecret("salt/sleutel-device-2", byteArrayOf(7))
        val other = slotFiles().single { it != original }

        original.copyTo(other, overwrite = true)

        val refused = assertUnavailable { keystore.getSecret("salt/sleutel-device-2") }

        assertEquals("a secret slot is damaged or was altered", refused.detail)
    }

    @Test
    fun truncatedSecretIsRefused() {
        keystore.putSecret("salt/sleutel-device-1", salt)
        slotFiles().single().writeBytes(byteArrayOf(1, 12, 0))

        val refused = assertUnavailable { keystore.getSecret("salt/sleutel-device-1") }

        assertEquals("a secret slot is damaged or was altered", refused.detail)
    }

    @Test
    fun slotFileOverTheSizeLimitIsRefusedUnread() {
        keystore.putSecret("salt/sleutel-device-1", salt)
        slotFiles().single().writeBytes(ByteArray(SecretSlots.MAX_SLOT_FILE_BYTES.toInt() + 1))

        val refused = assertUnavailable { keystore.getSecret("salt/sleutel-device-1") }

        assertEquals("a secret slot is larger than any written here", refused.detail)
    }

    @Test
    fun secretWhoseKeyIsGoneIsUnavailableRatherThanMissing() {
        keystore.putSecret("salt/sleutel-device-1", salt)
        store.entries.remove(SecretSlots.KEY_ALIAS)

        val refused = assertUnavailable { keystore.getSecret("salt/sleutel-device-1") }

        assertTrue(refused.detail, refused.detail.contains("key of the secret slots is gone"))
    }

    @Test
    fun oneKeyOfTheKeystoreEncryptsEverySlot() {
        keystore.putSecret("salt/sleutel-device-1", salt)
        keystore.putSecret("salt/sleutel-device-2", salt)

        assertEquals(listOf(SecretSlots.KEY_ALIAS), store.entries.keys.toList())
        assertEquals(1, store.specsSeen.size)
    }
}
