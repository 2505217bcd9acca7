"""A bot written for Twitch with twitchAPI (PyPI), pointed at TAU.

Configured only by TAU's base URL and a TAU API token (TAU_BASE,
TAU_TOKEN): Twitch's token check (/oauth2/validate), Helix's subscription
API (/helix/eventsub/subscriptions) and the EventSub WebSocket
(/eventsub/ws) are all TAU's. The library is used unchanged.

Protocol with .ci/eventsub-compat.sh, through files in STATE_DIR:
  ready        written once subscribed (channel.follow v2, channel.cheer v1)
  phase1       written once the first follow and cheer arrived with the
               right fields (the tier then drains the relay, another
               replica behind the same address takes over)
  then the bot waits for the follows of `during_handover` and
  `after_restart`, on the same subscription, and exits 0.
Any wrong field, or a missing event within TIMEOUT seconds: exit 1.
"""

import asyncio
import os
import sys
import threading

from twitchAPI.eventsub.websocket import EventSubWebsocket
from twitchAPI.oauth import validate_token
from twitchAPI.twitch import Twitch
from twitchAPI.type import AuthScope

BASE = os.environ["TAU_BASE"].rstrip("/")
TOKEN = os.environ["TAU_TOKEN"]
STATE = os.environ["STATE_DIR"]
TIMEOUT = float(os.environ.get("TIMEOUT", "60"))
# Without a connected Twitch account /oauth2/validate names no user: the
# channel id the tier's webhooks carry is given instead.
FALLBACK_BROADCASTER = os.environ.get("BROADCASTER_ID", "")

got = {"follow": [], "cheer": []}
arrived = threading.Condition()


def mark(name):
    with open(os.path.join(STATE, name), "w") as f:
        f.write("ok\n")


def fail(message):
    print(f"bot: FAIL: {message}", flush=True)
    os._exit(1)


async def on_follow(event):
    data = event.event
    print(f"bot: follow from {data.user_login} (message {event.metadata.message_id})", flush=True)
    with arrived:
        got["follow"].append((data.user_login, event.subscription.id))
        arrived.notify_all()


async def on_cheer(event):
    data = event.event
    print(f"bot: cheer of {data.bits} bits from {data.user_login}", flush=True)
    if data.bits != 500 or data.message != "compat cheer":
        fail(f"cheer fields: bits={data.bits} message={data.message!r}")
    with arrived:
        got["cheer"].append((data.user_login, event.subscription.id))
        arrived.notify_all()


def wait_for(predicate, what):
    with arrived:
        if not arrived.wait_for(predicate, timeout=TIMEOUT):
            fail(f"no {what} within {TIMEOUT:.0f} s (got {got})")


async def main():
    checked = await validate_token(TOKEN, auth_base_url=BASE + "/oauth2/")
    if checked.get("status", 200) != 200:
        fail(f"/oauth2/validate refused the token: {checked}")
    broadcaster = checked.get("user_id") or FALLBACK_BROADCASTER
    # The client id is TAU's (validate says which): twitchAPI insists they match.
    twitch = await Twitch(
        checked["client_id"] or "tau",
        authenticate_app=False,
        base_url=BASE + "/helix/",
        auth_base_url=BASE + "/oauth2/",
    )
    twitch.auto_refresh_auth = False
    await twitch.set_user_authentication(
        TOKEN, [AuthScope.MODERATOR_READ_FOLLOWERS, AuthScope.BITS_READ], validate=True
    )
    ws_base = BASE.replace("http://", "ws://").replace("https://", "wss://")
    eventsub = EventSubWebsocket(
        twitch,
        connection_url=ws_base + "/eventsub/ws",
        subscription_url=BASE + "/helix/",
    )
    eventsub.start()
    follow_id = await eventsub.listen_channel_follow_v2(broadcaster, broadcaster, on_follow)
    await eventsub.listen_channel_cheer(broadcaster, on_cheer)
    print(f"bot: subscribed (follow subscription {follow_id})", flush=True)
    mark("ready")

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(
        None, wait_for, lambda: got["follow"] and got["cheer"], "follow and cheer"
    )
    if got["follow"][0][0] != "compat_follower":
        fail(f"follow fields: {got['follow'][0]}")
    mark("phase1")

    # The relay drains; the library follows session_reconnect to another
    # replica and keeps its subscriptions (no resubscribe: same ids).
    await loop.run_in_executor(
        None,
        wait_for,
        lambda: {"during_handover", "after_restart"} <= {login for login, _ in got["follow"]},
        "follows during and after the handover",
    )
    ids = {sub_id for _, sub_id in got["follow"]}
    if len(ids) != 1:
        fail(f"the follow subscription changed id across the handover: {ids}")
    print("bot: PASS", flush=True)
    os._exit(0)


asyncio.run(main())
