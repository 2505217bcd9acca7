// 7 + 8. Every view, with a connected channel and real events in it:
// screenshots at desktop (1280x900) and phone (360x740) widths, no
// horizontal overflow at 360 px, and axe-core finds no serious or
// critical violation (light and dark). Console errors fail every test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import {
  DESKTOP, PHONE, api, axeSerious, connectTwitchViaApi, overflow, screenshot, sendTwitchEvent, waitFor,
} from "../lib/harness.js";
import { VIEWS, feedItem, loginByLink, openView, relayLight, saysConnected } from "../lib/dash.js";

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
  },
});

/** Opens the view after login and lets it load (some live events in the feed first). */
async function open(page, view) {
  await loginByLink(page, ctx.relay);
  await openView(page, view);
  if (view.nav === "Live") {
    await waitFor("the relay light to say connected", async () => saysConnected(await relayLight(page).innerText()), 10_000);
    await api(ctx.relay, "POST", "/api/v1/twitch-events/channel-subscription-gift/test", ctx.relay.adminToken);
    await api(ctx.relay, "POST", "/api/v1/twitch-events/channel-chat-message/test", ctx.relay.adminToken);
    await feedItem(page, "channel-chat-message").waitFor({ state: "visible", timeout: 10_000 });
  }
  await page.waitForLoadState("networkidle").catch(() => {});
  await page.waitForTimeout(300);
}

const slug = (v) => v.hash.slice(2);

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
