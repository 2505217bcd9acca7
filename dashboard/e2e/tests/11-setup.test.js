// 11. Setting TAU up entirely from the browser: a relay started without
// TWITCH_CLIENT_ID / TWITCH_CLIENT_SECRET (and without TWITCH_BROADCASTER)
// shows the Setup page's form; a secret Twitch refuses is answered in
// words; the fake Twitch's pair turns step 1 done; Connect Twitch walks
// the fake's consent and the Twitch light turns connected, without a
// relay restart. The broadcaster step is optional on the websocket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import { join } from "node:path";
import {
  ARTIFACTS, CLIENT_ID, CLIENT_SECRET, PHONE, api, axeSerious, ensureDir, overflow, screenshot, waitFor, waitForTwitchSession,
} from "../lib/harness.js";
import { connectTwitchFromSetup, field, loginByLink, navLink, openView, saysConnected, twitchLight } from "../lib/dash.js";

const ctx = suite("setup", { relayUnset: ["TWITCH_CLIENT_ID", "TWITCH_CLIENT_SECRET", "TWITCH_BROADCASTER"] });

/** A picture of one step alone (the full page is long on a phone). */
async function stepShot(item, name) {
  await item.screenshot({ path: join(ensureDir(ARTIFACTS), `${name}.png`) });
}

/** Setup's step whose heading starts with `title`: `{heading, item}`. */
function step(page, title) {
  const name = new RegExp(`^\\d*\\s*${title}`);
  // (`has` is matched inside each list item: a locator from the page, not from main.)
  return {
    heading: page.getByRole("main").getByRole("heading", { name }),
    item: page.getByRole("main").getByRole("listitem").filter({ has: page.getByRole("heading", { name }) }),
  };
}

test("credentials entered on Setup start Twitch without a restart", async () => {
  await withPage(ctx, "setup-credentials", async (page) => {
    // The refused pair is answered 400; Chromium logs that as a console error.
    page.allowedProblems.push(/Failed to load resource: the server responded with a status of 400/);
    await loginByLink(page, ctx.relay);
    await openView(page, "Setup");
    const creds = step(page, "Twitch app credentials");
    await creds.heading.waitFor({ state: "visible" });
    assert.match(await creds.heading.innerText(), /To do/, "step 1 is to do");
    const form = page.getByRole("form", { name: "Twitch application" });
    await form.waitFor({ state: "visible" });
    const body = (await creds.item.innerText()).replace(/\s+/g, " ");
    assert.match(body, /dev\.twitch\.tv\/console\/apps/, "where to create the app");
    assert.match(body, /twitch-callback/, "the redirect URL to register");
    assert.match(body, /environment variables/i, "the environment alternative");
    const broadcaster = step(page, "Broadcaster");
    assert.match(await broadcaster.heading.innerText(), /Optional/, "no broadcaster is fine on the websocket");
    assert.match(await broadcaster.item.innerText(), /account that connects/i);

    // The relay's status agrees: waiting for credentials.
    const before = await api(ctx.relay, "GET", "/api/v1/status", ctx.relay.adminToken);
    assert.equal(before.body.twitch.eventsub.state, "waiting_for_credentials");
    assert.equal(before.body.twitch.credentials_source, null);

    await screenshot(page, "setup-credentials-form-desktop");
    assert.deepEqual(await axeSerious(page), [], "axe on the Setup form");
    await page.setViewportSize(PHONE);
    const o = await overflow(page);
    assert.ok(o.scrollWidth <= o.innerWidth, `Setup overflows at 360 px: ${JSON.stringify(o)}`);
    await screenshot(page, "setup-credentials-form-phone");
    await stepShot(creds.item, "setup-credentials-step-phone");
    await page.setViewportSize({ width: 1280, height: 900 });

    const id = await field(form, ["Client ID"]);
    const secret = await field(form, ["Client secret"]);
    assert.equal(await secret.getAttribute("type"), "password", "the secret is a password field");

    // A secret Twitch refuses: said in words, nothing stored.
    await id.fill(CLIENT_ID);
    await secret.fill("not-the-secret");
    await form.getByRole("button", { name: "Save" }).click();
    const alert = form.getByRole("alert");
    await alert.waitFor({ state: "visible" });
    assert.match(await alert.innerText(), /Twitch refused/i);
    assert.equal((await api(ctx.relay, "GET", "/api/v1/twitch/app", ctx.relay.adminToken)).body.source, null);

    // The right pair: step 1 done, the client id shown, the secret not.
    await secret.fill(CLIENT_SECRET);
    await form.getByRole("button", { name: "Save" }).click();
    await waitFor("step 1 to say done", async () => /Done/.test(await creds.heading.innerText()), 10_000);
    const stored = (await creds.item.innerText()).replace(/\s+/g, " ");
    assert.match(stored, new RegExp(CLIENT_ID), "the stored client id is shown");
    assert.ok(!stored.includes(CLIENT_SECRET), "the secret is not shown");
    await creds.item.getByRole("button", { name: "Replace" }).waitFor({ state: "visible" });
    await creds.item.getByRole("button", { name: "Forget" }).waitFor({ state: "visible" });
    await screenshot(page, "setup-credentials-stored-desktop");
    await stepShot(creds.item, "setup-credentials-step-stored-desktop");

    // Connect Twitch through the fake's consent, no restart in between.
    const response = await connectTwitchFromSetup(page, ctx.relay);
    assert.equal(response.status(), 200, "the success outcome page");
    await page.getByRole("link", { name: "Back to the dashboard" }).click();
    await navLink(page, "Live").waitFor({ state: "attached", timeout: 10_000 });
    await waitForTwitchSession(ctx.fake);
    await waitFor("the Twitch light to say connected", async () => saysConnected(await twitchLight(page).innerText()), 20_000);
    const after = await api(ctx.relay, "GET", "/api/v1/status", ctx.relay.adminToken);
    assert.equal(after.body.twitch.eventsub.state, "connected");
    assert.equal(after.body.twitch.credentials_source, "dashboard");
    assert.ok(!JSON.stringify(after.body).includes(CLIENT_SECRET), "the status never carries the secret");
    assert.ok(!ctx.relay.log().includes(CLIENT_SECRET), "the relay never logs the secret");
  });
});
