package be.sleutel.core.test

import be.sleutel.core.types.AccountStatus
import be.sleutel.core.types.CoreException
import be.sleutel.core.protocol.DeclineReason
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test

/** Enrollment through the bank and logins of the relying party, as an app drives them. */
class LoginTest {
    private lateinit var dataDir: String
    private lateinit var phone: Phone
    private val phoneNumber = randomMobileNumber()

    @Before
    fun openPhone() {
        dataDir = freshDataDir()
        phone = openPhone(dataDir, PhoneStorage())
    }

    @After
    fun closePhone() {
        phone.authenticator.close()
        deleteDataDir(dataDir)
    }

    @Test
    fun enrollmentThenApprovedLoginGivesTheRelyingPartyAnIdToken() = runBlocking {
        val (citizen, account) = enroll(phone, phoneNumber)
        val auth = phone.authenticator
        assertEquals("${citizen.givenName} ${citizen.familyName}", account.displayName)
        assertEquals(phoneNumber, account.phoneNumber)
        assertEquals(AccountStatus.ACTIVE, account.status)
        assertNull(auth.enrollmentInProgress())
        assertEquals(listOf(account.accountId), auth.accounts().map { it.accountId })

        val login = SleutelServer.startLogin(phoneNumber, bindingMessage = "Kotlin 42")
        val request = awaitPendingRequest(auth)
        assertEquals("Kotlin 42", request.bindingMessage)
        auth.approveWithCode(request.requestId, CODE)

        val answer = SleutelServer.awaitAnswer(login)
        val token = answer as? TokenAnswer.Token ?: throw AssertionError("expected an ID token, got $answer")
        val claims = SleutelServer.idTokenClaims(token.idToken)
        assertTrue("sub", (claims["sub"] as? String).orEmpty().isNotEmpty())
        assertEquals("online-overheid", claims["aud"])
        assertEquals("${citizen.givenName} ${citizen.familyName}", claims["name"])
        assertEquals(citizen.givenName, claims["given_name"])
        assertEquals(citizen.familyName, claims["family_name"])
        assertTrue(auth.pending().isEmpty())
        assertEquals(1, auth.history().size)
    }

    @Test
    fun wrongCodeRaisesWrongCodeWithAttemptsLeftAndTheRequestStaysPending() = runBlocking {
        enroll(phone, phoneNumber)
        val auth = phone.authenticator
        val login = SleutelServer.startLogin(phoneNumber)
        val request = awaitPendingRequest(auth)

        try {
            auth.approveWithCode(request.requestId, "11235")
            fail("a wrong code was accepted")
        } catch (e: CoreException.WrongCode) {
            assertEquals(2u, e.attemptsLeft)
        }

        assertEquals(listOf(request.requestId), auth.pending().map { it.requestId })
        assertNull("the relying party is still waiting", SleutelServer.pollToken(login))
        auth.approveWithCode(request.requestId, CODE)
        assertTrue(SleutelServer.awaitAnswer(login) is TokenAnswer.Token)
    }

    @Test
    fun declineGivesTheRelyingPartyAccessDenied() = runBlocking {
        enroll(phone, phoneNumber)
        val auth = phone.authenticator
        val login = SleutelServer.startLogin(phoneNumber)
        val request = awaitPendingRequest(auth)

        auth.decline(request.requestId, DeclineReason.NOT_ME)

        assertEquals(TokenAnswer.Error("access_denied"), SleutelServer.awaitAnswer(login))
        assertTrue(auth.pending().isEmpty())
    }

    @Test
    fun reopeningTheSameDataDirectoryFindsTheAccountAndCanApprove() = runBlocking {
        val (_, account) = enroll(phone, phoneNumber)
        phone.authenticator.close()
        phone = openPhone(dataDir, phone.storage)
        val auth = phone.authenticator

        val accounts = auth.accounts()
        assertEquals(listOf(account.accountId), accounts.map { it.accountId })
        assertEquals(account.displayName, accounts.single().displayName)

        val login = SleutelServer.startLogin(phoneNumber)
        val request = awaitPendingRequest(auth)
        auth.approveWithCode(request.requestId, CODE)
        val answer = SleutelServer.awaitAnswer(login)
        assertNotNull((answer as? TokenAnswer.Token)?.idToken)
    }
}
