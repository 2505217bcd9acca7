#!/usr/bin/env python3
"""Regenerate eventsub/src/data/{catalog.json,examples.json} from Twitch's data.

Usage (Python 3.11+, stdlib only):

    python3 eventsub/src/data/gen_catalog.py \
        [--examples  /work/shared/reference/data/eventsub-examples.json] \
        [--types-html /work/shared/reference/data/twitch-docs-eventsub-subscription-types.html] \
        [--reference-html /work/shared/reference/data/twitch-docs-eventsub-reference.html] \
        [--out-dir eventsub/src/data] [--check]

What it does
------------
* examples.json = eventsub-examples.json re-serialized compactly
  (json.dumps(obj, separators=(',', ':')), keys in original order, default
  ensure_ascii=True exactly like the source file, which is pure ASCII with
  \\uXXXX escapes).
* catalog.json = one entry per "type@version" key of eventsub-examples.json,
  sorted by (type, version), with
    name        - "Subscription Type" column of the summary table on the
                  subscription-types page, with a trailing " V<n>" dropped
                  (the version is its own field);
    description - "Description" column of that summary table, verbatim
                  (whitespace collapsed; 1-2 sentences);
    scopes      - parsed from the type's "Authorization" section: for
                  "X or Y" the least-privileged (":read:") alternative, all
                  groups when "all of the following" are required, nothing
                  for clauses that only apply to app access tokens
                  ("If app access token used ...", "If you use webhooks ...",
                  "If you have ...").  TAU's default transport is WebSocket with
                  a user token, so the chat types get just user:read:chat;
    condition   - condition field names from the type's "Request Body" table
                  (inline indented rows) or, when that table links to the
                  reference page, from the "... Condition" table there;
                  required and optional fields alike, in Twitch's order;
    default     - membership in DEFAULT_SET below.

HAND-CURATED VALUES: SCOPE_OVERRIDES, NAME_OVERRIDES, DESCRIPTION_OVERRIDES and
CONDITION_OVERRIDES below are the only hand-maintained data.  Today only
CONDITION_OVERRIDES has an entry (channel.ad_break.begin, a docs typo); every
scope list, name and description is parsed from the docs.  EXPECTED_SCOPES is
only a cross-check against /work/shared/reference/twitch-eventsub.md.  --check
verifies the generated catalog (80 entries, names/descriptions, condition vs
the example payloads, expected scopes) and exits non-zero on a failure.
"""
from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path

DATA = Path("/work/shared/reference/data")
HERE = Path(__file__).resolve().parent

# The "streamer bot" default set (type@version).
DEFAULT_SET = {
    "channel.follow@2",
    "channel.subscribe@1",
    "channel.subscription.gift@1",
    "channel.subscription.message@1",
    "channel.cheer@1",
    "channel.raid@1",
    "channel.channel_points_custom_reward_redemption.add@1",
    "channel.hype_train.begin@2",
    "channel.hype_train.progress@2",
    "channel.hype_train.end@2",
    "channel.poll.begin@1",
    "channel.poll.progress@1",
    "channel.poll.end@1",
    "channel.prediction.begin@1",
    "channel.prediction.progress@1",
    "channel.prediction.lock@1",
    "channel.prediction.end@1",
    "channel.goal.begin@1",
    "channel.goal.progress@1",
    "channel.goal.end@1",
    "channel.shoutout.create@1",
    "channel.shoutout.receive@1",
    "channel.ad_break.begin@1",
    "stream.online@1",
    "stream.offline@1",
    "channel.update@2",
}

# Hand-curated overrides (key "type@version" -> value).  Empty today; put a
# value here if a future docs page cannot be parsed or the parse is wrong.
SCOPE_OVERRIDES: dict[str, list[str]] = {}
NAME_OVERRIDES: dict[str, str] = {}
# channel.ad_break.begin: the reference page's "Channel Ad Break Begin
# Condition" table says `broadcaster_id`, but the same docs' request example
# and notification example (and the real API, and eventsub-examples.json)
# use `broadcaster_user_id`.  A docs typo; the docs' own example wins.
CONDITION_OVERRIDES: dict[str, list[str]] = {
    "channel.ad_break.begin@1": ["broadcaster_user_id"],
}
DESCRIPTION_OVERRIDES: dict[str, str] = {}

# Cross-check only: scopes of bot-relevant types as summarised in
# /work/shared/reference/twitch-eventsub.md (read alternative chosen).
EXPECTED_SCOPES: dict[str, list[str]] = {
    "channel.follow@2": ["moderator:read:followers"],
    "channel.subscribe@1": ["channel:read:subscriptions"],
    "channel.subscription.gift@1": ["channel:read:subscriptions"],
    "channel.subscription.message@1": ["channel:read:subscriptions"],
    "channel.subscription.end@1": ["channel:read:subscriptions"],
    "channel.cheer@1": ["bits:read"],
    "channel.bits.use@1": ["bits:read"],
    "channel.raid@1": [],
    "channel.channel_points_custom_reward_redemption.add@1": ["channel:read:redemptions"],
    "channel.channel_points_custom_reward_redemption.update@1": ["channel:read:redemptions"],
    "channel.channel_points_automatic_reward_redemption.add@2": ["channel:read:redemptions"],
    "channel.hype_train.begin@2": ["channel:read:hype_train"],
    "channel.hype_train.progress@2": ["channel:read:hype_train"],
    "channel.hype_train.end@2": ["channel:read:hype_train"],
    "channel.poll.begin@1": ["channel:read:polls"],
    "channel.poll.progress@1": ["channel:read:polls"],
    "channel.poll.end@1": ["channel:read:polls"],
    "channel.prediction.begin@1": ["channel:read:predictions"],
    "channel.prediction.progress@1": ["channel:read:predictions"],
    "channel.prediction.lock@1": ["channel:read:predictions"],
    "channel.prediction.end@1": ["channel:read:predictions"],
    "channel.goal.begin@1": ["channel:read:goals"],
    "channel.goal.progress@1": ["channel:read:goals"],
    "channel.goal.end@1": ["channel:read:goals"],
    "channel.shield_mode.begin@1": ["moderator:read:shield_mode"],
    "channel.shield_mode.end@1": ["moderator:read:shield_mode"],
    "channel.shoutout.create@1": ["moderator:read:shoutouts"],
    "channel.shoutout.receive@1": ["moderator:read:shoutouts"],
    "channel.ad_break.begin@1": ["channel:read:ads"],
    "stream.online@1": [],
    "stream.offline@1": [],
    "channel.update@2": [],
    "channel.chat.message@1": ["user:read:chat"],
    "channel.chat.notification@1": ["user:read:chat"],
    "channel.ban@1": ["channel:moderate"],
    "channel.unban@1": ["channel:moderate"],
    "channel.moderator.add@1": ["moderation:read"],
    "channel.moderator.remove@1": ["moderation:read"],
    "channel.vip.add@1": ["channel:read:vips"],
    "channel.vip.remove@1": ["channel:read:vips"],
}

TAG = re.compile(r"<[^>]+>")


def text(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(TAG.sub("", fragment))).strip()


def version_key(v: str):
    return (0, int(v), "") if v.isdigit() else (1, 0, v)


# --------------------------------------------------------------------------
# Docs parsing
# --------------------------------------------------------------------------

def summary_rows(types_html: str) -> list[dict]:
    """Rows of the summary table at the top of the subscription-types page."""
    start = types_html.index('id="subscription-types"')
    table = types_html[start:types_html.index("</table>", start)]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        tds = re.findall(r"<td>(.*?)</td>", row, re.S)
        m = re.search(r'href="#([^"]+)"', tds[0])
        rows.append({
            "anchor": m.group(1),
            "title": text(re.sub(r"<span.*?</span>", "", tds[0])),
            "type": text(tds[1]),
            "version": text(tds[2]),
            "description": text(tds[3]),
        })
    return rows


def sections(types_html: str, rows: list[dict]) -> dict[str, str]:
    """HTML of each type's section: from its heading to the next type heading."""
    pos = {}
    for r in rows:
        m = re.search(r'<h3 id="%s">' % re.escape(r["anchor"]), types_html)
        if not m:
            raise SystemExit(f"no section heading for {r['anchor']}")
        pos[r["anchor"]] = m.start()
    ordered = sorted(pos.values())
    out = {}
    for anchor, p in pos.items():
        later = [q for q in ordered if q > p]
        out[anchor] = types_html[p:later[0] if later else len(types_html)]
    return out


def authorization(section: str) -> str:
    m = re.search(r'Authorization</h3>(.*?)<h3', section, re.S)
    if not m:
        raise ValueError("no Authorization heading")
    return m.group(1)


SCOPE_TOKEN = re.compile(r"<(code|strong)[^>]*>\s*([a-z_]+(?::[a-z_]+)+)\s*</\1>")
CONDITIONAL = re.compile(r"\b(If app access token|If you use|If you have)\b")


def pick(alternatives: list[str]) -> str:
    """Least-privileged alternative: the first ':read:' one, else the first."""
    for s in alternatives:
        if ":read:" in s or s.endswith(":read"):
            return s
    return alternatives[0]


def parse_scopes(auth_html: str) -> list[str]:
    if "all of the following" in auth_html:
        groups = re.findall(r"<li>(.*?)</li>", auth_html, re.S)
    else:
        first_p = re.search(r"<p>(.*?)</p>", auth_html, re.S).group(1)
        m = CONDITIONAL.search(first_p)
        groups = [first_p[:m.start()] if m else first_p]
    scopes = []
    for g in groups:
        alts = [t[1] for t in SCOPE_TOKEN.findall(g)]
        if alts:
            s = pick(alts)
            if s not in scopes:
                scopes.append(s)
    return scopes


def table_after(doc: str, pos: int) -> str:
    start = doc.index("<table>", pos)
    return doc[start:doc.index("</table>", start)]


def first_cells(table: str) -> list[tuple[str, str]]:
    """(raw first cell, raw second..last cells joined) for each body row."""
    out = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        tds = re.findall(r"<td>(.*?)</td>", row, re.S)
        if tds:
            out.append((tds[0], " ".join(tds[1:])))
    return out


def reference_condition(reference_html: str, anchor: str) -> list[str]:
    m = re.search(r'<h\d id="%s">' % re.escape(anchor), reference_html)
    if not m:
        raise ValueError(f"reference page has no #{anchor}")
    return [text(c) for c, _ in first_cells(table_after(reference_html, m.start()))]


def parse_condition(section: str, reference_html: str) -> tuple[list[str], str]:
    m = re.search(r'Request Body</h3>', section)
    if not m:
        raise ValueError("no Request Body heading")
    rows = first_cells(table_after(section, m.end()))
    names = [text(c) for c, _ in rows]
    i = names.index("condition")
    inline = []
    for cell, _ in rows[i + 1:]:
        raw = html.unescape(TAG.sub("", cell))
        if not re.match(r"^\s", raw):          # indented rows are sub-fields
            break
        inline.append(text(cell))
    if inline:
        return inline, "inline request-body table"
    link = re.search(r'eventsub-reference/?#([^"]+-condition)"', rows[i][1])
    if not link:
        raise ValueError("condition neither inline nor linked")
    return reference_condition(reference_html, link.group(1)), "reference #" + link.group(1)


# --------------------------------------------------------------------------

def build(examples: dict, types_html: str, reference_html: str) -> tuple[list[dict], list[str]]:
    rows = summary_rows(types_html)
    secs = sections(types_html, rows)
    by_key = {f"{r['type']}@{r['version']}": r for r in rows}
    notes = []
    catalog = []
    keys = sorted(examples, key=lambda k: (k.split("@")[0], version_key(k.split("@")[1])))
    for key in keys:
        typ, ver = key.split("@")
        row = by_key.get(key)
        if row is None:
            raise SystemExit(f"{key}: not in the docs summary table")
        sec = secs[row["anchor"]]
        name = NAME_OVERRIDES.get(key, re.sub(r"\s+V\d+$", "", row["title"]))
        desc = DESCRIPTION_OVERRIDES.get(key, row["description"])
        scopes = SCOPE_OVERRIDES.get(key) or parse_scopes(authorization(sec))
        cond, src = parse_condition(sec, reference_html)
        if key in CONDITION_OVERRIDES:
            notes.append(f"{key}: docs table says {cond} ({src}); overridden to "
                         f"{CONDITION_OVERRIDES[key]} (hand-curated)")
            cond, src = CONDITION_OVERRIDES[key], "CONDITION_OVERRIDES"
        ex_keys = set()
        for item in examples[key]:
            ex_keys |= set(item["subscription"]["condition"])
        if set(cond) != ex_keys:
            notes.append(f"{key}: docs condition {cond} vs example keys {sorted(ex_keys)} "
                         f"({src}); kept docs")
        catalog.append({
            "type": typ,
            "version": ver,
            "name": name,
            "description": desc,
            "scopes": scopes,
            "condition": cond,
            "default": key in DEFAULT_SET,
        })
    return catalog, notes


def check(catalog: list[dict], examples: dict, compact: str) -> list[str]:
    errs = []
    if len(catalog) != len(examples) or len(catalog) != 80:
        errs.append(f"{len(catalog)} catalog entries, {len(examples)} example keys (want 80)")
    keys = [f"{e['type']}@{e['version']}" for e in catalog]
    if set(keys) != set(examples) or len(set(keys)) != len(keys):
        errs.append("catalog keys differ from example keys")
    for e in catalog:
        k = f"{e['type']}@{e['version']}"
        if list(e) != ["type", "version", "name", "description", "scopes", "condition", "default"]:
            errs.append(f"{k}: field order {list(e)}")
        for f in ("name", "description"):
            if not isinstance(e[f], str) or not e[f].strip():
                errs.append(f"{k}: empty {f}")
        if not e["condition"] or not all(isinstance(c, str) and c for c in e["condition"]):
            errs.append(f"{k}: bad condition {e['condition']}")
        if not all(re.fullmatch(r"[a-z_]+(:[a-z_]+)+", s) for s in e["scopes"]):
            errs.append(f"{k}: bad scope {e['scopes']}")
        if k in EXPECTED_SCOPES and e["scopes"] != EXPECTED_SCOPES[k]:
            errs.append(f"{k}: scopes {e['scopes']} != expected {EXPECTED_SCOPES[k]}")
    if {k for k in keys if any(e["default"] for e in catalog
                               if f"{e['type']}@{e['version']}" == k)} != DEFAULT_SET:
        errs.append("default set mismatch")
    if json.loads(compact) != examples:
        errs.append("examples.json does not round-trip")
    return errs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", type=Path, default=DATA / "eventsub-examples.json")
    ap.add_argument("--types-html", type=Path,
                    default=DATA / "twitch-docs-eventsub-subscription-types.html")
    ap.add_argument("--reference-html", type=Path,
                    default=DATA / "twitch-docs-eventsub-reference.html")
    ap.add_argument("--out-dir", type=Path, default=HERE)
    ap.add_argument("--check", action="store_true", help="also validate; exit 1 on failure")
    a = ap.parse_args(argv)

    examples = json.loads(a.examples.read_text(encoding="utf-8"))
    catalog, notes = build(examples,
                           a.types_html.read_text(encoding="utf-8"),
                           a.reference_html.read_text(encoding="utf-8"))
    compact = json.dumps(examples, separators=(",", ":"))

    a.out_dir.mkdir(parents=True, exist_ok=True)
    (a.out_dir / "catalog.json").write_text(
        json.dumps(catalog, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (a.out_dir / "examples.json").write_text(compact, encoding="utf-8")

    print(f"wrote {len(catalog)} catalog entries "
          f"({sum(e['default'] for e in catalog)} default) and examples.json "
          f"({len(compact)} bytes) to {a.out_dir}")
    for n in notes:
        print("condition note:", n)
    if a.check:
        errs = check(catalog, examples, compact)
        for e in errs:
            print("CHECK FAILED:", e, file=sys.stderr)
        if errs:
            return 1
        print("check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
