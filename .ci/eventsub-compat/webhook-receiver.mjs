// A stock EventSub webhook receiver, written from Twitch's documented
// recipe in a second language (Node, node:crypto only, no npm), checking
// TAU's webhook forwarding from the outside:
//   1. TAU challenges it when the target is added (signature checked,
//      the challenge echoed as text/plain);
//   2. events entering TAU through Twitch's signed webhook are forwarded
//      with signatures it accepts (HMAC-SHA256 over id + timestamp + raw
//      body, `sha256=` + hex, compared with timingSafeEqual; timestamps
//      older than 10 minutes refused) and Twitch's headers and body;
//   3. it goes down (connection refused), TAU retries, it comes back and
//      receives the missed events in order, exactly once by message id.
// Why not twitchAPI's EventSubWebhook: it refuses any callback URL that is
// not https (and needs an app token), so it cannot listen on loopback.
//
// Usage: node webhook-receiver.mjs BASE ADMIN_TOKEN TWITCH_WEBHOOK_SECRET
import { createHmac, timingSafeEqual, randomBytes } from "node:crypto";
import { createServer } from "node:http";

const [base, adminToken, twitchSecret] = process.argv.slice(2);
const secret = "receiver-" + randomBytes(12).toString("hex");
const received = []; // accepted notifications, in arrival order
const seenIds = new Map(); // message id -> deliveries accepted
let challenges = 0;

const fail = (why) => {
  console.error("FAIL: " + why);
  process.exit(1);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function verified(headers, raw) {
  const id = headers["twitch-eventsub-message-id"] ?? "";
  const timestamp = headers["twitch-eventsub-message-timestamp"] ?? "";
  const given = Buffer.from(headers["twitch-eventsub-message-signature"] ?? "");
  const hmac = "sha256=" + createHmac("sha256", secret).update(id + timestamp).update(raw).digest("hex");
  const expected = Buffer.from(hmac);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
  const age = Date.now() - Date.parse(timestamp);
  return Number.isFinite(age) && age < 10 * 60 * 1000;
}

function handle(req, res) {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const raw = Buffer.concat(chunks);
    if (!verified(req.headers, raw)) {
      console.log("rejected a message: bad signature");
      res.writeHead(403).end();
      return;
    }
    const body = JSON.parse(raw.toString("utf8"));
    const type = req.headers["twitch-eventsub-message-type"];
    if (type === "webhook_callback_verification") {
      challenges += 1;
      res.writeHead(200, { "Content-Type": "text/plain" }).end(body.challenge);
      return;
    }
    if (type !== "notification") fail("unexpected message type " + type);
    for (const h of ["retry", "timestamp", "id"]) {
      if (!req.headers["twitch-eventsub-message-" + h]) fail("missing header message-" + h);
    }
    if (req.headers["twitch-eventsub-subscription-type"] !== body.subscription.type) fail("type header");
    if (req.headers["twitch-eventsub-subscription-version"] !== body.subscription.version) fail("version header");
    if (body.subscription.transport?.method !== "webhook") fail("transport");
    const id = req.headers["twitch-eventsub-message-id"];
    seenIds.set(id, (seenIds.get(id) ?? 0) + 1);
    if (seenIds.get(id) === 1) received.push({ id, event: body.event });
    res.writeHead(204).end();
  });
}

let server;
async function up(port) {
  server = createServer(handle);
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port ?? 0, "127.0.0.1", resolve);
  });
  return server.address().port;
}
async function down() {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

async function api(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { Authorization: "Token " + adminToken, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null, text };
}

// A notification into TAU, signed as Twitch signs it.
async function twitchFollow(messageId, userId) {
  const body = JSON.stringify({
    subscription: {
      id: "compat-follow", status: "enabled", type: "channel.follow", version: "2", cost: 0,
      condition: { broadcaster_user_id: "1337", moderator_user_id: "1337" },
      transport: { method: "webhook", callback: "https://example.com/cb" },
      created_at: "2024-01-01T00:00:00Z",
    },
    event: {
      user_id: userId, user_login: "u" + userId, user_name: "U" + userId,
      broadcaster_user_id: "1337", broadcaster_user_login: "compat_channel",
      broadcaster_user_name: "Compat_Channel", followed_at: "2024-01-01T00:00:00Z",
    },
  });
  const timestamp = new Date().toISOString();
  const signature = "sha256=" + createHmac("sha256", twitchSecret).update(messageId + timestamp + body).digest("hex");
  const r = await fetch(base + "/twitch/eventsub", {
    method: "POST",
    body,
    headers: {
      "Content-Type": "application/json",
      "Twitch-Eventsub-Message-Id": messageId,
      "Twitch-Eventsub-Message-Timestamp": timestamp,
      "Twitch-Eventsub-Message-Signature": signature,
      "Twitch-Eventsub-Message-Type": "notification",
      "Twitch-Eventsub-Message-Retry": "0",
    },
  });
  if (r.status !== 204) fail("TAU refused a webhook: " + r.status);
}

async function until(what, check, seconds) {
  for (let i = 0; i < seconds * 10; i++) {
    const done = await check();
    if (done) return done;
    await sleep(100);
  }
  fail("timed out waiting for " + what);
}

const port = await up();
const added = await api("POST", "/api/v1/webhook-targets", {
  name: "compat-receiver", url: `http://127.0.0.1:${port}/webhook`, secret, event_types: ["channel.follow"],
});
if (added.status !== 201) fail("adding the target: " + added.status + " " + added.text);
if (challenges !== 1) fail("no challenge before the target was added");
if (added.text.includes(secret)) fail("TAU returned the secret");
const target = added.body.id;
console.log("added; challenge answered and verified");

const run = Date.now().toString(36);
for (let i = 1; i <= 3; i++) await twitchFollow(`fwd-${run}-${i}`, String(100 + i));
await until("the first 3 events", () => received.length >= 3, 20);
console.log("3 events forwarded, signatures accepted");

await down();
console.log("receiver down");
for (let i = 4; i <= 6; i++) await twitchFollow(`fwd-${run}-${i}`, String(100 + i));
const retrying = await until("TAU to retry", async () => {
  const t = await api("GET", `/api/v1/webhook-targets/${target}`);
  return t.body.status === "retrying" && t.body.failed_attempts >= 2 ? t.body : null;
}, 30);
console.log(`TAU retrying: ${retrying.failed_attempts} failed attempts, last error: ${retrying.last_error}`);

await up(port);
console.log("receiver back");
await until("the missed events", () => received.length >= 6, 60);
await sleep(1500); // a duplicate would arrive now
const users = received.map((r) => r.event.user_id).join(",");
if (users !== "101,102,103,104,105,106") fail("order: " + users);
const dupes = [...seenIds.values()].filter((n) => n > 1).length;
if (dupes !== 0 || received.length !== 6) fail(`not exactly once: ${received.length} events, ${dupes} duplicated ids`);
const done = await api("GET", `/api/v1/webhook-targets/${target}`);
if (done.body.status !== "enabled" || done.body.delivered !== 6 || done.body.backlog !== 0) fail("final state: " + done.text);
const removed = await api("DELETE", `/api/v1/webhook-targets/${target}`);
if (removed.status !== 204) fail("delete: " + removed.status);
await down();
console.log("webhook forwarding: 6 events in order, exactly once by message id, signatures verified");
