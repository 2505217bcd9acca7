// 2. One type of each family: open Test events, change fields in the
// form, send; a bot's websocket receives the event WITH the edited values,
// and the live feed shows it readably.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suite, withPage } from "../lib/suite.js";
import { api, eventClient, screenshot, waitFor } from "../lib/harness.js";
import { feedItem, field, loginByLink, openView, setField } from "../lib/dash.js";

let bot;
const ctx = suite("test-events", {
  setup: async (c) => { bot = await eventClient(c.relay, c.relay.adminToken); },
  teardown: () => bot?.close(),
});

const get = (obj, path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);

/**
 * Each family: the type (TAU and Twitch spelling), the edits as
 * `[label candidates, value, event_data path, value expected on the wire]`,
 * and what the feed must show.
 */
const FAMILIES = [
  {
    family: "follow", tau: "channel-follow", twitch: "channel.follow",
    edits: [[["user name", "user", "follower", "display name"], "E2E_Follower", "user_name", "E2E_Follower"]],
    shows: ["E2E_Follower"],
  },
  {
    family: "subscription gift (tier)", tau: "channel-subscription-gift", twitch: "channel.subscription.gift",
    edits: [
      [["user name", "user", "gifter", "display name"], "E2E_Gifter", "user_name", "E2E_Gifter"],
      [["tier"], "2000", "tier", "2000"],
      [["total", "gifts", "count", "number of gifts", "amount"], "5", "total", 5],
    ],
    shows: ["E2E_Gifter", "Tier 2", /\b5\b/],
  },
  {
    family: "cheer (bits + message)", tau: "channel-cheer", twitch: "channel.cheer",
    edits: [
      [["user name", "user", "cheerer", "display name"], "E2E_Cheerer", "user_name", "E2E_Cheerer"],
      [["bits", "amount"], "100", "bits", 100],
      [["message"], "e2e cheer message", "message", "e2e cheer message"],
    ],
    shows: ["E2E_Cheerer", "100 bits", "e2e cheer message"],
  },
  {
    family: "raid (viewers)", tau: "channel-raid", twitch: "channel.raid",
    edits: [
      [["from broadcaster user name", "from user name", "raider", "from broadcaster", "from", "user name", "user"],
        "E2E_Raider", "from_broadcaster_user_name", "E2E_Raider"],
      [["viewers", "viewer count"], "42", "viewers", 42],
    ],
    shows: ["E2E_Raider", "42 viewers"],
  },
  {
    family: "channel points redemption", tau: "channel-channel_points_custom_reward_redemption-add",
    twitch: "channel.channel_points_custom_reward_redemption.add",
    edits: [
      [["user name", "user", "redeemer", "display name"], "E2E_Redeemer", "user_name", "E2E_Redeemer"],
      [["reward title", "reward", "title"], "E2E Reward", "reward.title", "E2E Reward"],
      [["user input", "input", "message"], "e2e input text", "user_input", "e2e input text"],
    ],
    shows: ["E2E_Redeemer", "E2E Reward", "e2e input text"],
  },
  {
    family: "hype train", tau: "channel-hype_train-begin", twitch: "channel.hype_train.begin",
    edits: [[["level", "hype train level"], "3", "level", 3]],
    shows: [/level\s*3/i],
  },
  {
    family: "poll", tau: "channel-poll-begin", twitch: "channel.poll.begin",
    edits: [[["title", "poll title", "question"], "E2E poll question?", "title", "E2E poll question?"]],
    shows: ["E2E poll question?"],
  },
  {
    family: "chat message", tau: "channel-chat-message", twitch: "channel.chat.message",
    edits: [
      [["chatter user name", "chatter", "user name", "user", "display name"], "E2E_Chatter", "chatter_user_name", "E2E_Chatter"],
      [["message text", "message", "text"], "hello from e2e", "message.text", "hello from e2e"],
    ],
    shows: ["E2E_Chatter", "hello from e2e"],
  },
];

/**
 * Picks the type in the Test events view: a labelled select or list box
 * of types, else a search box plus the type's button/link/option.
 */
async function chooseType(page, { tau, twitch }) {
  const main = page.getByRole("main");
  const picker = main.getByRole("combobox", { name: /event type/i });
  // The view renders after openView returns: on a busy machine, checking
  // at once found no picker yet and fell through to the search path.
  await picker.first().waitFor({ timeout: 10_000 }).catch(() => {});
  if (await picker.count()) {
    // The catalog loads after the view opens: wait for it to fill the picker.
    const options = await waitFor("the event types in the picker", async () => {
      const all = await picker.first().locator("option").evaluateAll((os) => os.map((o) => ({ value: o.value, label: o.textContent })));
      return all.length > 1 ? all : null;
    }, 10_000);
    const match = options.find((o) => o.value === tau || o.value === twitch) ||
      options.find((o) => o.label.includes(twitch) || o.label.includes(tau));
    assert.ok(match, `no option for ${tau} among ${options.length} types`);
    await picker.first().selectOption(match.value);
    return;
  }
  const search = main.getByRole("searchbox");
  if (await search.count()) await search.first().fill(twitch);
  const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const name = new RegExp(`(^|\\W)(${esc(twitch)}|${esc(tau)})(\\W|$)`);
  for (const role of ["button", "link", "tab", "option"]) {
    const target = main.getByRole(role, { name });
    if (await target.count()) { await target.first().click(); return; }
  }
  throw new Error(`could not pick ${tau} in the Test events view (no combobox named "Event type", no control named ${twitch})`);
}

/**
 * Diagnosis only (TAU_E2E_STUB_SAMPLE=1, never in CI): answers the form's
 * `GET /api/v1/twitch-events/{type}/test` (the sample endpoint, not merged
 * yet) from the relay's POST, to check the rest of this test meanwhile.
 */
async function stubSample(page) {
  await page.route(/\/api\/v1\/twitch-events\/[^/]+\/test$/, async (route) => {
    if (route.request().method() !== "GET") return route.continue();
    const type = decodeURIComponent(new URL(route.request().url()).pathname.split("/")[4]);
    const made = await api(ctx.relay, "POST", `/api/v1/twitch-events/${type}/test`, ctx.relay.adminToken);
    await route.fulfill({ status: made.status, json: { event_type: made.body.event_type, event_data: made.body.event_data } });
  });
}

for (const fam of FAMILIES) {
  test(`test event, ${fam.family}: edited fields reach a bot and the feed`, async () => {
    await withPage(ctx, `test-${fam.tau}`, async (page) => {
      if (process.env.TAU_E2E_STUB_SAMPLE) await stubSample(page);
      await loginByLink(page, ctx.relay);
      await openView(page, "Test events");
      await chooseType(page, fam);
      const main = page.getByRole("main");
      for (const [labels, value] of fam.edits) {
        const control = await waitFor(`the ${labels[0]} field of ${fam.tau}`, () => field(main, labels), 5000);
        await setField(control, value);
      }
      const sentAt = bot.events.length;
      await main.getByRole("button", { name: /^send(?!.*\b(generated|as is|again)\b)/i }).first().click();

      // The bot receives it with the edited values (and their JSON types).
      const matches = (e) => e.event_type === fam.tau &&
        fam.edits.every(([, , path, want]) => get(e.event_data, path) === want);
      try {
        await waitFor(`${fam.tau} with the edited values at the bot`, () => bot.events.slice(sentAt).find(matches), 10_000);
      } catch (err) {
        const got = bot.events.slice(sentAt).filter((e) => e.event_type === fam.tau)
          .map((e) => JSON.stringify(Object.fromEntries(fam.edits.map(([, , p]) => [p, get(e.event_data, p)]))));
        err.message += `; received ${fam.tau}: ${got.length ? got.join(", ") : "none"}`;
        throw err;
      }

      // The live feed shows it readably.
      await openView(page, "Live");
      const item = feedItem(page, fam.tau, fam.shows.filter((s) => typeof s === "string").slice(0, 1));
      await item.waitFor({ state: "visible", timeout: 10_000 });
      const text = (await item.innerText()).replace(/\s+/g, " ");
      for (const want of fam.shows) {
        if (want instanceof RegExp) assert.match(text, want, `the feed item does not show ${want}: ${text}`);
        else assert.ok(text.includes(want), `the feed item does not show "${want}": ${text}`);
      }
      assert.doesNotMatch(text, /"[a-z_]+":\s*["{[\d]/, `the feed item is raw JSON: ${text}`);
      await screenshot(page, `feed-${fam.tau}`);
    });
  });
}
