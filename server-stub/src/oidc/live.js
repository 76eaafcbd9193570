// Sleutel sign-in: live status for the QR page and the wait page (progressive enhancement).
// Without this script the pages refresh themselves (a meta refresh inside <noscript>); with
// it, they ask the server's status once a second and change in place: a new QR code every
// step, the short code as soon as a phone took the sign-in, the status read out by screen
// readers, and the way back once the person answered. Served from the server's own origin
// (script-src 'self'); no inline script, no eval, nothing from elsewhere.
(function () {
  "use strict";
  var STATUS_URL = "/oidc/sign-in/status.json";
  var EVERY_MS = 1000;
  var AFTER_FAILURE_MS = 3000;
  var qr = document.getElementById("qr");
  var code = document.querySelector(".code");
  var live = document.getElementById("live");
  var step = null;

  function announce(text) {
    if (live && text && live.textContent !== text) {
      live.textContent = text;
    }
  }

  function show(status) {
    if (status.state === "unbound") {
      if (qr && status.step !== step) {
        step = status.step;
        qr.setAttribute("src", status.image);
      }
      return true;
    }
    if (status.state === "waiting" && code) {
      if (code.textContent !== status.code) {
        code.textContent = status.code;
      }
      announce(status.message);
      return true;
    }
    // Bound while the QR page was shown, or answered: the next page says what happened.
    announce(status.message);
    window.location.assign(status.next);
    return false;
  }

  function tick() {
    fetch(STATUS_URL, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (status) {
        if (show(status)) {
          window.setTimeout(tick, EVERY_MS);
        }
      })
      .catch(function () {
        window.setTimeout(tick, AFTER_FAILURE_MS);
      });
  }

  window.setTimeout(tick, EVERY_MS);
})();
