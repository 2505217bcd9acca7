// 10. Chat bots: an admin adds a bot through Twitch's consent (the fake's
// consent screen authorizes the bot account: POST /authorize-as), sees it
// arrive live (the /ws/chat-bots/status/ socket, no reload) as ready,
// gives it a channel (errors inline from the relay's detail), sends chat
// as it from the Chat page (its channels offered there) and the message
// reaches the fake's Helix, then takes the channel away and removes the
// bot (asked twice). A bot token reads without edit controls; an overlay
// token has no Bots view; a bot in trouble is described in words; each
// bot's own chat session (EventSub WebSocket) shows its state in words; an
// older relay (404) is named.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import {
  DESKTOP, PHONE, addBotViaApi, allowProblems, api, axeSerious, connectTwitchViaApi, overflow, screenshot, waitFor,
} from "../lib/harness.js";
import { loginByLink, navLink, openView, setField } from "../lib/dash.js";

const BOT = { login: "e2e_chat_bot", id: "90101" };
const CHANNEL = { login: "e2e_bot_channel", id: "90102" };

let overlayToken;
let botToken;
const ctx = suite("bots", {
  setup: async (c) => {
    const user = await c.fake.post("/users", { login: CHANNEL.login, id: CHANNEL.id });
    assert.equal(user.status, 204, JSON.stringify(user.body));
    await connectTwitchViaApi(c.relay, c.fake);
    for (const role of ["overlay", "bot"]) {
      const made = await api(c.relay, "POST", "/api/v1/tokens", c.relay.adminToken, { name: `bots-${role}`, role });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      if (role === "overlay") overlayToken = made.body.token;
      else botToken = made.body.token;
    }
  },
});

const botsList = (page) => page.getByRole("list", { name: "Chat bots" });
const item = (page, login = BOT.login) => botsList(page).getByRole("listitem").filter({
  has: page.getByRole("heading", { name: new RegExp(login, "i") }),
}).first();
const channelsOf = (page, login = BOT.login) => item(page, login).getByRole("list", { name: /^Channels of / });

async function relayBots() {
  const { status, body } = await api(ctx.relay, "GET", "/api/v1/chat-bots", ctx.relay.adminToken);
  assert.equal(status, 200, JSON.stringify(body));
  return body.results;
}

async function relayChannels() {
  const { status, body } = await api(ctx.relay, "GET", "/api/v1/chat-bots/channels", ctx.relay.adminToken);
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

/** `auth:status` of every Helix chat send the fake answered. */
async function helixChatSends() {
  const { body } = await ctx.fake.get("/requests");
  return body.filter((r) => r.method === "POST" && r.path.startsWith("/helix/chat/messages")).map((r) => `${r.auth}:${r.status}`);
}

test("admin: add a bot through Twitch's consent (live), give it a channel, send as it from Chat, remove channel and bot", async () => {
  await withPage(ctx, "bots-admin", async (page) => {
    allowProblems(page, /status of 4\d\d/);
    await loginByLink(page, ctx.relay);
    await openView(page, "Bots");
    const main = page.getByRole("main");
    await main.getByText("No chat bots yet").waitFor();
    await main.getByText("Live updates: on").waitFor();
    await page.evaluate(() => { window.__sameDocument = true; });

    // "Add a bot" opens Twitch's consent in a new tab; the bot account consents there.
    const as = await ctx.fake.post("/authorize-as", BOT);
    assert.ok(as.status < 300, `fake /authorize-as: ${as.status} ${JSON.stringify(as.body)}`);
    try {
      const opened = page.context().waitForEvent("page", { timeout: 10_000 });
      await main.getByRole("button", { name: "Add a bot" }).click();
      const consent = await opened;
      await consent.waitForURL((u) => u.pathname.startsWith("/twitch-callback"), { timeout: 20_000 });
      assert.ok(consent.url().startsWith(ctx.relay.base), `the outcome page is not on the relay: ${consent.url()}`);
      const back = await consent.evaluate(() => [...document.querySelectorAll("a")].map((a) => a.getAttribute("href") || ""));
      assert.ok(back.some((h) => h.endsWith("#/bots")), `the outcome page has no link back to /#/bots: ${JSON.stringify(back)}`);
      assert.equal(await consent.evaluate(() => window.opener), null, "the consent tab can reach its opener");
      await consent.close();
    } finally {
      await ctx.fake.post("/authorize-as", { reset: true });
    }
    await main.getByText("as the bot account").waitFor();
    const link = main.getByRole("link", { name: "Open Twitch's consent page" });
    assert.match(await link.getAttribute("rel"), /noopener/);

    // The bot arrives through the status socket, ready, without a reload.
    await item(page).getByText(/^Ready/).waitFor({ timeout: 10_000 });
    assert.ok(await page.evaluate(() => window.__sameDocument === true), "the page reloaded");
    const bot = (await relayBots()).find((b) => b.user_login === BOT.login);
    assert.ok(bot, "the relay does not list the added bot");
    assert.equal(bot.status, "ready");

    // A channel: an unknown login and a duplicate are refused inline.
    const login = item(page).getByLabel("Channel login");
    const add = item(page).getByRole("button", { name: "Add channel" });
    await login.fill("nobody_e2e_unknown");
    await add.click();
    await item(page).getByRole("alert").filter({ hasText: /Could not add #nobody_e2e_unknown: .+\(HTTP 4\d\d\)/ }).waitFor();
    await login.fill(CHANNEL.login);
    await add.click();
    await item(page).getByText(`joins #${CHANNEL.login}.`).waitFor();
    const channelRow = channelsOf(page).getByRole("listitem").filter({ hasText: `#${CHANNEL.login}` });
    await channelRow.getByText("Joined", { exact: true }).waitFor({ timeout: 15_000 });
    // The bot's own chat session: connected, its five chat subscriptions enabled (pushed by the status socket).
    const sessionBox = item(page).getByRole("group", { name: /^Chat session of / });
    await sessionBox.getByText("Chat session connected; 5 subscription(s) enabled").waitFor({ timeout: 15_000 });
    await sessionBox.getByText("Session details").click();
    await sessionBox.getByText("channel.chat.clear_user_messages", { exact: true }).waitFor();
    const relaySession = (await relayBots()).find((b) => b.user_login === BOT.login).session;
    assert.equal(relaySession.state, "connected");
    await sessionBox.getByText(`Session ${relaySession.session_id}`).waitFor();
    await login.fill(CHANNEL.login);
    await add.click();
    await item(page).getByRole("alert").filter({ hasText: /\(HTTP 409\)/ }).waitFor();
    await screenshot(page, "bots-ready-desktop");

    // Chat: the bot is a sender; its channel is offered; the message reaches Twitch.
    await openView(page, "Chat");
    const sender = main.getByLabel("Send as", { exact: true });
    await waitFor("the bot among the senders", async () =>
      (await sender.locator("option").allInnerTexts()).some((t) => t.includes(BOT.login) && /\(bot\)/.test(t) && !/cannot send/.test(t)), 10_000);
    await setField(sender, BOT.login);
    const channel = main.getByLabel("Channel", { exact: true });
    await waitFor("the bot's channel offered", async () =>
      (await channel.evaluate((el) => [...(el.list?.options ?? [])].map((o) => o.value))).includes(CHANNEL.login), 10_000);
    await main.getByText(`has joined: #${CHANNEL.login}`).waitFor();
    await channel.fill(CHANNEL.login);
    const before = await helixChatSends();
    const box = main.getByLabel("Message", { exact: true });
    await box.fill("hello from the bot");
    const request = page.waitForRequest((r) => new URL(r.url()).pathname === "/api/v1/irc" && r.method() === "POST");
    await box.press("Enter");
    const body = (await request).postDataJSON();
    assert.equal(body.irc_username, BOT.login);
    assert.equal(body.irc_channel, CHANNEL.login);
    await main.getByText(`Sent to #${CHANNEL.login} as ${BOT.login}.`).waitFor({ timeout: 10_000 });
    // The channel never granted channel:bot: the badge path (app token) is refused, the bot's own token sends.
    assert.deepEqual((await helixChatSends()).slice(before.length), ["app:403", "user:200"], "the Helix chat sends for the bot's message");

    // Back on Bots: take the channel away, then remove the bot (asked twice).
    await openView(page, "Bots");
    await item(page).getByRole("button", { name: `Remove channel #${CHANNEL.login} from`, exact: false }).click();
    await item(page).getByText("No channels yet").waitFor();
    assert.deepEqual((await relayChannels()).filter((c) => c.chat_bot === bot.id), [], "the relay still lists the removed channel");
    await item(page).getByRole("button", { name: /^Remove bot / }).click();
    await item(page).getByRole("button", { name: "Cancel" }).click();
    assert.equal(await item(page).count(), 1, "Cancel removed the bot");
    await item(page).getByRole("button", { name: /^Remove bot / }).click();
    await item(page).getByRole("button", { name: "Confirm remove" }).click();
    await main.getByText("No chat bots yet").waitFor();
    assert.equal((await relayBots()).find((b) => b.user_login === BOT.login), undefined, "the relay still lists the removed bot");
  });
});

test("a bot token reads bots and channels without edit controls (phone width); an overlay token has no Bots view", async () => {
  const bot = await addBotViaApi(ctx.relay, ctx.fake, BOT);
  const joined = await api(ctx.relay, "POST", "/api/v1/chat-bots/channels", ctx.relay.adminToken, { channel: CHANNEL.login, chat_bot: bot.id });
  assert.equal(joined.status, 201, JSON.stringify(joined.body));
  try {
    await withPage(ctx, "bots-bot-token", async (page) => {
      await loginByLink(page, ctx.relay, botToken);
      await openView(page, "Bots");
      await item(page).getByText(/^Ready/).waitFor({ timeout: 10_000 });
      await channelsOf(page).getByText(`#${CHANNEL.login}`).waitFor();
      const main = page.getByRole("main");
      assert.equal(await main.getByRole("button", { name: "Add a bot" }).count(), 0, "a bot token got Add a bot");
      assert.equal(await main.getByLabel("Channel login").count(), 0, "a bot token got the add-channel form");
      assert.equal(await main.getByRole("button", { name: /^(Remove|Confirm)/ }).count(), 0, "a bot token got remove buttons");
      const o = await overflow(page);
      assert.ok(o.scrollWidth <= o.innerWidth, `Bots is ${o.scrollWidth} px wide at ${o.innerWidth} px: ${o.widest.join(", ")}`);
      await screenshot(page, "bots-bot-token-phone");
    }, PHONE);
    await withPage(ctx, "bots-overlay", async (page) => {
      await loginByLink(page, ctx.relay, overlayToken);
      assert.equal(await navLink(page, "Bots").count(), 0, "an overlay token has a Bots link");
      await page.evaluate(() => { location.hash = "#/bots"; });
      await page.waitForTimeout(300);
      assert.equal(await page.getByRole("heading", { name: "Bots", exact: true }).count(), 0, "an overlay token sees the Bots view");
    });
  } finally {
    await api(ctx.relay, "DELETE", `/api/v1/chat-bots/${bot.id}`, ctx.relay.adminToken);
  }
});

test("a bot in trouble is described in words (token invalid, scope missing, a failed channel)", async () => {
  const now = new Date().toISOString();
  const mk = (id, login, status, reason, channels, session = null) => ({
    id, user_name: login, user_id: id, user_login: login, connected: false, status, reason,
    scopes: ["user:read:chat"], channels, created: now, updated: now, session,
  });
  const down = {
    state: "backoff", session_id: null, connected_at: null, last_error: "Twitch closed the session: 4003 connection unused",
    subscriptions: [{ id: "s1", type: "channel.chat.message", version: "1", condition: { broadcaster_user_id: "4242" }, status: "websocket_disconnected" }],
  };
  await withPage(ctx, "bots-trouble", async (page) => {
    // The relay's answers for two bots in trouble (the states Twitch causes: not reproducible on demand).
    await page.route("**/api/v1/chat-bots", (route) => route.fulfill({ json: { next: null, previous: null, results: [
      mk("b1", "e2e_bad_token_bot", "token_invalid", "Twitch refused the token (revoked?)", ["somewhere"], down),
      mk("b2", "e2e_scope_bot", "scope_missing", "user:write:chat is not granted", []),
    ] } }));
    await page.route("**/api/v1/chat-bots/channels", (route) => route.fulfill({ json: [
      { id: "c1", channel: "#somewhere", chat_bot: "b1", status: "failed", reason: "the channel is banned" },
    ] }));
    await loginByLink(page, ctx.relay);
    await openView(page, "Bots");
    await item(page, "e2e_bad_token_bot").getByText("Token invalid: add it again").waitFor();
    await item(page, "e2e_bad_token_bot").getByText("Twitch refused the token (revoked?)").waitFor();
    await channelsOf(page, "e2e_bad_token_bot").getByText("Failed", { exact: true }).waitFor();
    await channelsOf(page, "e2e_bad_token_bot").getByText("the channel is banned").waitFor();
    await item(page, "e2e_bad_token_bot").getByText("Chat session down; retrying shortly").waitFor();
    await item(page, "e2e_bad_token_bot").getByText("Why: Twitch closed the session: 4003 connection unused").waitFor();
    await item(page, "e2e_scope_bot").getByText(/^Scope missing/).waitFor();
    assert.equal(await item(page, "e2e_scope_bot").getByRole("group", { name: /^Chat session of / }).count(), 0, "a bot without a session shows one");
    await item(page, "e2e_scope_bot").getByText("user:write:chat is not granted").waitFor();
    await screenshot(page, "bots-trouble-desktop");
    // Accessible and narrow-safe with every state shown (07 sees only the real, ready ones).
    const found = [];
    for (const [mode, size, scheme] of [["desktop", DESKTOP, "light"], ["phone", PHONE, "light"], ["dark", DESKTOP, "dark"]]) {
      await page.setViewportSize(size);
      await page.emulateMedia({ colorScheme: scheme });
      await page.waitForTimeout(150);
      for (const v of await axeSerious(page)) found.push(`[${mode}] ${v}`);
      if (mode === "phone") {
        const o = await overflow(page);
        assert.ok(o.scrollWidth <= o.innerWidth, `Bots is ${o.scrollWidth} px wide at ${o.innerWidth} px: ${o.widest.join(", ")}`);
        await screenshot(page, "bots-trouble-phone");
      }
    }
    assert.deepEqual(found, [], "axe on Bots");
  });
});

test("an older relay without chat bots (404): the view says so and opens no status socket", async () => {
  await withPage(ctx, "bots-404", async (page) => {
    allowProblems(page, /status of 404/);
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(new URL(ws.url()).pathname));
    await page.route("**/api/v1/chat-bots", (route) => route.fulfill({ status: 404, json: { detail: "not found" } }));
    await loginByLink(page, ctx.relay);
    await openView(page, "Bots");
    await page.getByText("This relay has no chat bot support yet").waitFor();
    await page.waitForTimeout(500);
    assert.ok(!sockets.includes("/ws/chat-bots/status/"), `a status socket opened: ${JSON.stringify(sockets)}`);
  });
});
