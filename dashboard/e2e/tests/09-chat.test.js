// 9. Chat: the Chat view renders the broadcaster's chat like Twitch does
// (badges, readable name colours, emotes as chips, replies, cheers,
// channel points, notices, deletions, clears), pauses, announces politely,
// and sends through POST /api/v1/irc as a sender from /api/v1/chat/senders,
// showing Twitch's verdict. The relay subscribes to the chat types
// (TAU_EVENTSUB_TYPES) so the fake's echo of a sent message comes back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import {
  BROADCASTER, PHONE, allowProblems, api, connectTwitchViaApi, screenshot, waitFor,
} from "../lib/harness.js";
import { chatLine, chatLog, feedItem, loginByLink, openView } from "../lib/dash.js";

const CHAT_TYPES = [
  "channel.chat.message", "channel.chat.notification", "channel.chat.message_delete",
  "channel.chat.clear", "channel.chat.clear_user_messages",
];

let overlayToken;
const ctx = suite("chat", {
  relayEnv: { TAU_EVENTSUB_TYPES: ["default", ...CHAT_TYPES].join(",") },
  setup: async (c) => {
    await connectTwitchViaApi(c.relay, c.fake);
    const made = await api(c.relay, "POST", "/api/v1/tokens", c.relay.adminToken, { name: "chat-overlay", role: "overlay" });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    overlayToken = made.body.token;
  },
});

/**
 * A test event of a chat type: the relay's realistic sample with `edit`
 * applied (test events reach the live socket like Twitch's, origin "test").
 */
async function chatEvent(tauType, edit) {
  const sample = await api(ctx.relay, "GET", `/api/v1/twitch-events/${tauType}/test`, ctx.relay.adminToken);
  assert.equal(sample.status, 200, `sample of ${tauType}: ${JSON.stringify(sample.body)}`);
  const d = sample.body.event_data;
  edit(d);
  const sent = await api(ctx.relay, "POST", `/api/v1/twitch-events/${tauType}/test`, ctx.relay.adminToken, d);
  assert.equal(sent.status, 200, `test ${tauType}: ${JSON.stringify(sent.body)}`);
  return d;
}

const text = (s) => ({ type: "text", text: s, emote: null, cheermote: null, mention: null });

function message(d, { id, user, userId, color = "", fragments, badges = [] }) {
  Object.assign(d, {
    message_id: id,
    chatter_user_id: userId,
    chatter_user_login: user.toLowerCase(),
    chatter_user_name: user,
    color,
    badges,
    message: { text: fragments.map((f) => f.text).join(""), fragments },
    message_type: "text",
    cheer: null,
    reply: null,
    channel_points_custom_reward_id: null,
  });
}

/** WCAG contrast of an element's text colour against the chat log's background. */
async function nameContrast(page, name) {
  return chatLog(page).getByText(name, { exact: true }).first().evaluate((el) => {
    const rgb = (c) => (c.match(/\d+(\.\d+)?/g) || []).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => [r, g, b].map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    }).reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
    let bgEl = el;
    let bg = "rgba(0, 0, 0, 0)";
    while (bgEl && /rgba\(0, 0, 0, 0\)|transparent/.test(bg)) {
      bg = getComputedStyle(bgEl).backgroundColor;
      bgEl = bgEl.parentElement;
    }
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(rgb(bg))].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  });
}

test("chat log: badges, readable colours, emotes, replies, cheers, channel points, notices, deletions and clears", async () => {
  await withPage(ctx, "chat-log", async (page) => {
    // An overlay token reads chat (and has no send box).
    await loginByLink(page, ctx.relay, overlayToken);
    await openView(page, "Chat");
    await chatLog(page).waitFor({ state: "visible" });
    assert.equal(await page.getByRole("button", { name: "Send", exact: true }).count(), 0, "an overlay token got a send box");
    await page.getByText("Sending chat needs a bot or admin token").waitFor();
    await page.waitForTimeout(500); // the live socket's handshake

    await chatEvent("channel-chat-message", (d) => message(d, {
      id: "e2e-m1", user: "E2E_Mod", userId: "900001", color: "#0000FF",
      badges: [{ set_id: "moderator", id: "1", info: "" }, { set_id: "subscriber", id: "12", info: "16" }],
      fragments: [
        text("hello "),
        { type: "emote", text: "Kappa", emote: { id: "25", emote_set_id: "0", owner_id: "0", format: ["static"] }, cheermote: null, mention: null },
        text(" "),
        { type: "mention", text: "@cooler_user", emote: null, cheermote: null, mention: { user_id: "1", user_login: "cooler_user", user_name: "cooler_user" } },
      ],
    }));
    await chatEvent("channel-chat-message", (d) => {
      message(d, {
        id: "e2e-m2", user: "E2E_Cheerer", userId: "900002", color: "#FFFF00",
        fragments: [{ type: "cheermote", text: "Cheer100", emote: null, mention: null, cheermote: { prefix: "cheer", bits: 100, tier: 1 } }, text(" take my bits")],
      });
      d.cheer = { bits: 100 };
      d.reply = {
        parent_message_id: "e2e-m1", parent_message_body: "hello Kappa @cooler_user", parent_user_id: "900001",
        parent_user_login: "e2e_mod", parent_user_name: "E2E_Mod", thread_message_id: "e2e-m1",
        thread_user_id: "900001", thread_user_login: "e2e_mod", thread_user_name: "E2E_Mod",
      };
    });
    await chatEvent("channel-chat-message", (d) => {
      message(d, { id: "e2e-m3", user: "E2E_Fan", userId: "900003", fragments: [text("look at me")] });
      d.message_type = "channel_points_highlighted";
    });
    await chatEvent("channel-chat-notification", (d) => {
      d.notice_type = "raid";
      d.system_message = "E2E_Raider is raiding with a party of 42.";
      d.message = { text: "", fragments: [] };
    });

    const mod = chatLine(page, ["E2E_Mod", "hello"]);
    await mod.waitFor({ state: "visible", timeout: 10_000 });
    const modText = (await mod.innerText()).replace(/\s+/g, " ");
    for (const want of ["Mod", "Sub 16 mo", "Kappa", "@cooler_user", "test"]) {
      assert.ok(modText.includes(want), `the line does not show "${want}": ${modText}`);
    }
    assert.equal(await mod.getByTitle("Emote Kappa").count(), 1, "the emote is not a named chip");
    assert.ok(!(await mod.locator("img").count()), "an emote image (the CSP allows none from Twitch)");

    const cheer = chatLine(page, ["E2E_Cheerer"]);
    const cheerText = (await cheer.innerText()).replace(/\s+/g, " ");
    for (const want of ["Replying to @E2E_Mod", "Cheer100", "take my bits", "100 bits"]) {
      assert.ok(cheerText.includes(want), `the cheer line does not show "${want}": ${cheerText}`);
    }
    await chatLine(page, ["E2E_Fan", "look at me", "highlighted with channel points"]).waitFor();
    await chatLine(page, ["raid", "E2E_Raider is raiding with a party of 42."]).waitFor();

    // #0000FF (unreadable on dark) and #FFFF00 (unreadable on light) are adjusted per theme.
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const name of ["E2E_Mod", "E2E_Cheerer"]) {
        const c = await nameContrast(page, name);
        assert.ok(c >= 4.5, `${name} has contrast ${c.toFixed(2)} in the ${scheme} theme`);
      }
    }
    await page.emulateMedia({ colorScheme: "light" });
    await screenshot(page, "chat-log-desktop");

    // A moderator deletes the first message: struck through, still there.
    await chatEvent("channel-chat-message_delete", (d) => {
      Object.assign(d, { message_id: "e2e-m1", target_user_id: "900001", target_user_login: "e2e_mod", target_user_name: "E2E_Mod" });
    });
    await chatLine(page, ["E2E_Mod", "(deleted by a moderator)"]).waitFor({ timeout: 10_000 });
    assert.equal(await chatLine(page, ["E2E_Mod", "hello"]).locator("s").count(), 1, "the deleted message is not struck through");

    // A timeout removes one chatter's lines; a clear, everyone's.
    await chatEvent("channel-chat-clear_user_messages", (d) => {
      Object.assign(d, { target_user_id: "900002", target_user_login: "e2e_cheerer", target_user_name: "E2E_Cheerer" });
    });
    await chatLine(page, ["E2E_Cheerer's messages were removed"]).waitFor({ timeout: 10_000 });
    await chatEvent("channel-chat-clear", () => {});
    await chatLine(page, ["Chat was cleared by a moderator"]).waitFor({ timeout: 10_000 });
    assert.ok(await chatLine(page, ["E2E_Fan"]).isVisible(), "a clear hides the log instead of greying it");
    await screenshot(page, "chat-moderated-desktop");

    // The Live feed summarizes the same events readably.
    await openView(page, "Live");
    await feedItem(page, "channel-chat-message_delete", ["deleted a chat message by E2E_Mod"]).waitFor();
    await feedItem(page, "channel-chat-clear", ["cleared the chat"]).waitFor();
    await feedItem(page, "channel-chat-message", ["E2E_Cheerer cheered 100 bits: Cheer100 take my bits"]).waitFor();
  });
});

test("chat log: pause holds new lines, resume shows them, a polite live region announces them, at most 500 lines", async () => {
  await withPage(ctx, "chat-pause", async (page) => {
    await loginByLink(page, ctx.relay, overlayToken);
    await openView(page, "Chat");
    await chatLog(page).waitFor({ state: "visible" });
    await page.waitForTimeout(500);

    await chatEvent("channel-chat-message", (d) => message(d, { id: "e2e-p1", user: "E2E_Before", userId: "900010", fragments: [text("before the pause")] }));
    await chatLine(page, ["before the pause"]).waitFor({ timeout: 10_000 });
    const region = page.getByRole("status").filter({ hasText: "New chat message" });
    await waitFor("the chat's live region to announce the line", async () => /E2E_Before: before the pause/.test(await region.innerText().catch(() => "")), 8000);
    assert.equal(await region.getAttribute("aria-live"), "polite");

    await page.getByRole("button", { name: "Pause", exact: true }).click();
    await chatEvent("channel-chat-message", (d) => message(d, { id: "e2e-p2", user: "E2E_During", userId: "900011", fragments: [text("during the pause")] }));
    await page.getByRole("button", { name: "Resume (1 waiting)" }).waitFor({ timeout: 10_000 });
    assert.equal(await chatLine(page, ["during the pause"]).count(), 0, "a line showed while paused");
    await page.getByRole("button", { name: /^Resume/ }).click();
    await chatLine(page, ["during the pause"]).waitFor();

    // Bounded: the newest 500 lines stay.
    const sends = [];
    for (let i = 0; i < 505; i++) {
      sends.push(chatEvent("channel-chat-message", (d) => message(d, { id: `e2e-b${i}`, user: "E2E_Flood", userId: "900012", fragments: [text(`flood ${i}`)] })));
      if (sends.length >= 20) await Promise.all(sends.splice(0));
    }
    await Promise.all(sends);
    await waitFor("505 flood lines to arrive", async () => (await chatLog(page).getByText(/^flood \d+$/).count()) >= 500 &&
      (await chatLog(page).getByRole("listitem").count()) === 500, 30_000, 250);
    assert.equal(await chatLog(page).getByRole("listitem").count(), 500);
    assert.equal(await chatLine(page, ["before the pause"]).count(), 0, "the oldest line was kept beyond 500");
  });
});

test("sending: a sender from /api/v1/chat/senders, the 500-character limit, Enter sends, the result and Twitch's echo show", async () => {
  await withPage(ctx, "chat-send", async (page) => {
    await loginByLink(page, ctx.relay);
    await openView(page, "Chat");
    const main = page.getByRole("main");
    const sender = main.getByLabel("Send as", { exact: true });
    await waitFor("the broadcaster among the senders", async () =>
      (await sender.locator("option").allInnerTexts()).some((t) => t.toLowerCase().includes(BROADCASTER) && !/cannot send/.test(t)), 10_000);
    assert.equal(await main.getByLabel("Channel", { exact: true }).getAttribute("placeholder"), BROADCASTER);

    // The limit is enforced while typing (a paste of 600 characters keeps 500).
    const box = main.getByLabel("Message", { exact: true });
    await box.fill("x".repeat(600));
    assert.equal((await box.inputValue()).length, 500);
    await main.getByText("500 / 500 characters").waitFor();

    // Enter sends; the verdict shows; Twitch echoes the message into chat.
    const said = `hello from the dashboard ${Date.now()}`;
    await box.fill(said);
    const request = page.waitForRequest((r) => new URL(r.url()).pathname === "/api/v1/irc" && r.method() === "POST");
    await box.press("Enter");
    const body = (await request).postDataJSON();
    assert.equal(body.message, said);
    assert.equal(body.irc_username, BROADCASTER);
    await main.getByText(`Sent to #${BROADCASTER} as ${BROADCASTER}.`).waitFor({ timeout: 10_000 });
    assert.equal(await box.inputValue(), "", "the message box was not emptied after sending");
    const { body: reqs } = await ctx.fake.get("/requests");
    assert.ok(reqs.some((r) => r.method === "POST" && r.path.startsWith("/helix/chat/messages")), "the fake saw no Helix chat send");
    await chatLine(page, [said]).waitFor({ timeout: 10_000 });
    await screenshot(page, "chat-sent-desktop");

    // Reply to a line: the parent's id goes with the message.
    await chatLine(page, [said]).getByRole("button", { name: /^Reply to/ }).click();
    await main.getByText("Replying to").waitFor();
    await box.fill("a reply");
    const replyRequest = page.waitForRequest((r) => new URL(r.url()).pathname === "/api/v1/irc" && r.method() === "POST");
    await main.getByRole("button", { name: "Send", exact: true }).click();
    assert.ok((await replyRequest).postDataJSON().reply_parent_message_id, "the reply carried no reply_parent_message_id");
    await main.getByText(`Sent to #${BROADCASTER}`).waitFor({ timeout: 10_000 });

    // A refusal shows the relay's detail.
    allowProblems(page, /status of 4\d\d|status of 5\d\d/);
    await main.getByLabel("Channel", { exact: true }).fill("nobody_e2e_unknown_channel");
    await box.fill("to nowhere");
    await box.press("Enter");
    await main.getByText(/^Not sent: .+\(HTTP [45]\d\d\)/).waitFor({ timeout: 10_000 });
  });
});

test("sending: Twitch's drop reason is shown", async () => {
  const drop = await ctx.fake.post("/drop-next-chat", {
    code: "msg_duplicate", message: "Your message is identical to the one you sent within the last 30 seconds.",
  });
  assert.equal(drop.status, 204, JSON.stringify(drop.body));
  await withPage(ctx, "chat-drop", async (page) => {
    await loginByLink(page, ctx.relay);
    await openView(page, "Chat");
    const main = page.getByRole("main");
    const box = main.getByLabel("Message", { exact: true });
    await waitFor("the broadcaster among the senders", async () =>
      (await main.getByLabel("Send as", { exact: true }).locator("option").allInnerTexts()).some((t) => t.toLowerCase().includes(BROADCASTER) && !/cannot send/.test(t)), 10_000);
    await box.fill("twice");
    await box.press("Enter");
    await main.getByText("Twitch dropped the message: Your message is identical to the one you sent within the last 30 seconds. (msg_duplicate)").waitFor();
    assert.equal(await box.inputValue(), "twice", "a dropped message was cleared from the box");
  });
});

test("an older relay without chat sending (404): the view says so and still shows the log", async () => {
  await withPage(ctx, "chat-404", async (page) => {
    allowProblems(page, /status of 404/);
    await page.route("**/api/v1/chat/senders", (route) => route.fulfill({ status: 404, json: { detail: "not found" } }));
    await loginByLink(page, ctx.relay);
    await openView(page, "Chat");
    await page.getByText("This relay has no chat support yet").waitFor();
    await chatLog(page).waitFor({ state: "visible" });
  });
});

test("no chat type chosen: the view says so and links to Setup's event types", async () => {
  const chose = await api(ctx.relay, "PUT", "/api/v1/twitch/event-types", ctx.relay.adminToken, { event_types: ["channel.follow"] });
  assert.equal(chose.status, 200, JSON.stringify(chose.body));
  try {
    await withPage(ctx, "chat-no-types", async (page) => {
      await loginByLink(page, ctx.relay);
      await openView(page, "Chat");
      const notice = page.getByRole("main").getByText("This relay does not receive chat");
      await notice.waitFor({ timeout: 10_000 });
      await page.getByRole("main").getByRole("link", { name: "Setup" }).click();
      await waitFor("Setup to open", async () => (await page.evaluate(() => location.hash)) === "#/setup", 5000);
      await page.getByRole("heading", { name: "Event types" }).waitFor({ timeout: 10_000 });
    }, PHONE);
  } finally {
    await api(ctx.relay, "DELETE", "/api/v1/twitch/event-types", ctx.relay.adminToken);
  }
});
