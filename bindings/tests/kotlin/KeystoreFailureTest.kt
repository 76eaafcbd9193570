package be.sleutel.core.test

import be.sleutel.core.Approval
import be.sleutel.core.CoreException
import be.sleutel.core.Keystore
import be.sleutel.core.KeystoreException
import be.sleutel.core.UserPresenceGate
import be.sleutel.core.Verification
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** Failures of the platform keystore reach the app as typed errors and leave requests pending. */
class KeystoreFailureTest {
    private val dataDir = freshDataDir()
    private val storage = PhoneStorage()
    private val phoneNumber = randomMobileNumber()
    private val opened = mutableListOf<Phone>()

    @After
    fun closePhones() {
        opened.forEach { it.authenticator.close() }
        deleteDataDir(dataDir)
    }

    @Test
    fun userCancellingThePromptRaisesKeystoreUserCancelledAndTheRequestStaysPending() = runBlocking {
        val gate = CancellingGate()
        val phone = openPhone(dataDir, storage, gate).also { opened += it }
        enroll(phone, phoneNumber)
        val auth = phone.authenticator
        val login = SleutelServer.startLogin(phoneNumber)
        val request = awaitPendingRequest(auth)

        gate.cancel = true
        try {
            auth.approve(request.requestId, Approval(Verification.Code(CODE)))
            fail("approved although the person cancelled")
        } catch (e: CoreException.Keystore) {
            assertTrue("got ${e.error}", e.error is KeystoreException.UserCancelled)
        }
        assertStillPending(auth, login, request)

        gate.cancel = false
        auth.approve(request.requestId, Approval(Verification.Code(CODE)))
        assertTrue(SleutelServer.awaitAnswer(login) is TokenAnswer.Token)
    }

    @Test
    fun unexpectedExceptionInTheKeystoreBecomesKeystoreUnavailable() = runBlocking {
        val keystore = CrashingKeystore(storage.keystore())
        val auth = be.sleutel.core.Authenticator.open(dataDir, serverUrl, keystore)
        opened += Phone(dataDir, storage, auth)
        enroll(opened.last(), phoneNumber)
        val login = SleutelServer.startLogin(phoneNumber)
        val request = awaitPendingRequest(auth)

        keystore.crash = true
        try {
            auth.approve(request.requestId, Approval(Verification.Code(CODE)))
            fail("approved with a keystore that cannot sign")
        } catch (e: CoreException.Keystore) {
            val cause = e.error
            assertTrue("got $cause", cause is KeystoreException.Unavailable)
            val detail = (cause as KeystoreException.Unavailable).detail
            assertTrue(detail, detail.contains("IllegalStateException"))
            assertFalse("the exception's message must not leak: $detail", detail.contains("crashed"))
        }
        assertStillPending(auth, login, request)

        keystore.crash = false
        auth.approve(request.requestId, Approval(Verification.Code(CODE)))
        assertTrue(SleutelServer.awaitAnswer(login) is TokenAnswer.Token)
    }
}

/** A user-presence gate whose person cancels the prompt while [cancel] is set. */
private class CancellingGate : UserPresenceGate {
    @Volatile
    var cancel = false

    override fun confirm(request: be.sleutel.core.PresenceRequest) {
        if (cancel) throw KeystoreException.UserCancelled()
    }
}

/**
 * A keystore whose signing fails, while [crash] is set, with an exception that is not a
 * [KeystoreException].
 */
private class CrashingKeystore(private val delegate: Keystore) : Keystore by delegate {
    @Volatile
    var crash = false

    override fun sign(alias: String, message: ByteArray, prompt: String?): ByteArray {
        if (crash) throw IllegalStateException("the signing service crashed")
        return delegate.sign(alias, message, prompt)
    }
}
