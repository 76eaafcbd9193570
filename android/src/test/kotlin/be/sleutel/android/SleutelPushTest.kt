package be.sleutel.android

import be.sleutel.core.ActionView
import be.sleutel.core.protocol.ActionKind
import java.io.IOException
import kotlinx.coroutines.test.runTest
import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertSame
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner

/** [SleutelPush]: the push messages it hands to the core, and the tokens it registers. */
@RunWith(RobolectricTestRunner::class)
class SleutelPushTest {

    /** A core that records what it was given; registration fails for [unreachable] accounts. */
    private class RecordingCore(
        private val accounts: List<String> = emptyList(),
        private val unreachable: Set<String> = emptySet(),
    ) : PushCore {
        val payloads = mutableListOf<String>()
        val registered = mutableListOf<Pair<String, String>>()
        val shown = ActionView(
            "request-1", "account-1", "tax", "Tax-on-web", ActionKind.LOGIN, "Log in?", null,
            emptyList(), emptyList(), false, null, null, null, 0, 0,
        )

        override fun accountIds(): List<String> = accounts

        override suspend fun handlePush(payload: String): ActionView {
            payloads += payload
            return shown
        }

        override suspend fun registerPushToken(accountId: String, token: String) {
            if (accountId in unreachable) throw IOException("no network")
            registered += accountId to token
        }
    }

    private suspend fun assertRefused(push: SleutelPush, data: Map<String, String>): PushException {
        try {
            push.onMessageReceived(data)
        } catch (e: PushException) {
            return e
        }
        fail("the message was handed to the core")
        throw AssertionError()
    }

    @Test
    fun messageWithTheTwoIdsIsHandedToTheCoreAsItsJsonPayload() = runTest {
        val core = RecordingCore()

        val shown = SleutelPush(core).onMessageReceived(mapOf("account_id" to "acc-1", "request_id" to "req-\"1"))

        assertSame(core.shown, shown)
        val payload = JSONObject(core.payloads.single())
        assertEquals(setOf("account_id", "request_id"), payload.keys().asSequence().toSet())
        assertEquals("acc-1", payload.getString("account_id"))
        assertEquals("req-\"1", payload.getString("request_id"))
    }

    @Test
    fun messageWithoutEitherIdIsRefusedBeforeTheCore() = runTest {
        val core = RecordingCore()
        val push = SleutelPush(core)

        for (missing in listOf("account_id", "request_id")) {
            val data = mapOf("account_id" to "acc-1", "request_id" to "req-1") - missing

            val refused = assertRefused(push, data)

            assertEquals(missing, (refused as PushException.MissingField).field)
        }
        assertTrue(core.payloads.isEmpty())
    }

    @Test
    fun messageWithAnyOtherFieldIsRefusedBeforeTheCore() = runTest {
        val core = RecordingCore()

        val refused = assertRefused(
            SleutelPush(core),
            mapOf("account_id" to "acc-1", "request_id" to "req-1", "text" to "Pay 500 EUR"),
        )

        assertEquals("text", (refused as PushException.UnexpectedField).field)
        assertTrue(core.payloads.isEmpty())
    }

    @Test
    fun newTokenIsRegisteredForEveryAccount() = runTest {
        val core = RecordingCore(accounts = listOf("acc-1", "acc-2"))

        SleutelPush(core).onNewToken("fcm-token")

        assertEquals(listOf("acc-1" to "fcm-token", "acc-2" to "fcm-token"), core.registered)
    }

    @Test
    fun failedRegistrationIsReportedAfterTryingEveryAccount() = runTest {
        val core = RecordingCore(accounts = listOf("acc-1", "acc-2", "acc-3"), unreachable = setOf("acc-2"))

        try {
            SleutelPush(core).onNewToken("fcm-token")
            fail("a failed registration went unreported")
        } catch (e: PushException.TokenNotRegistered) {
            assertEquals(listOf("acc-2"), e.accountIds)
            assertTrue(e.cause is IOException)
        }
        assertEquals(listOf("acc-1" to "fcm-token", "acc-3" to "fcm-token"), core.registered)
    }
}
