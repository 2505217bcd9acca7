// 12. Webhook forwarding (issue 14, part 2): an admin adds a receiver
// through the Webhooks form (a generated secret, shown once, configures
// the receiver; one event type chosen); TAU's challenge is answered and
// verified, a receiver that refuses it is named next to the form. A
// follow from (the fake) Twitch's EventSub socket reaches the receiver
// signed as Twitch signs (HMAC-SHA256 over id + timestamp + body, checked
// here with node:crypto) and the page counts it delivered; with the receiver down the page says "Retrying" and the
// backlog grows; back up, the backlog drains in order. Pause/Resume and
// delete (asked twice) from the page. An overlay token has no Webhooks link.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { suite, withPage } from "../lib/suite.js";
import {
  allowProblems, api, axeSerious, connectTwitchViaApi, freePort, screenshot, sendTwitchEvent, waitFor,
} from "../lib/harness.js";
import { loginByLink, navLink, openView, setField } from "../lib/dash.js";

/**
 * A webhook receiver as a bot would run one: answers Twitch's challenge,
 * verifies every request's signature with the secret it was given, and
 * records notifications (message id, type, event). `start()` / `stop()`
 * on the same port; `refuse` answers the challenge with 403.
 */
function receiver(port) {
  const r = { port, url: `http://127.0.0.1:${port}/twitch/webhooks`, secret: "", received: [], challenges: 0, badSignatures: 0, server: null };
  const verified = (req, body) => {
    const id = req.headers["twitch-eventsub-message-id"] ?? "";
    const timestamp = req.headers["twitch-eventsub-message-timestamp"] ?? "";
    const signature = String(req.headers["twitch-eventsub-message-signature"] ?? "");
    const expected = "sha256=" + createHmac("sha256", r.secret).update(id + timestamp).update(body).digest("hex");
    return signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
  };
  const handle = (req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (req.url === "/refuses-challenge") {
        res.writeHead(403).end("no");
        return;
      }
      if (!verified(req, body)) {
        r.badSignatures += 1;
        res.writeHead(403).end("bad signature");
        return;
      }
      const msg = JSON.parse(body.toString("utf8"));
      const type = req.headers["twitch-eventsub-message-type"];
      if (type === "webhook_callback_verification") {
        r.challenges += 1;
        res.writeHead(200, { "content-type": "text/plain" }).end(msg.challenge);
        return;
      }
      r.received.push({
        id: req.headers["twitch-eventsub-message-id"],
        type,
        subscriptionType: req.headers["twitch-eventsub-subscription-type"],
        event: msg.event,
      });
      res.writeHead(204).end();
    });
  };
  r.start = () =>
    new Promise((resolve, reject) => {
      r.server = createServer(handle);
      r.server.once("error", reject);
      r.server.listen(port, "127.0.0.1", resolve);
    });
  r.stop = () =>
    new Promise((resolve) => {
      if (!r.server) return resolve();
      r.server.close(() => resolve());
      r.server.closeAllConnections();
      r.server = null;
    });
  return r;
}

let hook;
let overlayToken;
const ctx = suite("webhooks", {
  // Quick retries, so an outage shows within the test's time.
  relayEnv: { TAU_TIMINGS: "session_backoff_max=2s,forward_backoff_min=200ms,forward_backoff_max=1s" },
  setup: async (c) => {
    await connectTwitchViaApi(c.relay, c.fake);
    hook = receiver(await freePort());
    await hook.start();
    const made = await api(c.relay, "POST", "/api/v1/tokens", c.relay.adminToken, { name: "webhooks-overlay", role: "overlay" });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    overlayToken = made.body.token;
  },
  teardown: () => hook?.stop(),
});

const targets = (page) => page.getByRole("list", { name: "Webhook targets" });
const item = (page, name) =>
  targets(page).getByRole("listitem").filter({ has: page.getByRole("heading", { name, exact: true }) }).first();
/** A number the target's facts show (`Backlog`, `Delivered`, `Failed attempts`). */
async function fact(page, name, label) {
  const text = await item(page, name).innerText();
  const m = new RegExp(`${label}\\s*(\\d+)`).exec(text);
  return m ? Number(m[1]) : NaN;
}
/**
 * A follow from `user` through the fake Twitch's EventSub socket (a real,
 * stored event: test events are broadcast only, never stored, so never
 * forwarded).
 */
const sendFollow = (user) =>
  sendTwitchEvent(ctx.relay, ctx.fake, "channel-follow", "2", (e) => {
    e.user_name = user;
    e.user_login = user.toLowerCase();
  });

test("admin: add a target (challenge, generated secret), deliveries, an outage retried and drained in order, pause, delete", async () => {
  await withPage(ctx, "webhooks-admin", async (page) => {
    // The 422 of a refused challenge is an expected console error.
    allowProblems(page, /status of 422/);
    await loginByLink(page, ctx.relay);
    await openView(page, "Webhooks");
    const main = page.getByRole("main");
    await main.getByText("No webhook targets yet").waitFor();
    const found = await axeSerious(page);
    assert.deepEqual(found, [], "axe on the empty Webhooks view");

    // A receiver that refuses the challenge: named next to the form, nothing stored.
    await setField(main.getByLabel("Name", { exact: true }), "refuser");
    await setField(main.getByLabel("URL", { exact: true }), `http://127.0.0.1:${hook.port}/refuses-challenge`);
    await main.getByRole("button", { name: "Generate" }).click();
    await main.getByRole("button", { name: "Add target" }).click();
    const refusal = main.getByRole("alert").filter({ hasText: "did not pass Twitch's challenge" });
    await refusal.waitFor();
    await screenshot(page, "webhooks-challenge-refused");
    assert.equal((await api(ctx.relay, "GET", "/api/v1/webhook-targets", ctx.relay.adminToken)).body.targets.length, 0);

    // The real receiver, configured with the secret the page generated and showed once.
    await setField(main.getByLabel("Name", { exact: true }), "e2e-bot");
    await setField(main.getByLabel("URL", { exact: true }), hook.url);
    await main.getByRole("button", { name: "Generate" }).click();
    const shown = await main.locator("code.secret").innerText();
    assert.match(shown, /^[A-Za-z0-9]{32}$/);
    assert.equal(await main.getByLabel("Secret", { exact: true }).inputValue(), shown);
    assert.equal(await main.getByLabel("Secret", { exact: true }).getAttribute("type"), "password");
    hook.secret = shown;
    await main.getByText(/^Event types \(/).click();
    await main.getByRole("checkbox", { name: "channel.follow", exact: true }).check();
    await screenshot(page, "webhooks-add-form");
    await main.getByRole("button", { name: "Add target" }).click();
    await main.getByText("Added “e2e-bot”").waitFor();
    assert.equal(hook.challenges, 1, "one challenge answered");
    assert.equal(await main.locator("code.secret").count(), 0, "the secret is shown again after adding");
    await item(page, "e2e-bot").getByText("Enabled").waitFor();

    // A test event reaches the receiver signed; the page counts it.
    await sendFollow("Webhook_Follower1");
    await waitFor("the first follow at the receiver", () => hook.received.length === 1, 20_000);
    assert.equal(hook.received[0].type, "notification");
    assert.equal(hook.received[0].subscriptionType, "channel.follow");
    assert.equal(hook.received[0].event.user_name, "Webhook_Follower1");
    assert.equal(hook.badSignatures, 0);
    await waitFor("Delivered 1 on the page", async () => (await fact(page, "e2e-bot", "Delivered")) === 1, 15_000);
    await screenshot(page, "webhooks-delivered");

    // Receiver down: retrying, the backlog grows.
    await hook.stop();
    await sendFollow("Webhook_Follower2");
    await item(page, "e2e-bot").getByText(/^Retrying/).waitFor({ timeout: 20_000 });
    await sendFollow("Webhook_Follower3");
    await waitFor("a backlog of 2 on the page", async () => (await fact(page, "e2e-bot", "Backlog")) === 2, 20_000);
    assert.ok((await fact(page, "e2e-bot", "Failed attempts")) >= 1);
    await item(page, "e2e-bot").getByText(/^Last error/).waitFor();
    await screenshot(page, "webhooks-retrying");

    // Back up: the backlog drains, in order, each once.
    await hook.start();
    await waitFor("the backlog to drain on the page", async () => (await fact(page, "e2e-bot", "Backlog")) === 0, 30_000);
    await item(page, "e2e-bot").getByText("Enabled").waitFor({ timeout: 15_000 });
    assert.deepEqual(hook.received.map((m) => m.event.user_name), ["Webhook_Follower1", "Webhook_Follower2", "Webhook_Follower3"]);
    assert.equal(new Set(hook.received.map((m) => m.id)).size, 3);
    assert.equal(hook.badSignatures, 0);
    assert.equal(await fact(page, "e2e-bot", "Delivered"), 3);
    await screenshot(page, "webhooks-drained");

    // Edit: a second type; the list says so.
    await item(page, "e2e-bot").getByRole("button", { name: "Edit e2e-bot" }).click();
    const edit = page.getByRole("form", { name: "Edit e2e-bot" });
    await edit.getByText(/^Event types \(/).click();
    await edit.getByRole("checkbox", { name: "channel.cheer", exact: true }).check();
    await screenshot(page, "webhooks-edit");
    await edit.getByRole("button", { name: "Save" }).click();
    await item(page, "e2e-bot").getByText("channel.cheer, channel.follow").waitFor();
    const stored = (await api(ctx.relay, "GET", "/api/v1/webhook-targets", ctx.relay.adminToken)).body.targets[0];
    assert.deepEqual(stored.event_types, ["channel.cheer", "channel.follow"]);

    // Pause by hand, resume.
    await item(page, "e2e-bot").getByRole("button", { name: "Pause e2e-bot" }).click();
    await item(page, "e2e-bot").getByText("Paused by hand").waitFor();
    await item(page, "e2e-bot").getByRole("button", { name: "Resume e2e-bot" }).click();
    await item(page, "e2e-bot").getByText("Enabled").waitFor();

    // Delete: asked twice.
    await item(page, "e2e-bot").getByRole("button", { name: "Delete e2e-bot" }).click();
    await item(page, "e2e-bot").getByRole("button", { name: "Cancel" }).waitFor();
    await screenshot(page, "webhooks-delete-confirm");
    await item(page, "e2e-bot").getByRole("button", { name: "Delete e2e-bot" }).click();
    await main.getByText("No webhook targets yet").waitFor();
    assert.equal((await api(ctx.relay, "GET", "/api/v1/webhook-targets", ctx.relay.adminToken)).body.targets.length, 0);
  });
});

test("an overlay token has no Webhooks link", async () => {
  await withPage(ctx, "webhooks-overlay", async (page) => {
    await loginByLink(page, ctx.relay, overlayToken);
    assert.equal(await navLink(page, "Webhooks").count(), 0, "an overlay token has a Webhooks link");
    assert.ok(await navLink(page, "Live").count(), "the overlay's nav is there");
    await screenshot(page, "webhooks-overlay-nav");
  });
});
