// The chatscope chat page: plain JS, no build step. Model text is only ever set as textContent.
"use strict";

const KEY_STORE = "chatscope.apiKey";
const $ = (id) => document.getElementById(id);
const state = { session: null, streaming: false };

// An element; text always goes in as textContent, never as markup.
function el(tag, className, text, props) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return Object.assign(node, props);
}

// The API key (if any) goes as a Bearer token; bodies are JSON.
function request(method, path, body) {
  const key = localStorage.getItem(KEY_STORE);
  const headers = key ? { Authorization: "Bearer " + key } : {};
  if (body === undefined) return fetch(path, { method, headers });
  headers["Content-Type"] = "application/json";
  return fetch(path, { method, headers, body: JSON.stringify(body) });
}

// A non-2xx answer as an Error whose message says plainly what went wrong.
async function httpError(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  try { message = (await response.json()).error.message || message; } catch (_) { /* keep it */ }
  const retry = response.headers.get("Retry-After");
  if (retry) message += ` (retry after ${retry} s)`;
  if (response.status === 401) askForKey();
  return new Error((response.status === 401 ? "This server needs an API key: " : "") + message);
}

async function api(method, path, body) {
  const response = await request(method, path, body);
  if (!response.ok) throw await httpError(response);
  return response.status === 204 ? null : response.json();
}

// Server-sent events from a fetch body (EventSource cannot POST): yields {event, data}.
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    // CRLF and CR end lines too; a CR at the very end may be half of a CRLF, so it waits.
    buffer = (buffer + value).replace(/\r\n/g, "\n").replace(/\r(?!$)/g, "\n");
    for (let end; (end = buffer.indexOf("\n\n")) >= 0;) {
      let event = "message", data = [];
      for (const line of buffer.slice(0, end).split("\n")) {
        const [, field, text] = /^([^:]*):? ?(.*)$/s.exec(line);
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
      }
      buffer = buffer.slice(end + 2);
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

function pretty(value) {
  try { return JSON.stringify(typeof value === "string" ? JSON.parse(value) : value, null, 2); }
  catch (_) { return String(value); }
}

// Text with ``` fences and `inline code`: prose in spans, code in <pre><code> or <code>.
function renderText(node, text) {
  node.replaceChildren();
  text.split("```").forEach((part, index) => {
    if (index % 2 === 0) {
      part.split("`").forEach((piece, inner) => {
        if (piece) node.append(el(inner % 2 ? "code" : "span", null, piece));
      });
    } else {
      const pre = node.appendChild(el("pre"));
      pre.append(el("code", null, part.replace(/^[^\n]*\n/, "")));
    }
  });
}

// Append streamed text (or thinking) to the last block of that kind, or start a new one.
function appendText(turn, text, kind = "text") {
  let node = turn.lastElementChild;
  if (!node?.classList.contains(kind)) node = turn.appendChild(el("div", kind, null, { raw: "" }));
  node.raw += text;
  renderText(node, node.raw);
}

function messageBox(role) {
  $("log").querySelector(".empty")?.remove();
  const box = el("article", "msg " + role);
  box.append(el("div", "role", role === "user" ? "You" : "Assistant"));
  return $("log").appendChild(box);
}

// A tool call is a closed <details>: its name shows; arguments and result unfold.
function showToolCall(turn, call) {
  const fold = el("details", "tool");
  fold.dataset.callId = call.id;
  fold.append(el("summary", null, "tool: " + call.name));
  fold.append(el("div", "label", "arguments"), el("pre", "args", pretty(call.arguments ?? {})));
  return turn.appendChild(fold);
}

function showToolResult(turn, result) {
  const folds = [...$("log").querySelectorAll("details.tool")];
  const fold = folds.findLast((node) => node.dataset.callId === result.id)
    || showToolCall(turn, { id: result.id, name: result.name });
  const failed = result.error !== null && result.error !== undefined && result.error !== "";
  fold.classList.add(failed ? "failed" : "ok");
  fold.querySelector("summary").textContent += failed ? " — failed" : " — done";
  fold.append(el("div", "label", failed ? "error" : "result"));
  const text = pretty(failed ? result.error : result.result);
  fold.append(el("pre", failed ? "result error" : "result", text));
}

function showError(message, where) {
  (where || messageBox("assistant")).append(el("div", "error-box", message, { role: "alert" }));
}

// Keep the newest text in view, unless the reader has scrolled up to read something.
function follow(action) {
  const log = $("log"), atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  const result = action();
  if (atEnd) log.scrollTop = log.scrollHeight;
  return result;
}

function showNotice(message) {
  $("notice").textContent = message || "";
  $("notice").hidden = !message;
}

// A stored conversation: a tool call, its result and the answer after it share one box.
function showMessages(messages) {
  $("log").replaceChildren();
  let turn = null;
  for (const message of messages) {
    if (message.role === "user") {
      appendText(messageBox("user"), message.text || "");
      turn = null;
      continue;
    }
    turn = turn || messageBox("assistant");
    if (message.text) appendText(turn, message.text);
    for (const call of message.tool_calls || []) showToolCall(turn, call);
    for (const result of message.tool_results || []) showToolResult(turn, result);
  }
  if (!messages.length) $("log").append(el("p", "empty", "No messages yet: say something."));
  $("log").scrollTop = $("log").scrollHeight;
}

// The picker's model id ("provider/model" or a profile name) for a request body; the server
// resolves it. "Server default" sends none: a session goes on with the model it last used.
const modelChoice = () => ($("model").value ? { model: $("model").value } : {});

async function loadModels() {
  const models = (await api("GET", "/v1/models")).data;
  $("model").replaceChildren(new Option("Server default", ""));
  for (const model of models) $("model").append(new Option(model.id, model.id));
}

async function loadSessions() {
  const sessions = (await api("GET", "/v1/sessions")).data;
  $("sessions").replaceChildren();
  for (const session of sessions) {
    const title = session.title || "New chat";
    const onclick = () => guard(() => openSession(session.id));
    const open = el("button", "session", title, { type: "button", onclick });
    open.dataset.id = session.id;
    if (state.session?.id === session.id) {
      open.setAttribute("aria-current", "true");
      $("title").textContent = title; // a first message may have named the session
    }
    const turns = session.turns === 1 ? "1 turn" : `${session.turns ?? 0} turns`;
    open.append(el("small", null, `${session.provider}/${session.model} · ${turns}`));
    const remove = el("button", "delete", "×", { type: "button", ariaLabel: "Delete " + title });
    remove.onclick = () => guard(() => deleteSession(session));
    $("sessions").appendChild(el("li")).append(open, remove);
  }
}

function useSession(session) {
  state.session = session;
  $("title").textContent = session ? session.title || "New chat" : "chatscope";
}

async function openSession(id) {
  if (state.streaming) return;
  const session = await api("GET", `/v1/sessions/${encodeURIComponent(id)}`);
  useSession(session);
  const model = `${session.provider}/${session.model}`;
  $("model").value = [...$("model").options].some((o) => o.value === model) ? model : "";
  showMessages(session.messages || []);
  await loadSessions();
}

async function newChat() {
  if (state.streaming) return;
  useSession(await api("POST", "/v1/sessions", modelChoice()));
  showMessages([]);
  await loadSessions();
  $("prompt").focus();
}

async function deleteSession(session) {
  if (!confirm(`Delete "${session.title || "New chat"}"?`)) return;
  await api("DELETE", `/v1/sessions/${encodeURIComponent(session.id)}`);
  if (state.session?.id === session.id) { useSession(null); showMessages([]); }
  await loadSessions();
}

function setStreaming(on) {
  state.streaming = $("send").disabled = on;
  $("log").setAttribute("aria-busy", String(on));
}

// Show one streamed event; true once the turn is over (done or error).
function handleEvent(turn, { event, data }) {
  if (event === "text") appendText(turn, data.text);
  else if (event === "thinking") appendText(turn, data.text, "thinking");
  else if (event === "tool_call") showToolCall(turn, data);
  else if (event === "tool_result") showToolResult(turn, data);
  else if (event === "error") showError(data.message, turn);
  else if (event === "done") {
    const { input_tokens: input, output_tokens: output } = data.usage || {};
    const model = data.provider && data.model ? `${data.provider}/${data.model}` : "";
    const tokens = input === undefined ? "" : `${input} in / ${output} out tokens`;
    turn.append(el("div", "meta", [model, tokens].filter(Boolean).join(" · ")));
  }
  return event === "done" || event === "error";
}

async function send() {
  const content = $("prompt").value;
  if (state.streaming || !content.trim()) return;
  setStreaming(true);
  let turn = null;
  try {
    if (!state.session) useSession(await api("POST", "/v1/sessions", modelChoice()));
    $("prompt").value = "";
    appendText(messageBox("user"), content);
    turn = messageBox("assistant");
    turn.classList.add("streaming");
    $("log").scrollTop = $("log").scrollHeight;
    const path = `/v1/sessions/${encodeURIComponent(state.session.id)}/messages`;
    const response = await request("POST", path, { content, ...modelChoice() });
    if (!response.ok) throw await httpError(response);
    let finished = false;
    for await (const event of readEvents(response)) {
      finished = follow(() => handleEvent(turn, event)) || finished;
    }
    if (!finished) showError("The answer stopped before it was finished.", turn);
  } catch (error) {
    showError(describe(error), turn);
  } finally {
    turn?.classList.remove("streaming");
    setStreaming(false);
    await guard(loadSessions);
  }
}

// A failed fetch is a TypeError ("Failed to fetch"): say what it means.
const describe = (error) => error instanceof TypeError
  ? `Could not reach the server (${error.message}).` : error.message;

// Run a user action; its failure is shown plainly in the notice above the conversation.
async function guard(action) {
  showNotice("");
  try { await action(); } catch (error) { showNotice(describe(error)); }
}

function askForKey() {
  $("key-box").hidden = $("key-note").hidden = false;
  $("api-key").focus();
}

const start = () => guard(async () => { await loadModels(); await loadSessions(); });

// The script is deferred: the document is parsed when this runs.
$("api-key").value = localStorage.getItem(KEY_STORE) || "";
$("key-toggle").addEventListener("click", () => { $("key-box").hidden = !$("key-box").hidden; });
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem(KEY_STORE, key); else localStorage.removeItem(KEY_STORE);
  $("key-box").hidden = $("key-note").hidden = true;
  start();
});
$("new-chat").addEventListener("click", () => guard(newChat));
$("composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
$("prompt").addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
  event.preventDefault();
  send();
});
start();
