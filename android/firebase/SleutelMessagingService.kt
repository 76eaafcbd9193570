// A template for the app, not part of the module: Firebase Cloud Messaging is published on
// Google's Maven repository, not on Maven Central, so neither the module's Gradle build (which
// keeps apps free to choose their push stack) nor the verification build compiles this file.
// Copy it into the app, which depends on com.google.firebase:firebase-messaging, register it in
// the app's manifest (see the commented entry in android/src/main/AndroidManifest.xml), and
// replace the two notification functions and `sleutel` with the app's own.
package com.example.app

import be.sleutel.android.AuthenticatorPushCore
import be.sleutel.android.PushException
import be.sleutel.android.SleutelPush
import be.sleutel.core.ActionView
import be.sleutel.core.Authenticator
import be.sleutel.core.CoreException
import com.google.firebase.messaging.FirebaseMessagingService
import com.google.firebase.messaging.RemoteMessage
import kotlinx.coroutines.runBlocking

/** Hands FCM's messages and tokens to the Sleutel core through [SleutelPush]. */
class SleutelMessagingService : FirebaseMessagingService() {

    /** The app's one Authenticator, opened at start-up with an AndroidKeystore. */
    private val sleutel: Authenticator get() = (application as ExampleApplication).sleutel

    private val push by lazy { SleutelPush(AuthenticatorPushCore(sleutel)) }

    // FCM calls both methods on a background thread and may stop the process soon after they
    // return, so the work is done before returning (runBlocking), not launched and left behind.

    override fun onMessageReceived(message: RemoteMessage) = runBlocking {
        try {
            showRequest(push.onMessageReceived(message.data))
        } catch (e: PushException) {
            // Not a message of the Sleutel server: ignore it.
        } catch (e: CoreException) {
            // The request could not be fetched yet: on a locked phone the device key refuses to
            // sign (CoreException.Keystore with UserCancelled), or the network is down. Say that
            // a request is waiting; the app calls refreshPending() when the person opens it.
            showRequestWaiting()
        }
    }

    override fun onNewToken(token: String) = runBlocking {
        try {
            push.onNewToken(token)
        } catch (e: PushException.TokenNotRegistered) {
            // Keep the token and register it again when the app next starts.
            rememberTokenToRegister(token)
        }
    }

    private fun showRequest(request: ActionView) {
        TODO("the app's notification: request.rpName, request.text; open the app on tap")
    }

    private fun showRequestWaiting() {
        TODO("the app's notification without content: open the app on tap")
    }

    private fun rememberTokenToRegister(token: String) {
        TODO("the app's retry: SharedPreferences, WorkManager, ...")
    }
}
