// 5. Tokens: create one in the UI (shown once), connect a bot with it,
// revoke it in the UI: that bot is disconnected within seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import { api, eventClient, screenshot, waitFor } from "../lib/harness.js";
import { loginByLink, openView, setField } from "../lib/dash.js";

const ctx = suite("tokens");

/** Every token-looking string the page shows (text and control values). */
async function tokenLike(page) {
  return page.evaluate(() => {
    const texts = [document.body.innerText];
    for (const el of document.querySelectorAll("input, textarea")) texts.push(el.value);
    return [...new Set(texts.join("\n").match(/[A-Za-z0-9_-]{20,}/g) || [])];
  });
}

test("a token created in the UI is shown once, works, and its revocation closes its socket", async () => {
  await withPage(ctx, "tokens", async (page) => {
    page.on("dialog", (d) => d.accept()); // a confirm() before revoking
    await loginByLink(page, ctx.relay);
    await openView(page, "Tokens");
    const main = page.getByRole("main");
    const before = new Set(await tokenLike(page));

    const name = `e2e-bot-${Date.now() % 100000}`;
    await main.getByLabel(/name/i).first().fill(name);
    const role = main.getByLabel(/role/i);
    if (await role.count()) await setField(role.first(), "bot");
    await main.getByRole("button", { name: /create/i }).first().click();

    // The new token appears once: find it among the new token-looking strings.
    const token = await waitFor("the new token on the page", async () => {
      for (const candidate of (await tokenLike(page)).filter((t) => !before.has(t) && !t.includes(name))) {
        const res = await api(ctx.relay, "GET", "/api/v1/twitch-events?page_size=1", candidate);
        if (res.status === 200) return candidate;
      }
      return null;
    }, 10_000, 250);
    await screenshot(page, "tokens-created-desktop");

    // Shown once: after leaving the view and a reload, it is gone.
    await openView(page, "Live");
    await openView(page, "Tokens");
    await page.getByText(name).first().waitFor({ state: "visible", timeout: 10_000 });
    assert.ok(!(await tokenLike(page)).includes(token), "the token is shown again after leaving the Tokens view");
    await page.reload();
    await page.getByText(name).first().waitFor({ state: "visible", timeout: 10_000 });
    assert.ok(!(await tokenLike(page)).includes(token), "the token is shown again after a reload");

    const bot = await eventClient(ctx.relay, token);
    try {
      // Revoke it from its row: the innermost element holding its name and a Revoke button.
      const row = main.locator("*")
        .filter({ hasText: name })
        .filter({ has: page.getByRole("button", { name: /revoke|delete/i }) })
        .last();
      await row.getByRole("button", { name: /revoke|delete/i }).first().click();
      // A confirmation (a dialog, or a confirm button in the row), if any.
      await page.waitForTimeout(300);
      if (!bot.closed && (await api(ctx.relay, "GET", "/api/v1/twitch-events?page_size=1", token)).status === 200) {
        const dialog = page.getByRole("dialog").or(page.getByRole("alertdialog"));
        const scope = (await dialog.first().isVisible().catch(() => false)) ? dialog.first() : row;
        await scope.getByRole("button", { name: /revoke|delete|confirm|yes/i }).first().click();
      }
      const t0 = Date.now();
      const closed = await bot.waitForClose(5000);
      const code = closed.code ?? null;
      assert.ok(code === 1008 || closed.error, `the revoked bot's socket ended with ${JSON.stringify(closed)}`);
      console.log(`# revoked bot disconnected in ${Date.now() - t0} ms (${JSON.stringify(closed)})`);
    } finally {
      bot.close();
    }
    const after = await api(ctx.relay, "GET", "/api/v1/twitch-events?page_size=1", token);
    assert.equal(after.status, 401, "the revoked token still works over REST");
    await waitFor("the revoked token to leave the list (or be marked revoked)", async () => {
      const rows = main.getByText(name);
      return (await rows.count()) === 0 || /revoked/i.test(await main.innerText());
    }, 5000);
    await screenshot(page, "tokens-revoked-desktop");
  });
});
