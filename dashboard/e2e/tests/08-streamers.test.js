// 8. Watched streamers: an admin adds one by login (errors shown inline
// from the relay's detail), sees it flip live and offline from Twitch's
// stream.online/offline (through the fake's EventSub session, no reload),
// reads its recent streams page by page, disables and removes it. An
// overlay token only reads; a streamer set by TAU_STREAMERS (the
// TwitchChannel) is shown as managed and cannot be removed here.
//
// The watched channel is a second Twitch user the fake is told about; it
// goes live and offline through the fake's control API, which lists the
// broadcast in GET /helix/streams (the title the relay records) and
// notifies its stream.online/offline subscriptions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import {
  PHONE, allowProblems, api, connectTwitchViaApi, overflow, screenshot, startRelay, waitFor,
} from "../lib/harness.js";
import { loginByLink, openView } from "../lib/dash.js";

let overlayToken;
const STREAMER = "e2e_streamer";
const STREAMER_ID = "90001";
const ctx = suite("streamers", {
  setup: async (c) => {
    const user = await c.fake.post("/users", { login: STREAMER, id: STREAMER_ID });
    assert.equal(user.status, 204, JSON.stringify(user.body));
    await connectTwitchViaApi(c.relay, c.fake);
    const made = await api(c.relay, "POST", "/api/v1/tokens", c.relay.adminToken, { name: "streamers-overlay", role: "overlay" });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    overlayToken = made.body.token;
  },
});

/**
 * The watched channel goes live (or offline) at the fake Twitch; waits
 * until the relay's session holds the subscription that hears it (adding
 * or enabling a streamer resubscribes).
 */
async function twitchStream(live, extra = {}) {
  await waitFor(`the relay subscribed to ${STREAMER}'s stream.${live ? "online" : "offline"}`, async () => {
    const sent = await ctx.fake.post("/streams", { user_id: STREAMER_ID, live, ...extra });
    assert.equal(sent.status, 200, JSON.stringify(sent.body));
    return sent.body.message_ids.length > 0;
  }, 10_000, 200);
}

async function streamerRecord(login = STREAMER) {
  const { status, body } = await api(ctx.relay, "GET", "/api/v1/streamers", ctx.relay.adminToken);
  assert.equal(status, 200, JSON.stringify(body));
  return body.results.find((s) => s.twitch_username === login);
}

const item = (page, login = STREAMER) => page.getByRole("list", { name: "Watched streamers" }).getByRole("listitem").filter({
  has: page.getByRole("heading", { name: login, exact: true }),
});

test("admin: add by login (errors inline), live flip from Twitch, recent streams with more, disable, remove", async () => {
  await withPage(ctx, "streamers-admin", async (page) => {
    allowProblems(page, /status of 4\d\d/);
    await loginByLink(page, ctx.relay);
    await openView(page, "Streamers");
    const main = page.getByRole("main");
    await main.getByText("No watched streamers yet").waitFor();

    const login = main.getByLabel("Twitch login");
    const add = main.getByRole("button", { name: "Add streamer" });
    await login.fill("nobody_e2e_unknown");
    await add.click();
    await main.getByRole("alert").filter({ hasText: /Could not add nobody_e2e_unknown: .+\(HTTP 400\)/ }).waitFor();
    await login.fill("not a login!");
    await add.click();
    await main.getByRole("alert").filter({ hasText: /Could not add not a login!: .+\(HTTP 400\)/ }).waitFor();

    await login.fill(STREAMER);
    await add.click();
    await main.getByText(`Now watching ${STREAMER}.`).waitFor();
    await item(page).getByText("Offline", { exact: true }).waitFor();
    await login.fill(STREAMER);
    await add.click();
    await main.getByRole("alert").filter({ hasText: /\(HTTP 409\)/ }).waitFor();

    // Twitch says the streamer went live: the page flips without a reload.
    const rec = await streamerRecord();
    assert.ok(rec, "the added streamer is not in GET /api/v1/streamers");
    await page.evaluate(() => { window.__sameDocument = true; });
    await twitchStream(true, { id: "e2e-stream-1", title: "First e2e stream", started_at: new Date(Date.now() - 65 * 60_000).toISOString() });
    await item(page).getByText("Live", { exact: true }).waitFor({ timeout: 10_000 });
    assert.ok(await page.evaluate(() => window.__sameDocument === true), "the page reloaded");
    await screenshot(page, "streamers-live-desktop");

    // Its streams: the open one, then ended after stream.offline.
    await item(page).getByText(`Recent streams of ${STREAMER}`).click();
    const table = item(page).getByRole("table");
    await table.getByText("live now").waitFor({ timeout: 10_000 });
    await table.getByText("First e2e stream").waitFor({ timeout: 10_000 });
    await twitchStream(false);
    await item(page).getByText("Offline", { exact: true }).waitFor({ timeout: 10_000 });
    await waitFor("the stream to show as ended", async () => (await table.getByText("live now").count()) === 0 &&
      /\d+ h \d\d min|\d+ min/.test(await table.innerText()), 10_000);

    // Eleven more streams: ten show, "More streams" shows the rest.
    for (let i = 2; i <= 12; i++) {
      await twitchStream(true, { id: `e2e-stream-${i}`, title: `Stream ${i}`, started_at: new Date(Date.now() - (20 - i) * 60_000).toISOString() });
      await twitchStream(false);
    }
    await waitFor("12 streams recorded", async () => {
      const first = await api(ctx.relay, "GET", `/api/v1/streamers/${rec.id}/streams?limit=100`, ctx.relay.adminToken);
      return first.status === 200 && first.body.results.length >= 12 && first.body.results.every((s) => s.ended_at);
    }, 20_000, 250);
    await main.getByRole("button", { name: "Refresh" }).click();
    await item(page).getByText(`Recent streams of ${STREAMER}`).click();
    await item(page).getByText(`Recent streams of ${STREAMER}`).click();
    const rows = () => item(page).getByRole("table").locator("tbody tr").count();
    await waitFor("10 streams in the first page", async () => (await rows()) === 10, 10_000);
    await item(page).getByRole("button", { name: "More streams" }).click();
    await waitFor("12 streams after More", async () => (await rows()) >= 12, 10_000);
    await screenshot(page, "streamers-streams-desktop");

    // Disable, enable, remove (with confirmation).
    await item(page).getByRole("button", { name: `Disable ${STREAMER}` }).click();
    await item(page).getByText("Disabled: not watched").waitFor();
    assert.equal((await streamerRecord()).disabled, true);
    await item(page).getByRole("button", { name: `Enable ${STREAMER}` }).click();
    await item(page).getByText("Offline", { exact: true }).waitFor();
    await item(page).getByRole("button", { name: `Remove ${STREAMER}` }).click();
    await item(page).getByRole("button", { name: "Cancel" }).click();
    assert.equal(await item(page).count(), 1, "Cancel removed the streamer");
    await item(page).getByRole("button", { name: `Remove ${STREAMER}` }).click();
    await item(page).getByRole("button", { name: "Confirm remove" }).click();
    await main.getByText("No watched streamers yet").waitFor();
    assert.equal(await streamerRecord(), undefined, "the relay still lists the removed streamer");
  });
});

test("overlay token: reads the list and streams, cannot change them (phone width)", async () => {
  const added = await api(ctx.relay, "POST", "/api/v1/streamers", ctx.relay.adminToken, { twitch_username: STREAMER });
  assert.equal(added.status, 201, JSON.stringify(added.body));
  try {
    await withPage(ctx, "streamers-overlay", async (page) => {
      await loginByLink(page, ctx.relay, overlayToken);
      await openView(page, "Streamers");
      await item(page).getByText(/^(Live|Offline)$/).waitFor();
      const main = page.getByRole("main");
      assert.equal(await main.getByLabel("Twitch login").count(), 0, "an overlay token got the add form");
      assert.equal(await main.getByRole("button", { name: /^(Remove|Disable|Enable) / }).count(), 0, "an overlay token got edit buttons");
      await item(page).getByText(`Recent streams of ${STREAMER}`).click();
      await page.waitForTimeout(500);
      const o = await overflow(page);
      assert.ok(o.scrollWidth <= o.innerWidth, `Streamers is ${o.scrollWidth} px wide at ${o.innerWidth} px: ${o.widest.join(", ")}`);
      await screenshot(page, "streamers-overlay-phone");
    }, PHONE);
  } finally {
    await api(ctx.relay, "DELETE", `/api/v1/streamers/${added.body.id}`, ctx.relay.adminToken);
  }
});

test("a streamer set by TAU_STREAMERS is managed by the TwitchChannel: labelled, not removable", async () => {
  const relay = await startRelay(ctx.fake, { name: "streamers-spec-relay", env: { TAU_STREAMERS: STREAMER } });
  try {
    await withPage({ ...ctx, relay }, "streamers-spec", async (page) => {
      await loginByLink(page, relay);
      await openView(page, "Streamers");
      await waitFor("the spec streamer", async () => (await item(page).count()) === 1, 15_000);
      await item(page).getByText("Managed by the TwitchChannel").waitFor();
      assert.equal(await item(page).getByRole("button", { name: `Remove ${STREAMER}` }).count(), 0, "a managed streamer has a Remove button");
    });
  } finally {
    await relay.stop();
    relay.cleanup();
  }
});

test("an older relay without watched streamers (404): the view says so", async () => {
  await withPage(ctx, "streamers-404", async (page) => {
    allowProblems(page, /status of 404/);
    await page.route("**/api/v1/streamers", (route) => route.fulfill({ status: 404, json: { detail: "not found" } }));
    await loginByLink(page, ctx.relay);
    await openView(page, "Streamers");
    await page.getByText("This relay has no watched-streamers support yet").waitFor();
  });
});
