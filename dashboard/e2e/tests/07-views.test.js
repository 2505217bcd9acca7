// 7 + 8. Every view, with a connected channel and real events in it:
// screenshots at desktop (1280x900) and phone (360x740) widths, no
// horizontal overflow at 360 px, and axe-core finds no serious or
// critical violation (light and dark). Console errors fail every test.
// Also: the phone menu closes once a view is chosen.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import {
  BROADCASTER, DESKTOP, PHONE, addBotViaApi, api, axeSerious, connectTwitchViaApi, overflow, screenshot, sendTwitchEvent, waitFor,
} from "../lib/harness.js";
import { VIEWS, chatLog, feedItem, loginByLink, openView, relayLight, saysConnected } from "../lib/dash.js";

const ctx = suite("views", {
  setup: async (c) => {
    await connectTwitchViaApi(c.relay, c.fake);
    // Stored Twitch events (History) and long values (wrapping at 360 px).
    await sendTwitchEvent(c.relay, c.fake, "channel-follow", "2", (e) => { e.user_name = "A_Very_Long_Display_Name_For_Wrapping"; });
    await sendTwitchEvent(c.relay, c.fake, "channel-cheer", "1", (e) => {
      e.bits = 250;
      e.message = "a long cheer message without spaces: " + "x".repeat(120);
    });
    await sendTwitchEvent(c.relay, c.fake, "channel-raid", "1", (e) => { e.viewers = 42; });
    // A non-admin token, so the Tokens view has a row.
    await api(c.relay, "POST", "/api/v1/tokens", c.relay.adminToken, { name: "overlay-for-screens", role: "overlay" });
    // A watched streamer, so the Streamers view has an item (08 tests its answers).
    await api(c.relay, "POST", "/api/v1/streamers", c.relay.adminToken, { twitch_username: BROADCASTER });
    // A chat bot with a channel, so the Bots view has an item (10 tests its
    // answers). A relay without chat bots (404) gets none: the Bots view's
    // tests below then fail on its 404s, as they should.
    if ((await api(c.relay, "GET", "/api/v1/chat-bots", c.relay.adminToken)).status !== 404) {
      const made = await c.fake.post("/users", { login: "a_long_channel_login_xyz", id: "90201" });
      assert.equal(made.status, 204, JSON.stringify(made.body));
      const bot = await addBotViaApi(c.relay, c.fake, { login: "views_chat_bot", id: "90202" });
      const joined = await api(c.relay, "POST", "/api/v1/chat-bots/channels", c.relay.adminToken, { channel: "a_long_channel_login_xyz", chat_bot: bot.id });
      assert.equal(joined.status, 201, JSON.stringify(joined.body));
    }
  },
});

/** Opens the view after login and lets it load (some live events in the feed first). */
async function open(page, view) {
  await loginByLink(page, ctx.relay);
  await openView(page, view);
  if (view.nav === "Live") {
    await waitFor("the relay light to say connected", async () => saysConnected(await relayLight(page).innerText()), 10_000);
    // The light goes on when the socket opens; the relay subscribes the
    // page only once it has read the token (TAU's protocol sends nothing
    // back to wait for), and a test event, which is not stored, sent in
    // between never shows. On a busy machine that gap is long enough to
    // hit: send again until one shows.
    let sent = 0;
    await waitFor("a test chat message in the Live feed", async () => {
      if (await feedItem(page, "channel-chat-message").isVisible()) return true;
      if (sent++ % 10 === 0) {
        for (const type of ["channel-subscription-gift", "channel-chat-message"]) {
          const made = await api(ctx.relay, "POST", `/api/v1/twitch-events/${type}/test`, ctx.relay.adminToken);
          assert.ok(made.status < 300, `test event ${type}: ${made.status}`);
        }
      }
      return false;
    }, 15_000, 200);
  }
  if (view.nav === "Chat") {
    await waitFor("the relay light to say connected", async () => saysConnected(await relayLight(page).innerText()), 10_000);
    // Chat lines with what can overflow or lack contrast: badges, a long
    // name in a dark colour, an emote, a reply, a cheer, a notice.
    await sendChat(ctx.relay, (d) => {
      d.chatter_user_name = "A_Very_Long_Chatter_Name_For_Wrapping";
      d.color = "#0000FF";
      d.badges = [{ set_id: "moderator", id: "1", info: "" }, { set_id: "subscriber", id: "12", info: "16" }];
      d.message = { text: "hi Kappa " + "y".repeat(90), fragments: [
        { type: "text", text: "hi ", emote: null, cheermote: null, mention: null },
        { type: "emote", text: "Kappa", emote: { id: "25" }, cheermote: null, mention: null },
        { type: "text", text: " " + "y".repeat(90), emote: null, cheermote: null, mention: null },
      ] };
    });
    await sendChat(ctx.relay, (d) => {
      d.color = "#FFFF00";
      d.cheer = { bits: 100 };
      d.reply = { parent_message_id: "x", parent_message_body: "an earlier message", parent_user_id: "1", parent_user_login: "someone", parent_user_name: "someone" };
    });
    await sendChat(ctx.relay, (d) => { d.message_type = "channel_points_highlighted"; });
    await api(ctx.relay, "POST", "/api/v1/twitch-events/channel-chat-notification/test", ctx.relay.adminToken);
    await chatLog(page).getByRole("listitem").nth(3).waitFor({ state: "visible", timeout: 10_000 });
  }
  await page.waitForLoadState("networkidle").catch(() => {});
  await page.waitForTimeout(300);
}

/** A chat message test event: the relay's sample with `edit` applied. */
async function sendChat(relay, edit) {
  const sample = await api(relay, "GET", "/api/v1/twitch-events/channel-chat-message/test", relay.adminToken);
  edit(sample.body.event_data);
  await api(relay, "POST", "/api/v1/twitch-events/channel-chat-message/test", relay.adminToken, sample.body.event_data);
}

const slug = (v) => v.hash.slice(2);

test("phone width: the menu closes after choosing a view", async () => {
  await withPage(ctx, "phone-menu", async (page) => {
    await loginByLink(page, ctx.relay);
    const menu = page.getByRole("button", { name: "Menu" });
    const nav = page.getByRole("navigation", { name: "Views" });
    assert.equal(await nav.isVisible(), false, "the menu is open before it was asked for");
    for (const target of ["History", "Live"]) {
      await menu.click();
      assert.equal(await menu.getAttribute("aria-expanded"), "true");
      await nav.getByRole("link", { name: target, exact: true }).click();
      await waitFor(`the menu to close after choosing ${target}`, async () => !(await nav.isVisible()), 3000);
      assert.equal(await menu.getAttribute("aria-expanded"), "false");
    }
    // Choosing the view already shown closes it too (no hashchange then).
    await menu.click();
    await nav.getByRole("link", { name: "Live", exact: true }).click();
    await waitFor("the menu to close after choosing the current view", async () => !(await nav.isVisible()), 3000);
  }, PHONE);
});

for (const view of VIEWS) {
  test(`phone width: ${view.nav} has no horizontal overflow at 360 px`, async () => {
    await withPage(ctx, `phone-${slug(view)}`, async (page) => {
      await open(page, view);
      await screenshot(page, `${slug(view)}-phone`);
      const o = await overflow(page);
      assert.ok(o.scrollWidth <= o.innerWidth,
        `${view.nav} is ${o.scrollWidth} px wide at ${o.innerWidth} px; wider elements: ${o.widest.join(", ")}`);
    }, PHONE);
  });

  test(`accessibility: ${view.nav} has no serious or critical axe violations (desktop, phone, dark)`, async () => {
    await withPage(ctx, `axe-${slug(view)}`, async (page) => {
      await open(page, view);
      await screenshot(page, `${slug(view)}-desktop`);
      const found = [];
      for (const [mode, size, scheme] of [["desktop", DESKTOP, "light"], ["phone", PHONE, "light"], ["dark", DESKTOP, "dark"]]) {
        await page.setViewportSize(size);
        await page.emulateMedia({ colorScheme: scheme });
        await page.waitForTimeout(150);
        if (mode === "dark") await screenshot(page, `${slug(view)}-dark-desktop`);
        for (const v of await axeSerious(page)) found.push(`[${mode}] ${v}`);
      }
      assert.deepEqual(found, [], `axe on ${view.nav}`);
    });
  });
}
