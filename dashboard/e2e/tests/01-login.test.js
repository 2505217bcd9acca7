// 1. Login by link; the token leaves the address bar; an empty login is
// refused with a visible message; logout returns to login.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import { waitFor, screenshot, PHONE } from "../lib/harness.js";
import { loginByLink, navLink, relayLight, saysConnected } from "../lib/dash.js";

const ctx = suite("login");

/** The login form's token field (labelled, per the contract). */
const tokenField = (page) => page.getByLabel(/token/i).first();

test("a login link logs in and the token leaves the address bar", async () => {
  await withPage(ctx, "login-link", async (page) => {
    await loginByLink(page, ctx.relay);
    await waitFor("the token to leave the address bar", async () => !page.url().includes(ctx.relay.adminToken), 5000);
    assert.ok(!page.url().includes("token="), `address bar still has a token: ${page.url()}`);
    // Not in the history either: going back must not bring it back.
    const history = await page.evaluate(() => history.length);
    if (history > 1) {
      await page.goBack().catch(() => {});
      assert.ok(!page.url().includes(ctx.relay.adminToken), `the token is in the history: ${page.url()}`);
      await page.goForward().catch(() => {});
    }
    await waitFor("the relay light to say connected", async () => saysConnected(await relayLight(page).innerText()), 10_000);
    // A reload keeps the session (the token is remembered, not in the URL).
    await page.reload();
    await navLink(page, "Live").waitFor({ state: "visible", timeout: 10_000 });
  });
});

test("a #token= link pasted into an already open tab logs in too", async () => {
  await withPage(ctx, "login-hashchange", async (page) => {
    await page.goto(ctx.relay.base + "/");
    await tokenField(page).waitFor({ state: "visible", timeout: 10_000 });
    await screenshot(page, "login-desktop");
    await page.evaluate((t) => { location.hash = "#token=" + t; }, ctx.relay.adminToken);
    await navLink(page, "Live").waitFor({ state: "visible", timeout: 10_000 });
    await waitFor("the token to leave the address bar", async () => !page.url().includes(ctx.relay.adminToken), 5000);
  });
});

test("an empty login is refused with a visible message", async () => {
  await withPage(ctx, "login-empty", async (page) => {
    await page.goto(ctx.relay.base + "/");
    const field = tokenField(page);
    await field.waitFor({ state: "visible", timeout: 10_000 });
    await field.fill("");
    await page.getByRole("button", { name: /log ?in|sign ?in|connect|continue/i }).first().click();
    // A message the user can see (an alert, or a described invalid field).
    const alert = page.getByRole("alert").filter({ hasText: /\S/ });
    await waitFor("a visible message refusing the empty token", async () =>
      (await alert.count()) > 0 && (await alert.first().isVisible()), 5000);
    const message = await alert.first().innerText();
    assert.match(message, /token|empty|required|enter/i, `the message does not say what is wrong: ${message}`);
    // Still logged out.
    assert.ok(await field.isVisible(), "the login form went away after an empty login");
    assert.equal(await navLink(page, "Live").count(), 0, "an empty login showed the dashboard");
  });
});

test("a wrong token is refused with a visible message", async () => {
  await withPage(ctx, "login-wrong", async (page) => {
    // The relay answers 401 to the dashboard's check: an expected failure.
    page.allowedProblems.push(/401|Unauthorized/i);
    await page.goto(ctx.relay.base + "/");
    await tokenField(page).fill("not-a-real-token-0000000000000000");
    await page.getByRole("button", { name: /log ?in|sign ?in|connect|continue/i }).first().click();
    const alert = page.getByRole("alert").filter({ hasText: /\S/ });
    await waitFor("a visible message refusing the wrong token", async () =>
      (await alert.count()) > 0 && (await alert.first().isVisible()), 10_000);
    assert.equal(await navLink(page, "Live").count(), 0, "a wrong token showed the dashboard");
  });
});

test("logout returns to the login form and forgets the token", async () => {
  await withPage(ctx, "logout", async (page) => {
    await loginByLink(page, ctx.relay);
    await page.getByRole("button", { name: /log ?out|sign ?out/i }).first().click();
    await tokenField(page).waitFor({ state: "visible", timeout: 5000 });
    assert.equal(await navLink(page, "Live").count(), 0, "the nav stayed after logout");
    await page.reload();
    await tokenField(page).waitFor({ state: "visible", timeout: 10_000 });
    assert.equal(await navLink(page, "Live").count(), 0, "a reload after logout logged back in");
  });
});

test("the login form fits a phone", async () => {
  await withPage(ctx, "login-phone", async (page) => {
    await page.goto(ctx.relay.base + "/");
    await tokenField(page).waitFor({ state: "visible", timeout: 10_000 });
    await screenshot(page, "login-phone");
    const { scrollWidth, innerWidth } = await page.evaluate(() => ({
      scrollWidth: document.scrollingElement.scrollWidth, innerWidth: window.innerWidth,
    }));
    assert.ok(scrollWidth <= innerWidth, `login overflows: ${scrollWidth} > ${innerWidth}`);
  }, PHONE);
});
