package be.sleutel.android

import be.sleutel.core.ActionView
import kotlin.coroutines.cancellation.CancellationException
import org.json.JSONObject

/**
 * What the push glue needs of the core: the accounts on this phone, the handling of a push, and
 * the registration of the phone's push token. [AuthenticatorPushCore] is the one implementation
 * over the `Authenticator`; an interface so that the glue is tested without a server.
 */
interface PushCore {
    /** The ids of the accounts enrolled on this phone. */
    fun accountIds(): List<String>

    /**
     * Fetches, verifies and keeps the request a push announced ([payload] is the JSON the core's
     * `handlePush` takes) and returns what to show.
     */
    suspend fun handlePush(payload: String): ActionView

    /** Tells the server that pushes for [accountId] go to the FCM [token] from now on. */
    suspend fun registerPushToken(accountId: String, token: String)
}

/**
 * Why a push message or token was not handed to the core. A message the core refuses, or a
 * request it cannot fetch, raises the core's own `CoreException`.
 */
sealed class PushException(message: String, cause: Throwable? = null) : Exception(message, cause) {
    /** The message lacks [field]: it did not come from the Sleutel server. */
    class MissingField(val field: String) : PushException("the push message has no $field")

    /**
     * The message carries [field], which the Sleutel server never sends: a push carries the
     * account's and the request's id and nothing else (the request itself is fetched over the
     * phone's authenticated API), so this message did not come from it.
     */
    class UnexpectedField(val field: String) : PushException("the push message carries $field")

    /**
     * The token could not be registered for [accountIds] (the others have it); [cause] is the
     * first failure. Register the same token again later, for instance when the app next starts.
     */
    class TokenNotRegistered(val accountIds: List<String>, cause: Throwable) :
        PushException("the push token is not registered for ${accountIds.size} account(s)", cause)
}

/**
 * The push glue between Firebase Cloud Messaging and the core, with nothing of Firebase in it:
 * the app's `FirebaseMessagingService` calls [onMessageReceived] and [onNewToken] (see
 * `android/firebase/SleutelMessagingService.kt`). Both suspend on network calls of the core;
 * call them from a background dispatcher.
 */
class SleutelPush(private val core: PushCore) {

    /**
     * Handles the data of a push message: checks that it holds exactly the account's and the
     * request's id, hands them to the core, and returns the request to show.
     *
     * @throws PushException.MissingField or [PushException.UnexpectedField] for a message the
     *   Sleutel server did not send, before the core is called.
     */
    suspend fun onMessageReceived(data: Map<String, String>): ActionView {
        for (field in data.keys) {
            if (field !in PUSH_FIELDS) throw PushException.UnexpectedField(field)
        }
        val payload = JSONObject()
        for (field in PUSH_FIELDS) {
            payload.put(field, data[field] ?: throw PushException.MissingField(field))
        }
        return core.handlePush(payload.toString())
    }

    /**
     * Registers a new FCM [token] for every account on this phone: FCM gives one token per app
     * install, and each account's server must know it. Every account is tried even when one
     * fails.
     *
     * @throws PushException.TokenNotRegistered naming the accounts that do not have the token.
     */
    suspend fun onNewToken(token: String) {
        val failed = mutableListOf<String>()
        var firstFailure: Exception? = null
        for (accountId in core.accountIds()) {
            try {
                core.registerPushToken(accountId, token)
            } catch (e: CancellationException) {
                throw e
            } catch (e: Exception) {
                failed += accountId
                if (firstFailure == null) firstFailure = e
            }
        }
        if (firstFailure != null) throw PushException.TokenNotRegistered(failed, firstFailure)
    }

    /** The fields of a push message. */
    private companion object {
        /** What the server sends, and all it sends: the core's `handlePush` payload. */
        val PUSH_FIELDS = listOf("account_id", "request_id")
    }
}
