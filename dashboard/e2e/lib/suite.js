// Per-file fixtures: one fake Twitch, one relay, one browser, all stopped
// after the file's tests (even when they fail).
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ARTIFACTS, DESKTOP, LOGS, ensureDir, launchBrowser, newPage, problemsOf, startFake, startRelay,
} from "./harness.js";

/**
 * `ctx.fake`, `ctx.relay`, `ctx.browser` are set before the first test
 * (`relayEnv` adds to the relay's environment, `relayUnset` leaves
 * variables out);
 * then `setup(ctx)` runs (in the same hook: root hooks may not run in
 * order). `teardown(ctx)` runs first after the tests.
 */
export function suite(name, { relayEnv = {}, relayUnset = [], setup, teardown } = {}) {
  const ctx = { name };
  before(async () => {
    ctx.fake = await startFake(name);
    ctx.relay = await startRelay(ctx.fake, { name: `${name}-relay`, env: relayEnv, unset: relayUnset });
    ctx.browser = await launchBrowser();
    if (setup) await setup(ctx);
  });
  after(async () => {
    if (teardown) await Promise.resolve(teardown(ctx)).catch(() => {});
    await ctx.browser?.close().catch(() => {});
    await ctx.relay?.stop();
    await ctx.fake?.stop();
    ctx.relay?.cleanup();
  });
  return ctx;
}

/**
 * Runs `fn(page)` in a fresh page, then fails on console errors or
 * uncaught exceptions (see harness.problemsOf). On any failure a
 * screenshot goes to the artifacts as FAILED-<label>.png and the relay log
 * path is named.
 */
export async function withPage(ctx, label, fn, viewport = DESKTOP) {
  const page = await newPage(ctx.browser, viewport);
  try {
    await fn(page);
    assert.deepEqual(problemsOf(page), [], "the page logged errors (console.error or uncaught)");
  } catch (err) {
    ensureDir(ARTIFACTS);
    await page.screenshot({ path: join(ARTIFACTS, `FAILED-${label}.png`), fullPage: true }).catch(() => {});
    const problems = problemsOf(page);
    err.message += `\n  page: ${page.url()}` +
      (problems.length ? `\n  page problems:\n    ${problems.join("\n    ")}` : "") +
      `\n  logs: ${LOGS} (relay: ${ctx.relay?.logPath})`;
    throw err;
  } finally {
    await page.context().close().catch(() => {});
  }
}
