package be.sleutel.core.test

import be.sleutel.core.AccountStatus
import be.sleutel.core.Approval
import be.sleutel.core.CoreException
import be.sleutel.core.Verification
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

/**
 * Enrollment through the bank and logins of the relying party, as an app drives them: approved
 * with the code (under number matching with the number picked, or keeping some optional claims
 * only), declined, or refused (a wrong code, a missing number).
 */
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
        auth.approve(request.requestId, Approval(Verification.Code(CODE)))

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
            auth.approve(request.requestId, Approval(Verification.Code("11235")))
            fail("a wrong code was accepted")
        } catch (e: CoreException.WrongCode) {
            assertEquals(2u, e.attemptsLeft)
        }

        assertStillPending(auth, login, request)
        auth.approve(request.requestId, Approval(Verification.Code(CODE)))
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
        auth.approve(request.requestId, Approval(Verification.Code(CODE)))
        val answer = SleutelServer.awaitAnswer(login)
        assertNotNull((answer as? TokenAnswer.Token)?.idToken)
    }

    @Test
    fun numberMatchingLoginIsApprovedWithTheNumberTheRelyingPartyShows() = runBlocking {
        enroll(phone, phoneNumber)
        val auth = phone.authenticator
        val login = SleutelServer.startLogin(phoneNumber, numberMatching = true)
        val shown = login.matchNumber ?: throw AssertionError("the relying party shows no number")
        val request = awaitPendingRequest(auth)
        val options = request.numberOptions ?: throw AssertionError("the phone offers no numbers")
        // The options arrive as bytes (uniffi carries a list of u8 as a ByteArray); the number is a UByte.
        val picked = options.single { it.toUByte().toInt() == shown }.toUByte()

        auth.approve(request.requestId, Approval(Verification.Code(CODE), number = picked))

        assertTrue(SleutelServer.awaitAnswer(login) is TokenAnswer.Token)
        assertTrue(auth.pending().isEmpty())
    }

    @Test
    fun numberMatchingRequestApprovedWithoutANumberRaisesInvalidInputAndStaysPending() = runBlocking {
        enroll(phone, phoneNumber)
        val auth = phone.authenticator
        val login = SleutelServer.startLogin(phoneNumber, numberMatching = true)
        val request = awaitPendingRequest(auth)

        try {
            auth.approve(request.requestId, Approval(Verification.Code(CODE)))
            fail("approved a number-matching request without a number")
        } catch (e: CoreException.InvalidInput) {
            assertEquals("number", e.field)
        }

        assertStillPending(auth, login, request)
    }

    @Test
    fun optionalClaimsLeftOutAreMissingFromTheIdToken() = runBlocking {
        enroll(phone, phoneNumber)
        val auth = phone.authenticator
        val login = SleutelServer.startLogin(phoneNumber)
        val request = awaitPendingRequest(auth)
        assertEquals(listOf("name", "given_name", "family_name"), request.optionalClaims)

        auth.approve(
            request.requestId,
            Approval(Verification.Code(CODE), optionalClaims = listOf("given_name")),
        )

        val answer = SleutelServer.awaitAnswer(login)
        val token = answer as? TokenAnswer.Token ?: throw AssertionError("expected an ID token, got $answer")
        val claims = SleutelServer.idTokenClaims(token.idToken)
        assertTrue("given_name", (claims["given_name"] as? String).orEmpty().isNotEmpty())
        assertNull(claims["name"])
        assertNull(claims["family_name"])
    }
}
