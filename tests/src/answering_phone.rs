//! The web demo's virtual phone: an enrolled [`VirtualPhone`] that answers every request it
//! receives as it is told: approve with the code, decline, "not me", hold the request unanswered
//! (`wait`, as a person who looks and does nothing), or ask the person at the terminal (`ask`:
//! the request is printed as the app shows it, and a key answers).
//!
//! How it answers can be changed while it runs through a small JSON control API on loopback
//! ([`ControlApi`]), which the browser tests use: `GET /phone` (the answer mode and what the
//! phone showed), `PUT /phone/answer` with `{"answer": "decline"}`. A request held under `wait`
//! or `ask` is answered as soon as the mode says how. `POST /phone/open-link` with
//! `{"link": "https://..."}` hands the phone a sign-in link, as a scanned QR code or the "open
//! the app" link tapped on the phone: the phone opens it, answers the request as its mode says,
//! and gives back the request and, for an app-to-app link, the URL that takes the person back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sleutel_core::{ActionView, Approval, DeclineReason};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::phone::VirtualPhone;
use crate::{HarnessError, Result};

/// Path of the phone's state in the control API.
pub const PATH_PHONE: &str = "/phone";
/// Path of the phone's answer mode in the control API.
pub const PATH_ANSWER: &str = "/phone/answer";
/// Path of the control API that hands the phone a sign-in link.
pub const PATH_OPEN_LINK: &str = "/phone/open-link";

/// How long one look for a new request lasts before the phone checks its mode and the keys
/// again: short, so a mode change answers a held request within about a second.
const LOOK_FOR: Duration = Duration::from_secs(1);

/// How often the phone looks at its mode while it holds a request unanswered.
const HOLD_TICK: Duration = Duration::from_millis(200);

/// How many shown requests the control API remembers: a demo session or a test sees a handful;
/// the bound keeps a phone left running for days from growing without end.
const MAX_SHOWN: usize = 50;

/// How the phone answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    /// Approve with the 5-digit code, sharing every claim asked.
    Approve,
    /// Decline ("cancel").
    Decline,
    /// Decline as "this was not me".
    NotMe,
    /// Show the request and do nothing until the mode changes.
    Wait,
    /// Print the request on the terminal and answer on a key: a approve, d decline, n not me.
    Ask,
}

/// A request as the phone showed it, and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shown {
    /// The request's id.
    pub request_id: String,
    /// The relying party's display name.
    pub service: String,
    /// The sentence the phone shows ("Ik log in op de online overheid").
    pub text: String,
    /// The short code shown beside it (the sign-in page shows the same one).
    pub binding_message: Option<String>,
    /// The claims the person shares in any case.
    pub claims: Vec<String>,
    /// The claims the person may leave out.
    pub optional_claims: Vec<String>,
    /// `approved`, `declined`, `not-me` or the error the phone got; `None` while unanswered.
    pub outcome: Option<String>,
}

impl Shown {
    fn of(view: &ActionView) -> Self {
        Self {
            request_id: view.request_id.clone(),
            service: view.rp_name.clone(),
            text: view.text.clone(),
            binding_message: view.binding_message.clone(),
            claims: view.claims.clone(),
            optional_claims: view.optional_claims.clone(),
            outcome: None,
        }
    }
}

/// What the control API reports: `GET /phone`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneState {
    /// How the phone answers now.
    pub answer: Answer,
    /// The requests the phone showed, oldest first (the last [`MAX_SHOWN`]).
    pub shown: Vec<Shown>,
}

/// The body of `PUT /phone/answer`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetAnswer {
    /// The new answer mode.
    pub answer: Answer,
}

/// The body of `POST /phone/open-link`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenLink {
    /// The sign-in link: a scanned QR code's, or the "open the app" link of a sign-in page.
    pub link: String,
}

/// The answer of `POST /phone/open-link`: the request the link opened, answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkAnswered {
    /// The request, with its outcome.
    pub request: Shown,
    /// For an app-to-app link: the URL the app opens after the answer, which takes the person
    /// back to the service. `None` for a scanned QR code.
    pub return_url: Option<String>,
}

/// What the control API asks of the phone's loop, which alone holds the phone.
enum Command {
    /// Open a sign-in link and answer its request; the outcome or the phone's error goes back.
    OpenLink {
        link: String,
        reply: oneshot::Sender<std::result::Result<LinkAnswered, String>>,
    },
}

/// What woke the phone's loop.
enum Event {
    /// A look for new requests ended (boxed: a request is far larger than a command).
    Found(Box<Result<ActionView>>),
    /// The control API asked something.
    Command(Option<Command>),
}

/// The state the phone's loop and the control API share. A plain mutex: it is held for a copy
/// or a push, never across an await.
#[derive(Clone)]
struct Shared(Arc<Mutex<PhoneState>>);

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut PhoneState) -> T) -> T {
        // A panic elsewhere while holding it leaves a state that is still consistent.
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    fn answer(&self) -> Answer {
        self.with(|s| s.answer)
    }

    fn record(&self, shown: Shown) {
        self.with(|s| {
            if s.shown.len() >= MAX_SHOWN {
                s.shown.remove(0);
            }
            s.shown.push(shown);
        });
    }

    fn settle(&self, request_id: &str, outcome: String) {
        self.with(|s| {
            if let Some(shown) = s.shown.iter_mut().find(|r| r.request_id == request_id) {
                shown.outcome = Some(outcome);
            }
        });
    }
}

/// The answering phone: run its loop with [`AnsweringPhone::run`], and serve its control API
/// with [`AnsweringPhone::control_api`].
pub struct AnsweringPhone {
    phone: VirtualPhone,
    code: String,
    shared: Shared,
    keys: Option<mpsc::Receiver<char>>,
    commands: mpsc::Receiver<Command>,
    /// Kept so the channel never closes while the loop runs, even with no control API served.
    command_sender: mpsc::Sender<Command>,
}

/// How many control API calls may wait for the phone: a test makes one at a time.
const COMMANDS_QUEUED: usize = 8;

impl AnsweringPhone {
    /// An answering phone around the enrolled `phone`, approving with `code`, answering as
    /// `answer` says until told otherwise. Under [`Answer::Ask`] it reads keys from the terminal.
    pub fn new(phone: VirtualPhone, code: &str, answer: Answer) -> Self {
        let keys = (answer == Answer::Ask).then(terminal_keys);
        let (command_sender, commands) = mpsc::channel(COMMANDS_QUEUED);
        Self {
            phone,
            code: code.to_owned(),
            shared: Shared(Arc::new(Mutex::new(PhoneState {
                answer,
                shown: Vec::new(),
            }))),
            keys,
            commands,
            command_sender,
        }
    }

    /// The control API of this phone, to serve beside its loop.
    pub fn control_api(&self) -> ControlApi {
        ControlApi {
            shared: self.shared.clone(),
            commands: self.command_sender.clone(),
        }
    }

    /// Answers requests until the task is dropped: waits for the next one (or a link from the
    /// control API), shows it, and answers as the mode says (holding it while the mode is
    /// `wait`, or `ask` without a key).
    pub async fn run(mut self) {
        loop {
            // Both futures are cancel-safe: a request a cancelled look did not return stays
            // unhandled and is found by the next one.
            let event = tokio::select! {
                command = self.commands.recv() => Event::Command(command),
                found = self.phone.next_request(LOOK_FOR) => Event::Found(Box::new(found)),
            };
            match event {
                Event::Found(found) => match *found {
                    Ok(view) => {
                        self.settle(&view).await;
                    }
                    Err(HarnessError::Timeout(_)) => {}
                    Err(e) => {
                        eprintln!("phone: could not fetch requests: {e}");
                        tokio::time::sleep(LOOK_FOR).await;
                    }
                },
                Event::Command(None) => {}
                Event::Command(Some(Command::OpenLink { link, reply })) => {
                    let answered = self.open_link(&link).await;
                    // The caller may have given up waiting; the phone answered all the same.
                    let _ = reply.send(answered);
                }
            }
        }
    }

    /// Opens a sign-in link as the app does, then answers its request.
    async fn open_link(&mut self, link: &str) -> std::result::Result<LinkAnswered, String> {
        let opened = self
            .phone
            .open_sign_in_link(link)
            .await
            .map_err(|e| e.to_string())?;
        let request = self.settle(&opened.request).await;
        Ok(LinkAnswered {
            request,
            return_url: opened.return_url,
        })
    }

    /// Shows `view` and answers it as the mode says, holding it until the mode decides.
    async fn settle(&mut self, view: &ActionView) -> Shown {
        self.shared.record(Shown::of(view));
        let mut printed = false;
        let decision = loop {
            match self.shared.answer() {
                Answer::Wait => {}
                Answer::Ask => {
                    if !printed {
                        print_request(view);
                        printed = true;
                    }
                    if let Some(decision) = self.key() {
                        break decision;
                    }
                }
                decided => break decided,
            }
            tokio::time::sleep(HOLD_TICK).await;
        };
        let outcome = self.answer(view, decision).await;
        println!("phone: {} — \"{}\": {outcome}", view.rp_name, view.text);
        self.shared.settle(&view.request_id, outcome.clone());
        Shown {
            outcome: Some(outcome),
            ..Shown::of(view)
        }
    }

    /// The decision of a key pressed at the terminal, if one was.
    fn key(&mut self) -> Option<Answer> {
        let keys = self.keys.as_mut()?;
        while let Ok(key) = keys.try_recv() {
            match key.to_ascii_lowercase() {
                'a' => return Some(Answer::Approve),
                'd' => return Some(Answer::Decline),
                'n' => return Some(Answer::NotMe),
                _ => println!("phone: press a (approve), d (decline) or n (not me)"),
            }
        }
        None
    }

    /// Answers `view` as `decision` says; the outcome as the control API reports it.
    async fn answer(&self, view: &ActionView, decision: Answer) -> String {
        let auth = self.phone.authenticator();
        let id = view.request_id.clone();
        let result = match decision {
            Answer::Decline => auth
                .decline(id, DeclineReason::Cancelled)
                .await
                .map(|_| "declined"),
            Answer::NotMe => auth
                .decline(id, DeclineReason::NotMe)
                .await
                .map(|_| "not-me"),
            Answer::Approve | Answer::Wait | Answer::Ask => auth
                .approve(id, Approval::code(self.code.clone()))
                .await
                .map(|_| "approved"),
        };
        match result {
            Ok(outcome) => outcome.to_owned(),
            Err(e) => format!("error: {e}"),
        }
    }
}

/// Prints a request as the app shows it, with the keys that answer it.
fn print_request(view: &ActionView) {
    println!();
    println!("phone: a request from {}", view.rp_name);
    println!("phone:   {}", view.text);
    if let Some(code) = &view.binding_message {
        println!("phone:   code {code} (the browser shows the same one)");
    }
    if !view.claims.is_empty() {
        println!("phone:   shares: {}", view.claims.join(", "));
    }
    if !view.optional_claims.is_empty() {
        println!(
            "phone:   may share: {} (all are shared)",
            view.optional_claims.join(", ")
        );
    }
    println!("phone:   press a (approve with the code), d (decline) or n (not me), then Enter");
}

/// The first character of each line typed at the terminal, read on a thread of its own (the
/// standard input blocks).
fn terminal_keys() -> mpsc::Receiver<char> {
    // A person types a few keys; more than this waiting unread means nobody is answering.
    const KEYS_BUFFERED: usize = 16;
    let (sender, receiver) = mpsc::channel(KEYS_BUFFERED);
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Some(key) = line.trim().chars().next()
                && sender.blocking_send(key).is_err()
            {
                return;
            }
            line.clear();
        }
    });
    receiver
}

/// The phone's control API: JSON on loopback, for tests and demos.
#[derive(Clone)]
pub struct ControlApi {
    shared: Shared,
    commands: mpsc::Sender<Command>,
}

impl ControlApi {
    /// The routes of the control API.
    pub fn router(self) -> Router {
        Router::new()
            .route(PATH_PHONE, get(phone_state))
            .route(PATH_ANSWER, put(set_answer))
            .route(PATH_OPEN_LINK, post(open_link))
            .with_state(self)
    }

    /// Serves the control API on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) -> Result<()> {
        axum::serve(listener, self.router())
            .await
            .map_err(|e| HarnessError::Server(format!("phone control API: {e}")))
    }
}

/// `GET /phone`.
async fn phone_state(State(api): State<ControlApi>) -> Json<PhoneState> {
    Json(api.shared.with(|s| s.clone()))
}

/// `PUT /phone/answer`.
async fn set_answer(State(api): State<ControlApi>, Json(body): Json<SetAnswer>) -> Response {
    api.shared.with(|s| s.answer = body.answer);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /phone/open-link`: answers once the phone answered the link's request (under `wait`,
/// when the mode changes); the phone's refusal (an expired or used link, a foreign one) is 422
/// with `{"error": "..."}`.
async fn open_link(State(api): State<ControlApi>, Json(body): Json<OpenLink>) -> Response {
    let (reply, answer) = oneshot::channel();
    let command = Command::OpenLink {
        link: body.link,
        reply,
    };
    if api.commands.send(command).await.is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match answer.await {
        Ok(Ok(answered)) => Json(answered).into_response(),
        Ok(Err(error)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "error": error })),
        )
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Binds a loopback listener on `port` (0: any free one) and gives its base URL.
pub async fn bind_loopback(port: u16, what: &str) -> Result<(TcpListener, String)> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|e| HarnessError::Server(format!("{what}: listening on port {port}: {e}")))?;
    let address = listener
        .local_addr()
        .map_err(|e| HarnessError::Server(format!("{what}: {e}")))?;
    Ok((listener, format!("http://{address}")))
}
