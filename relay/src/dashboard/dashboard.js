// TAU dashboard: uses the public REST + websocket API with the user's token.
"use strict";
const $ = (id) => document.getElementById(id);
let socket = null;

function token() { return localStorage.getItem("tau-token") || ""; }
async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: "Token " + token(), ...(options.headers || {}) },
  });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error((body && body.detail) || response.statusText);
  return body;
}

function eventItem(event, withReplay) {
  const li = document.createElement("li");
  const type = document.createElement("span");
  type.className = "type";
  type.textContent = event.event_type;
  const origin = document.createElement("span");
  origin.className = "origin";
  origin.textContent = event.origin + " · " + new Date(event.created).toLocaleTimeString();
  li.append(type, origin);
  if (withReplay && event.id) {
    const button = document.createElement("button");
    button.textContent = "Replay";
    button.style.marginLeft = ".5rem";
    button.onclick = () => api(`/api/v1/twitch-events/${event.id}/replay/`, { method: "POST" }).catch(showError);
    li.append(button);
  }
  const data = document.createElement("pre");
  data.textContent = JSON.stringify(event.event_data);
  li.append(data);
  return li;
}

function setState(text, ok) {
  $("state").textContent = text;
  $("state").className = ok === undefined ? "" : ok ? "ok" : "bad";
}
function showError(error) { setState(String(error.message || error), false); }

function connect() {
  if (socket) socket.close();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/twitch-events/`);
  socket.onopen = () => { socket.send(JSON.stringify({ token: token() })); setState("connected", true); };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.error) { setState(data.error, false); return; }
    $("live").prepend(eventItem(data, false));
  };
  socket.onclose = (close) => setState("disconnected" + (close.reason ? ": " + close.reason : ""), false);
}

async function loadHistory() {
  const page = await api("/api/v1/twitch-events/?page_size=25");
  $("history").replaceChildren(...page.results.map((e) => eventItem(e, true)));
}
async function loadTypes() {
  const types = await api("/api/v1/twitch/eventsub-subscriptions/");
  // The streamer-bot set first, then everything else.
  types.sort((a, b) => (b.active - a.active) || a.event_type.localeCompare(b.event_type));
  const seen = new Set();
  const options = [];
  for (const t of types) {
    if (seen.has(t.event_type)) continue;
    seen.add(t.event_type);
    const option = document.createElement("option");
    option.value = t.event_type;
    option.textContent = t.event_type + (t.active ? " ★" : "");
    options.push(option);
  }
  $("types").replaceChildren(...options);
}
async function loadStatus() {
  const status = await api("/api/v1/status/");
  $("status").textContent = JSON.stringify(status, null, 2);
  // Prompt for the OAuth flow when the relay needs the broadcaster's token.
  const twitch = status.twitch;
  const needsUser = twitch.eventsub.transport === "websocket" && twitch.user_token.state !== "valid";
  if (twitch.client_id_configured && needsUser) {
    $("authorize-text").textContent = twitch.user_token.state === "authorization_needed"
      ? "Twitch no longer accepts TAU's token: connect your Twitch account again."
      : "Connect your Twitch account so TAU can receive your channel's events.";
    $("authorize").hidden = false;
  } else {
    $("authorize").hidden = true;
  }
}

async function start() {
  if (!token()) return;
  try {
    await Promise.all([loadTypes(), loadHistory(), loadStatus()]);
    connect();
  } catch (error) { showError(error); }
}

$("login").onsubmit = (e) => {
  e.preventDefault();
  localStorage.setItem("tau-token", $("token").value.trim());
  $("token").value = "";
  start();
};
$("test").onsubmit = (e) => {
  e.preventDefault();
  api(`/api/v1/twitch-events/${$("types").value}/test/`, { method: "POST" }).catch(showError);
};
$("refresh").onclick = () => loadHistory().catch(showError);
$("authorize-button").onclick = async () => {
  try {
    const { url } = await api("/api/v1/twitch/authorize", { method: "POST" });
    location.href = url;
  } catch (error) { showError(error); }
};

// A login link (`/#token=...`): the fragment never reaches the server or its
// logs. Keep the token, then drop it from the address bar and history.
if (location.hash.startsWith("#token=")) {
  localStorage.setItem("tau-token", decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, "", location.pathname);
}
start();
