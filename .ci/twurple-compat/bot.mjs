// A bot written for Twitch with twurple (@twurple/eventsub-ws, @twurple/api,
// @twurple/auth 8.1.4, npm), pointed at TAU.
//
// Configured only by TAU's base URL and a TAU API token (TAU_BASE,
// TAU_TOKEN): Twitch's token check (/oauth2/validate), Helix's subscription
// API (/helix/eventsub/subscriptions) and the EventSub WebSocket
// (/eventsub/ws) are all TAU's. The library is used unchanged.
//
// How twurple is pointed at TAU (read from its 8.1.4 source):
// - EventSubWsListener takes the socket's address as its `url` option.
// - Helix and auth calls have no base-URL option: @twurple/api-call
//   (lib/helpers/url.js) hard-codes https://api.twitch.tv/helix/ and
//   https://id.twitch.tv/oauth2/. Its one switch, the TWURPLE_MOCK_API_PORT
//   environment variable, targets the Twitch CLI mock server's layout on
//   localhost (`/mock/<path>`, `/eventsub/subscriptions` at the root,
//   `/auth/<path>`, `ws://127.0.0.1:<port>/ws`), not Twitch's, so it cannot
//   name TAU. ApiClient's `fetchOptions` only adds RequestInit fields, and
//   the token check (@twurple/auth getTokenInfo) ignores them. Every call
//   does go through the global `fetch`, so this bot rewrites those two base
//   URLs there, and nothing else.
//
// Protocol with .ci/twurple-compat.sh, through files in STATE_DIR:
//   ready   written once both subscriptions (channel.follow v2,
//           channel.cheer v1) were created through TAU's Helix API
//   phase1  written once the first follow (a signed webhook) and cheer
//           (the fake Twitch's EventSub socket) arrived with the right
//           fields; the tier then drains the relay, another replica
//           behind the same address takes over
//   then the bot waits for the follows of `during_handover` and
//   `after_restart`, without subscribing again, and exits 0.
// Any wrong field, a follow of another channel, or a missing event within
// TIMEOUT seconds: exit 1.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ApiClient } from "@twurple/api";
import { StaticAuthProvider } from "@twurple/auth";
import { EventSubWsListener } from "@twurple/eventsub-ws";

const BASE = process.env.TAU_BASE.replace(/\/$/, "");
const TOKEN = process.env.TAU_TOKEN;
const STATE = process.env.STATE_DIR;
const TIMEOUT_MS = Number(process.env.TIMEOUT ?? "60") * 1000;

const TWITCH_BASES = [
  ["https://api.twitch.tv/helix/", `${BASE}/helix/`],
  ["https://id.twitch.tv/oauth2/", `${BASE}/oauth2/`],
];
const twitchFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const base = TWITCH_BASES.find(([twitch]) => url.startsWith(twitch));
  if (!base) return twitchFetch(input, init);
  const rewritten = base[1] + url.slice(base[0].length);
  return typeof input === "string" || input instanceof URL ? twitchFetch(rewritten, init) : twitchFetch(new Request(rewritten, input), init);
};

const log = (line) => console.log(`bot: ${line}`);
function fail(message) {
  console.log(`bot: FAIL: ${message}`);
  process.exit(1);
}
const mark = (name) => writeFileSync(join(STATE, name), "ok\n");

const got = { follow: [], cheer: [] };
let created = 0;
let waiter = null;
function arrived() {
  if (waiter && waiter.done()) {
    const w = waiter;
    waiter = null;
    clearTimeout(w.timer);
    w.resolve();
  }
}
function waitFor(done, what) {
  return new Promise((resolve) => {
    waiter = { done, resolve, timer: setTimeout(() => fail(`no ${what} within ${TIMEOUT_MS / 1000} s (got ${JSON.stringify(got)})`), TIMEOUT_MS) };
    arrived();
  });
}

// TAU's validate names the connected broadcaster and TAU's client id.
const validation = await (await fetch("https://id.twitch.tv/oauth2/validate", { headers: { Authorization: `OAuth ${TOKEN}` } })).json();
if (!validation.user_id) fail(`/oauth2/validate named no user: ${JSON.stringify(validation)}`);
const broadcaster = validation.user_id;
log(`validated: user ${validation.login} (${broadcaster}), scopes ${validation.scopes.join(" ")}`);

const authProvider = new StaticAuthProvider(validation.client_id, TOKEN);
// TWURPLE_LOG=debug shows the library's own frames and calls.
const logger = { minLevel: process.env.TWURPLE_LOG ?? "warning" };
const apiClient = new ApiClient({ authProvider, logger });
const listener = new EventSubWsListener({ apiClient, logger, url: `${BASE.replace(/^http/, "ws")}/eventsub/ws` });

listener.onSubscriptionCreateSuccess((subscription, api) => {
  created += 1;
  log(`subscribed: ${api.type} (${api.id}), ${api.status}`);
  if (created === 2) mark("ready");
  if (created > 2) fail(`subscribed again (${created} creations): a reconnect must keep the subscriptions`);
});
listener.onSubscriptionCreateFailure((subscription, error) => fail(`subscription ${subscription.id} failed: ${error.message}`));
listener.onUserSocketDisconnect((userId, error) => log(`socket closed${error ? `: ${error.message}` : ""}`));
listener.onRevoke((subscription, status) => fail(`revoked ${subscription.id}: ${status}`));

listener.onChannelFollow(broadcaster, broadcaster, (e) => {
  log(`follow from ${e.userName} (${e.userId}) of ${e.broadcasterName}`);
  if (e.broadcasterId !== broadcaster) fail(`a follow of another channel arrived: ${e.broadcasterId}`);
  if (e.userName === "compat_follower" && (e.userId !== "4242" || e.userDisplayName !== "compat_follower"))
    fail(`follow fields: ${e.userId} ${e.userDisplayName}`);
  got.follow.push(e.userName);
  arrived();
});
listener.onChannelCheer(broadcaster, (e) => {
  log(`cheer of ${e.bits} bits from ${e.userName}: ${e.message}`);
  if (e.bits !== 500 || e.message !== "twurple cheer" || e.isAnonymous) fail(`cheer fields: ${e.bits} ${JSON.stringify(e.message)} ${e.isAnonymous}`);
  got.cheer.push(e.userName);
  arrived();
});
listener.start();

await waitFor(() => got.follow.includes("compat_follower") && got.cheer.length > 0, "follow and cheer");
mark("phase1");
// The relay drains; the library follows session_reconnect to the other
// replica and keeps its subscriptions (onSubscriptionCreateSuccess would
// fire again on a resubscribe).
await waitFor(() => got.follow.includes("during_handover") && got.follow.includes("after_restart"), "follows during and after the handover");
if (created !== 2) fail(`${created} subscription creations, expected 2`);
log("PASS");
process.exit(0);
