// 3. With the page open, the relay dies and comes back on the same port
// and database: the relay light goes red then green, and an event sent
// after the restart shows in the feed without a reload.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import { allowProblems, api, screenshot, waitFor } from "../lib/harness.js";
import { feedItem, lightHistory, loginByLink, openView, recordLight, relayLight, saysConnected } from "../lib/dash.js";

const ctx = suite("restart");

test("the page survives a relay restart without reload and shows events sent after it", async () => {
  await withPage(ctx, "relay-restart", async (page) => {
    // While the relay is down the browser itself logs refused connections
    // (the dashboard's reconnect attempts): expected, and only those.
    allowProblems(page,
      /WebSocket connection to 'ws:\/\/127\.0\.0\.1:\d+\/ws\/[a-z-]+\/?' failed/,
      /Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET)/,
      /net::ERR_CONNECTION_(REFUSED|RESET)/);
    await loginByLink(page, ctx.relay);
    await openView(page, "Live");
    await recordLight(page, "Relay connection");
    await waitFor("the relay light to say connected", async () => saysConnected(await relayLight(page).innerText()), 10_000);
    // A marker that a reload would wipe.
    await page.evaluate(() => { window.__noReload = "still here"; });

    await ctx.relay.kill();
    await waitFor("the relay light to leave connected", async () => !saysConnected(await relayLight(page).innerText()), 10_000);
    await screenshot(page, "relay-down-desktop");

    await ctx.relay.restart();
    await waitFor("the relay light to say connected again", async () => saysConnected(await relayLight(page).innerText()), 30_000);

    // Sent after the restart: a test event with a name of our own.
    const name = `After_Restart_${Date.now() % 100000}`;
    const sample = await api(ctx.relay, "POST", "/api/v1/twitch-events/channel-follow/test", ctx.relay.adminToken);
    assert.equal(sample.status, 200, JSON.stringify(sample.body));
    const data = { ...sample.body.event_data, user_name: name, user_login: name.toLowerCase() };
    const sent = await api(ctx.relay, "POST", "/api/v1/twitch-events/channel-follow/test", ctx.relay.adminToken, data);
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    await feedItem(page, "channel-follow", [name]).waitFor({ state: "visible", timeout: 10_000 });

    assert.equal(await page.evaluate(() => window.__noReload), "still here", "the page reloaded");
    const history = await lightHistory(page, "Relay connection");
    const firstGreen = history.findIndex(saysConnected);
    const red = history.findIndex((t, i) => i > firstGreen && !saysConnected(t));
    const green = history.findIndex((t, i) => i > red && saysConnected(t));
    assert.ok(firstGreen >= 0 && red > firstGreen && green > red,
      `the relay light did not go green -> red -> green: ${JSON.stringify(history)}`);
    await screenshot(page, "relay-back-desktop");
  });
});
