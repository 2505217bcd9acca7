// 6. The OAuth outcome pages (server-rendered by the relay): denied and
// success each render a heading and a working "Back to the dashboard"
// link; they fit a phone and pass axe. Asserts the link and the status,
// not the styling.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import { PHONE, axeSerious, overflow, screenshot, waitForTwitchSession } from "../lib/harness.js";
import { connectTwitchFromSetup, loginByLink, navLink } from "../lib/dash.js";

const ctx = suite("oauth-pages");

async function checkOutcomePage(page, name, { heading, words }) {
  const h = page.getByRole("heading").first();
  await h.waitFor({ state: "visible", timeout: 5000 });
  assert.match(await h.innerText(), heading, "the outcome page's heading");
  assert.match(await page.locator("body").innerText(), words, "the outcome page's words");
  await screenshot(page, `oauth-${name}-desktop`);
  assert.deepEqual(await axeSerious(page), [], `axe on the ${name} page`);
  await page.setViewportSize(PHONE);
  const o = await overflow(page);
  assert.ok(o.scrollWidth <= o.innerWidth, `the ${name} page overflows at 360 px: ${JSON.stringify(o)}`);
  await screenshot(page, `oauth-${name}-phone`);
  // The way back works, and the dashboard still knows the user.
  await page.getByRole("link", { name: "Back to the dashboard" }).click();
  await navLink(page, "Live").waitFor({ state: "attached", timeout: 10_000 });
  assert.equal(new URL(page.url()).pathname, "/", "the back link leads to the dashboard");
}

test("denied: Twitch's Cancel leads to a page that says so, with a way back", async () => {
  await withPage(ctx, "oauth-denied", async (page) => {
    // A refusal may be a 4xx document; Chromium logs that as a console error.
    page.allowedProblems.push(/Failed to load resource: the server responded with a status of 40[03]/);
    assert.equal((await ctx.fake.post("/deny-authorization", { deny: true })).status, 204);
    try {
      await loginByLink(page, ctx.relay);
      const response = await connectTwitchFromSetup(page, ctx.relay);
      const url = new URL(response.url());
      assert.equal(url.searchParams.get("error"), "access_denied");
      assert.ok(url.searchParams.get("state"), "the denied callback carries the state");
      assert.ok(response.status() < 500, `the denied page answered ${response.status()}`);
      assert.match(response.headers()["content-type"] || "", /text\/html/, "the denied page is a page, not JSON");
      await checkOutcomePage(page, "denied", {
        heading: /not connected|denied|cancel|not granted|failed/i,
        words: /denied|cancel|not granted|try again/i,
      });
    } finally {
      await ctx.fake.post("/deny-authorization", { deny: false });
    }
  });
});

test("success: the consent round trip ends on a page that says Twitch is connected, with a way back", async () => {
  await withPage(ctx, "oauth-success", async (page) => {
    await loginByLink(page, ctx.relay);
    const response = await connectTwitchFromSetup(page, ctx.relay);
    assert.equal(response.status(), 200);
    assert.ok(new URL(response.url()).searchParams.get("code"), "the callback carries a code");
    assert.match(response.headers()["content-type"] || "", /text\/html/);
    await checkOutcomePage(page, "success", {
      heading: /connected|success|authori[sz]ed|done/i,
      words: /cooler_user|connected|authori[sz]ed/i,
    });
    await waitForTwitchSession(ctx.fake);
  });
});

test("a callback with a stale state (no cookie) is refused on a page with a way back", async () => {
  await withPage(ctx, "oauth-stale", async (page) => {
    page.allowedProblems.push(/Failed to load resource: the server responded with a status of 4\d\d/);
    await loginByLink(page, ctx.relay);
    const response = await page.goto(`${ctx.relay.base}/twitch-callback/?error=access_denied&error_description=The+user+denied+you+access&state=0123456789abcdef`);
    assert.ok(response.status() >= 400 && response.status() < 500, `answered ${response.status()}`);
    assert.match(response.headers()["content-type"] || "", /text\/html/, "the page is HTML, not JSON");
    await page.getByRole("heading").first().waitFor({ state: "visible", timeout: 5000 });
    await page.getByRole("link", { name: "Back to the dashboard" }).click();
    await navLink(page, "Live").waitFor({ state: "attached", timeout: 10_000 });
  });
});
