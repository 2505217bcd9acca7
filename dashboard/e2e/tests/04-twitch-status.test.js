// 4. Connect Twitch through the fake from the Setup view (consent ->
// outcome page -> back link), see the Twitch light connected, then the
// fake drops every EventSub session and refuses new ones: the light and
// the Status view show it within 10 s, and recover when Twitch is back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import { screenshot, waitFor, waitForTwitchSession } from "../lib/harness.js";
import {
  connectTwitchFromSetup, lightHistory, loginByLink, navLink, openView, recordLight, saysConnected, twitchLight,
} from "../lib/dash.js";

const ctx = suite("twitch-status");

test("Twitch light goes connected after OAuth, and the status shows a Twitch disconnect within 10 s", async () => {
  await withPage(ctx, "twitch-status", async (page) => {
    await loginByLink(page, ctx.relay);
    const before = await twitchLight(page).innerText();
    assert.ok(!saysConnected(before), `the Twitch light says connected before any authorization: ${before}`);

    const response = await connectTwitchFromSetup(page, ctx.relay);
    assert.equal(response.status(), 200, "the success outcome page");
    // (The outcome page itself is judged in 06-oauth-pages; here only its way back.)
    await page.getByRole("link", { name: "Back to the dashboard" }).click();
    await navLink(page, "Live").waitFor({ state: "visible", timeout: 10_000 });

    await waitForTwitchSession(ctx.fake);
    await waitFor("the Twitch light to say connected", async () => saysConnected(await twitchLight(page).innerText()), 20_000);
    await openView(page, "Status");
    await recordLight(page, "Twitch connection");
    const main = page.getByRole("main");
    const healthy = (await main.innerText()).replace(/\s+/g, " ");
    await screenshot(page, "status-twitch-connected-desktop");

    // Twitch goes away: every session closed (4006), new ones refused.
    const t0 = Date.now();
    const outage = await ctx.fake.post("/eventsub-outage", { down: true });
    assert.equal(outage.status, 200, JSON.stringify(outage.body));
    assert.ok(outage.body.closed.length >= 1, "the fake closed no session");
    await waitFor("the Twitch light to leave connected", async () => !saysConnected(await twitchLight(page).innerText()), 10_000, 200);
    const lightSeconds = (Date.now() - t0) / 1000;
    // The Status view says so in words, live (no reload, no navigation).
    await waitFor("the Status view to show the disconnect", async () => {
      const now = (await main.innerText()).replace(/\s+/g, " ");
      return now !== healthy && /disconnect|reconnect|connecting|not connected|unavailable|error|fail|retrying|backoff|lost|down/i.test(now);
    }, Math.max(1000, 10_000 - (Date.now() - t0)), 200);
    await screenshot(page, "status-twitch-down-desktop");
    console.log(`# Twitch light changed ${lightSeconds.toFixed(1)} s after the disconnect`);

    // Twitch comes back: the relay reconnects and the light turns green again.
    await ctx.fake.post("/eventsub-outage", { down: false });
    await waitFor("the Twitch light to say connected again", async () => saysConnected(await twitchLight(page).innerText()), 30_000, 200);
    const history = await lightHistory(page, "Twitch connection");
    assert.ok(history.some((t) => !saysConnected(t)), `the light history shows no red: ${JSON.stringify(history)}`);
  });
});
