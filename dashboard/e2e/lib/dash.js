// The dashboard as a user sees it: only roles, labels and visible text
// from the UI contract (hash routes, nav link names, the "Live events"
// log, the header lights), never CSS classes.
import assert from "node:assert/strict";
import { waitFor } from "./harness.js";

export const VIEWS = [
  { hash: "#/live", nav: "Live" },
  { hash: "#/chat", nav: "Chat" },
  { hash: "#/test", nav: "Test events" },
  { hash: "#/history", nav: "History" },
  { hash: "#/streamers", nav: "Streamers" },
  { hash: "#/bots", nav: "Bots" },
  { hash: "#/status", nav: "Status" },
  { hash: "#/setup", nav: "Setup" },
  { hash: "#/tokens", nav: "Tokens" },
  { hash: "#/webhooks", nav: "Webhooks" },
  { hash: "#/subscriptions", nav: "Subscriptions" },
];

/** Logs in with a login link and waits for the dashboard (nav) to show. */
export async function loginByLink(page, relay, token = relay.adminToken, hash = "") {
  await page.goto(`${relay.base}/${hash}#token=${encodeURIComponent(token)}`);
  // Attached, not visible: on a phone the nav sits behind its menu button.
  await navLink(page, "Live").waitFor({ state: "attached", timeout: 10_000 });
  if (hash) await page.evaluate((h) => { location.hash = h; }, hash);
}

/** The nav, also while hidden behind a phone's menu button. */
export function nav(page) {
  return page.getByRole("navigation", { includeHidden: true });
}

export function navLink(page, name) {
  return nav(page).getByRole("link", { name, exact: true, includeHidden: true });
}

/** Opens a view through its nav link (as a user does) and checks the route. */
export async function openView(page, view) {
  const v = typeof view === "string" ? VIEWS.find((x) => x.nav === view || x.hash === view) : view;
  // Already there (e.g. #/live right after login): no click, so a phone's
  // menu stays closed.
  if ((await page.evaluate(() => location.hash)).startsWith(v.hash)) return v;
  const link = navLink(page, v.nav);
  // On a phone the nav may sit behind a menu button.
  if (!(await link.isVisible())) {
    const menu = page.getByRole("button", { name: /menu|navigation/i });
    if (await menu.count()) await menu.first().click();
  }
  await link.click();
  await waitFor(`the address to end in ${v.hash}`, async () => (await page.evaluate(() => location.hash)).startsWith(v.hash), 5000);
  return v;
}

export function relayLight(page) {
  return page.getByRole("status", { name: "Relay connection" });
}

export function twitchLight(page) {
  return page.getByRole("status", { name: "Twitch connection" });
}

/** A light's words say "connected" (and nothing that means it is not). */
export function saysConnected(text) {
  return /\b(connected|online)\b/i.test(text) &&
    !/\b(disconnected|not connected|reconnecting|connecting|offline|down|error|failed|lost)\b/i.test(text);
}

export function liveLog(page) {
  return page.getByRole("log", { name: "Live events" });
}

/** The live feed's item of `tauType` whose text contains every string in `texts`. */
export function feedItem(page, tauType, texts = []) {
  let item = liveLog(page).locator(`article[data-event-type="${tauType}"]`);
  for (const t of texts) item = item.filter({ hasText: t });
  return item.first();
}

/**
 * Records every distinct text of a light (MutationObserver in the page),
 * so a brief red between two greens is not missed. Read with lightHistory.
 */
export async function recordLight(page, label) {
  await page.evaluate((label) => {
    window.__tauLights = window.__tauLights || {};
    const seen = (window.__tauLights[label] = []);
    const read = () => {
      const el = [...document.querySelectorAll('[role="status"]')].find((e) => e.getAttribute("aria-label") === label);
      const text = el ? el.textContent.trim().replace(/\s+/g, " ") : "(missing)";
      if (seen[seen.length - 1] !== text) seen.push(text);
    };
    read();
    new MutationObserver(read).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  }, label);
}

export function lightHistory(page, label) {
  return page.evaluate((label) => (window.__tauLights || {})[label] || [], label);
}

/** The labels of every form control in `scope` (accessible name approximation). */
export async function controlLabels(scope) {
  return scope.locator("input, select, textarea").evaluateAll((els) =>
    els.map((el) => {
      const byId = (ids) => ids.split(/\s+/).map((id) => document.getElementById(id)?.textContent || "").join(" ");
      const name = el.getAttribute("aria-label") ||
        (el.getAttribute("aria-labelledby") && byId(el.getAttribute("aria-labelledby"))) ||
        (el.labels && el.labels[0] && el.labels[0].textContent) || "";
      return name.trim().replace(/\s+/g, " ");
    }));
}

const norm = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();

/**
 * The control in `scope` whose label, normalized (lowercase, `_`/`.`/
 * punctuation as spaces), equals one of `names` (e.g. "user name" matches
 * a label "User name" or "user_name"), else whose label starts with one.
 * Fails listing the labels that exist.
 */
export async function field(scope, names) {
  const labels = await controlLabels(scope);
  let index = -1;
  for (const w of names.map(norm)) {
    index = labels.findIndex((l) => norm(l) === w);
    if (index >= 0) break;
  }
  for (const w of names.map(norm)) {
    if (index >= 0) break;
    index = labels.findIndex((l) => norm(l).startsWith(w + " "));
  }
  if (index < 0) {
    throw new Error(`no field labelled ${names.map((n) => JSON.stringify(n)).join(" or ")}; labels: ${JSON.stringify(labels)}`);
  }
  const control = scope.locator("input, select, textarea").nth(index);
  // Behind a closed disclosure ("More fields"): open it as a user would.
  if (!(await control.isVisible())) {
    const summary = control.locator("xpath=ancestor::details[1]/summary");
    if (await summary.count()) await summary.click();
  }
  return control;
}

/** Sets a control's value as a user would (select by label or value). */
export async function setField(control, value) {
  const tag = await control.evaluate((el) => el.tagName.toLowerCase());
  if (tag === "select") {
    const options = await control.locator("option").evaluateAll((os) => os.map((o) => ({ value: o.value, label: o.textContent.trim() })));
    const v = String(value);
    const match = options.find((o) => o.value === v) ||
      options.find((o) => norm(o.label) === norm(v)) ||
      options.find((o) => norm(o.label).includes(norm(v)));
    if (!match) throw new Error(`no option ${v} in ${JSON.stringify(options)}`);
    await control.selectOption(match.value);
  } else {
    await control.fill(String(value));
  }
}

/** Clicks Setup's "Connect Twitch" and follows the consent round trip to the outcome page. */
export async function connectTwitchFromSetup(page, relay) {
  await openView(page, "Setup");
  const connect = page.getByRole("main").getByRole("link", { name: /connect twitch|reconnect twitch|authori[sz]e/i })
    .or(page.getByRole("main").getByRole("button", { name: /connect twitch|reconnect twitch|authori[sz]e/i }));
  await connect.first().waitFor({ state: "visible", timeout: 10_000 });
  const outcome = page.waitForResponse((r) => new URL(r.url()).pathname.startsWith("/twitch-callback"), { timeout: 20_000 });
  await connect.first().click();
  const response = await outcome;
  await page.waitForURL((u) => u.pathname.startsWith("/twitch-callback"), { timeout: 10_000 });
  assert.ok(page.url().startsWith(relay.base), `the outcome page is not on the relay: ${page.url()}`);
  return response;
}


export function chatLog(page) {
  return page.getByRole("log", { name: "Chat messages" });
}

/** The chat log's line (list item) containing every string in `texts`. */
export function chatLine(page, texts = []) {
  let item = chatLog(page).getByRole("listitem");
  for (const t of texts) item = item.filter({ hasText: t });
  return item.first();
}
