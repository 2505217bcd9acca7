// Processes and browsers for the dashboard suite: a fake Twitch
// (tests/fake-twitch) and a tau-relay wired to it, each a real process on
// loopback; headless Debian Chromium driven by playwright-core.
//
// Binaries come from $TAU_RELAY_BIN / $FAKE_TWITCH_BIN (set by
// .ci/dashboard-tier.sh), else $CARGO_TARGET_DIR/debug/.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";
import WebSocket from "ws";

const require = createRequire(import.meta.url);
const targetDir = process.env.CARGO_TARGET_DIR || join(process.env.HOME, ".cache/tau/target");
export const RELAY_BIN = process.env.TAU_RELAY_BIN || join(targetDir, "debug/tau-relay");
export const FAKE_BIN = process.env.FAKE_TWITCH_BIN || join(targetDir, "debug/fake-twitch");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const ARTIFACTS = process.env.TAU_DASHBOARD_ARTIFACTS || join(targetDir, "artifacts/dashboard");
/// Where each run keeps its logs (kept when a test fails; printed then).
export const LOGS = process.env.TAU_DASHBOARD_LOGS || mkdtempSync(join(tmpdir(), "tau-dash-logs."));

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 360, height: 740 };

/// The fake's only user (tau_fake_twitch::FakeTwitch::BROADCASTER_LOGIN) and app.
export const BROADCASTER = "cooler_user";
export const CLIENT_ID = "faketauclientid000000000000000";
export const CLIENT_SECRET = "faketauclientsecret00000000000";

/** Everything started by this process, killed by stopAll (also on exit). */
const children = new Set();
function killAll() {
  for (const child of children) {
    try { child.kill("SIGKILL"); } catch { /* gone */ }
  }
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { killAll(); process.exit(130); });

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function randomToken(bytes = 24) {
  return randomBytes(bytes).toString("hex");
}

/** Polls `fn` until it returns a truthy value; throws `what` after `ms`. */
export async function waitFor(what, fn, ms = 10_000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    }
    await sleep(every);
  }
}

function stopChild(child, signal = "SIGTERM", graceMs = 8000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => { clearTimeout(timer); children.delete(child); resolve(); });
    child.kill(signal);
  });
}

/** A fake Twitch process: `{twitch, control, post(path, body), get(path), stop()}`. */
export async function startFake(name = "fake") {
  const log = openSync(join(LOGS, `${name}-twitch.log`), "a");
  const child = spawn(FAKE_BIN, ["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", log],
  });
  children.add(child);
  let out = "";
  const urls = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fake-twitch did not start: ${out}`)), 15_000);
    child.on("exit", (code) => reject(new Error(`fake-twitch exited (${code}): ${out}`)));
    child.stdout.on("data", (d) => {
      out += d;
      const twitch = /^twitch (\S+)$/m.exec(out);
      const control = /^control (\S+)$/m.exec(out);
      if (twitch && control) { clearTimeout(timer); resolve({ twitch: twitch[1], control: control[1] }); }
    });
  });
  const call = async (method, path, body) => {
    const res = await fetch(urls.control + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  return {
    ...urls,
    get: (path) => call("GET", path),
    post: (path, body = {}) => call("POST", path, body),
    stop: () => stopChild(child),
  };
}

/**
 * A tau-relay wired to `fake` (websocket transport: OAuth + EventSub session
 * at the fake), SQLite in a temp dir, on a free loopback port.
 * `unset` names variables of the default environment to leave out (e.g.
 * TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET: a relay set up from the
 * dashboard). `{base, port, adminToken, stop(), kill(), restart(), log()}`.
 */
export async function startRelay(fake, { name = "relay", env = {}, unset = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "tau-dash-relay."));
  const port = await freePort();
  const adminToken = randomToken();
  const base = `http://127.0.0.1:${port}`;
  const logPath = join(LOGS, `${name}.log`);
  const fullEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    RUST_LOG: process.env.TAU_RELAY_LOG || "info",
    TAU_LISTEN: `127.0.0.1:${port}`,
    TAU_DATABASE_URL: `sqlite://${dir}/tau.db`,
    TAU_API_TOKEN: adminToken,
    TAU_TRANSPORT: "websocket",
    // Reconnect to Twitch quickly after a simulated outage.
    TAU_TIMINGS: "session_backoff_max=2s",
    TWITCH_CLIENT_ID: CLIENT_ID,
    TWITCH_CLIENT_SECRET: CLIENT_SECRET,
    TWITCH_BROADCASTER: BROADCASTER,
    TWITCH_API_URL: `${fake.twitch}/helix`,
    TWITCH_AUTH_URL: `${fake.twitch}/oauth2`,
    TWITCH_EVENTSUB_WS_URL: `${fake.twitch.replace(/^http/, "ws")}/ws`,
    ...env,
  };
  for (const variable of unset) delete fullEnv[variable];
  let child = null;
  const launch = async () => {
    const log = openSync(logPath, "a");
    child = spawn(RELAY_BIN, [], { cwd: dir, env: fullEnv, stdio: ["ignore", log, log] });
    children.add(child);
    const me = child;
    await waitFor(`${name} /readyz on ${base}`, async () => {
      if (me.exitCode !== null) throw new Error(`relay exited with ${me.exitCode}; log ${logPath}`);
      const res = await fetch(`${base}/readyz`).catch(() => null);
      return res && res.ok;
    }, 30_000, 100);
  };
  await launch();
  return {
    base,
    port,
    adminToken,
    logPath,
    /** Graceful stop (SIGTERM). */
    stop: () => stopChild(child),
    /** The relay dies (SIGKILL): no close frames to anyone. */
    kill: () => stopChild(child, "SIGKILL"),
    /** Same port, same database, same secret key file. */
    restart: launch,
    log: () => readFileSync(logPath, "utf8"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** REST as `token`: `{status, body}`. */
export async function api(relay, method, path, token, body) {
  const res = await fetch(relay.base + path, {
    method,
    headers: {
      Authorization: `Token ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: parsed };
}

/**
 * A bot's websocket on /ws/twitch-events/ authenticated with `token`.
 * `{events, closed, waitForEvent(pred, ms), waitForClose(ms), close()}`;
 * `closed` is `{code, reason}` once the socket ends; `errors` holds
 * `{"error"}` frames.
 */
export async function eventClient(relay, token) {
  const url = relay.base.replace(/^http/, "ws") + "/ws/twitch-events/";
  const ws = new WebSocket(url);
  const client = { events: [], errors: [], closed: null, ws };
  ws.on("message", (data) => {
    let msg;
    try { msg = JSON.parse(String(data)); } catch { return; }
    if (msg && msg.error) client.errors.push(msg);
    else if (msg && msg.event_type) client.events.push(msg);
  });
  ws.on("close", (code, reason) => { client.closed = { code, reason: String(reason) }; });
  ws.on("error", () => {});
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ token }));
  client.waitForEvent = (what, pred, ms = 10_000) =>
    waitFor(what, () => client.events.find(pred), ms);
  client.waitForClose = (ms = 10_000) =>
    waitFor("the socket to close", () => client.closed || (client.errors.length && client.errors[0]), ms);
  client.close = () => ws.close();
  // Give the handshake a moment: a bad token closes at once.
  await sleep(300);
  if (client.closed) throw new Error(`event socket closed at handshake: ${JSON.stringify(client.closed)}`);
  return client;
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/**
 * A page with console errors and uncaught exceptions collected in
 * `page.problems` (see `assertNoConsoleErrors`). The app's CSP stays on.
 */
export async function newPage(browser, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, reducedMotion: "reduce" });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.problems = [];
  page.allowedProblems = [];
  // Diagnosis only (never set in CI): console errors to tolerate, e.g. the
  // 404s of endpoints not merged yet, to see what else fails.
  if (process.env.TAU_E2E_ALLOW_CONSOLE) page.allowedProblems.push(new RegExp(process.env.TAU_E2E_ALLOW_CONSOLE));
  page.on("console", (msg) => {
    if (msg.type() === "error") page.problems.push(`console.error: ${msg.text()} (${msg.location().url || "?"})`);
  });
  page.on("pageerror", (err) => page.problems.push(`uncaught: ${err.stack || err.message}`));
  page.on("crash", () => page.problems.push("page crashed"));
  return page;
}

/**
 * Fails when the page logged a console error or threw, except entries
 * matching one of `page.allowedProblems` (regexes for requests that are
 * expected to fail, e.g. a 400 OAuth outcome page, or the dashboard's own
 * reconnect attempts while the relay is down).
 */
export function problemsOf(page) {
  return page.problems.filter((p) => !page.allowedProblems.some((re) => re.test(p)));
}

export function allowProblems(page, ...regexes) {
  page.allowedProblems.push(...regexes);
}

export function ensureDir(dir) {
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function screenshot(page, name) {
  ensureDir(ARTIFACTS);
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core in the page (through page.evaluate, which the page's CSP
 * does not govern: no script tag, no bypassCSP) and returns the serious
 * and critical violations, each as one readable line.
 */
export async function axeSerious(page) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary?.split("\n").slice(1).join("; ")}`),
    }));
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id} (${v.help}): ${v.nodes.join(" | ")}`);
}

/** Horizontal overflow: `{scrollWidth, innerWidth, widest}` (widest: offending elements). */
export async function overflow(page) {
  return page.evaluate(() => {
    const scrollWidth = document.scrollingElement.scrollWidth;
    const innerWidth = window.innerWidth;
    const widest = [];
    if (scrollWidth > innerWidth) {
      for (const el of document.querySelectorAll("body *")) {
        const r = el.getBoundingClientRect();
        if (r.right > innerWidth + 1 && r.width > 0) {
          const id = el.id ? `#${el.id}` : "";
          const cls = typeof el.className === "string" && el.className ? `.${el.className.split(/\s+/).join(".")}` : "";
          widest.push(`${el.tagName.toLowerCase()}${id}${cls} right=${Math.round(r.right)}`);
        }
        if (widest.length >= 8) break;
      }
    }
    return { scrollWidth, innerWidth, widest };
  });
}

export function writeJson(path, value) {
  writeFileSync(path, JSON.stringify(value, null, 2));
}

/**
 * Completes Twitch's OAuth for the relay without a browser (the views
 * suite needs a connected channel, not the clicks): the authorize URL with
 * its state cookie, the fake's redirect, the relay's callback.
 */
export async function connectTwitchViaApi(relay, fake) {
  const start = await fetch(relay.base + "/api/v1/twitch/authorize", {
    method: "POST", headers: { Authorization: `Token ${relay.adminToken}` },
  });
  if (!start.ok) throw new Error(`POST /api/v1/twitch/authorize: ${start.status} ${await start.text()}`);
  const cookie = start.headers.get("set-cookie").split(";")[0];
  const { url } = await start.json();
  const consent = await fetch(url, { redirect: "manual" });
  const back = consent.headers.get("location");
  if (!back) throw new Error(`the fake's authorize did not redirect: ${consent.status}`);
  const done = await fetch(back, { headers: { Cookie: cookie }, redirect: "manual" });
  if (done.status !== 200) throw new Error(`callback answered ${done.status}: ${await done.text()}`);
  return waitForTwitchSession(fake);
}

/** The fake's newest connected EventSub session holding subscriptions. */
export async function waitForTwitchSession(fake, ms = 30_000) {
  return waitFor("an EventSub session with subscriptions at the fake", async () => {
    const { body } = await fake.get("/sessions");
    return body.slice().reverse().find((s) => s.connected && s.subscription_ids.length);
  }, ms, 200);
}

/**
 * A real Twitch notification through the fake's EventSub session (stored
 * by the relay, unlike test events): the relay's generated payload for
 * `tauType` at `version` (the subscribed one), with `edit(event_data)` applied. Returns the event_data sent.
 */
export async function sendTwitchEvent(relay, fake, tauType, version, edit = () => {}) {
  // A throwaway test event gives a realistic payload and the version.
  const sample = await api(relay, "POST", `/api/v1/twitch-events/${tauType}/test`, relay.adminToken);
  if (sample.status !== 200) throw new Error(`sample ${tauType}: ${sample.status} ${JSON.stringify(sample.body)}`);
  const event = sample.body.event_data;
  edit(event);
  const type = tauType.replace(/-/g, ".");
  const sent = await fake.post("/notify", { type, version, event });
  if (sent.status !== 200) throw new Error(`fake /notify ${type}: ${sent.status} ${JSON.stringify(sent.body)}`);
  return event;
}

/**
 * Adds a chat bot without a browser: the fake's consent screen is told to
 * authorize `{login, id}` (POST /authorize-as), then the relay's bot
 * consent link, the fake's redirect and the relay's callback (with any
 * state cookie the link set) run as in connectTwitchViaApi. Returns the
 * relay's ChatBot once listed.
 */
export async function addBotViaApi(relay, fake, { login, id }) {
  const as = await fake.post("/authorize-as", { login, id });
  if (as.status >= 300) throw new Error(`fake POST /authorize-as: ${as.status} ${JSON.stringify(as.body)}`);
  try {
    const start = await fetch(relay.base + "/api/v1/chat-bots/twitch-auth-link", {
      headers: { Authorization: `Token ${relay.adminToken}` },
    });
    if (!start.ok) throw new Error(`GET /api/v1/chat-bots/twitch-auth-link: ${start.status} ${await start.text()}`);
    const cookie = (start.headers.get("set-cookie") || "").split(";")[0];
    const { url } = await start.json();
    const consent = await fetch(url, { redirect: "manual" });
    const back = consent.headers.get("location");
    if (!back) throw new Error(`the fake's authorize did not redirect: ${consent.status}`);
    const done = await fetch(back, { headers: cookie ? { Cookie: cookie } : {}, redirect: "manual" });
    if (done.status !== 200) throw new Error(`bot callback answered ${done.status}: ${await done.text()}`);
  } finally {
    await fake.post("/authorize-as", { reset: true });
  }
  return waitFor(`chat bot ${login} listed`, async () => {
    const { status, body } = await api(relay, "GET", "/api/v1/chat-bots", relay.adminToken);
    return status === 200 && body.results.find((b) => b.user_login === login);
  }, 10_000, 200);
}
