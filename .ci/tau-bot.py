#!/usr/bin/env python3
"""A TAU bot with nothing but the standard library, for shell tiers.

    tau-bot.py [--reconnect] [--via ADDR:PORT] ws://HOST[:PORT]/ws/twitch-events/ TOKEN OUT.jsonl

Connects like a bot written for the original TAU (one text frame
{"token": ...} after the handshake), then appends every text frame it
receives to OUT.jsonl, one per line, until the socket closes or it is
killed. Exits 0 on a normal close, 1 otherwise. Answers pings.

--reconnect: a bot that must not miss anything. When the socket closes or
breaks (a relay pod going away), it connects again (every 0.25 s until a
handshake succeeds) and resumes with {"token", "since": <id of the last
event it received>}, so the relay replays what it missed. Its own lines:
{"bot": "connected", "since": ...}, {"bot": "closed", "code": ...},
{"bot": "lost", "error": ...} (also after 45 s without a frame or
ping). It runs until killed, or exits 1 when the
relay refuses it (close 1008: bad token or unknown since).

--via ADDR:PORT: connect to ADDR:PORT (an ingress controller's Service)
while the handshake names the URL's host, as DNS would send a bot there.
Every ping it answers is logged as {"bot": "ping"}.
"""
import base64
import json
import os
import socket
import struct
import sys
import time
from urllib.parse import urlsplit


def send_frame(sock, opcode, payload):
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack(">Q", n)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(header + mask + masked)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("socket closed")
        buf += chunk
    return buf


def recv_frame(sock):
    b0, b1 = recv_exact(sock, 2)
    opcode = b0 & 0x0F
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", recv_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", recv_exact(sock, 8))[0]
    mask = recv_exact(sock, 4) if b1 & 0x80 else None
    payload = recv_exact(sock, n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload


def connect(url, hello, idle=None, via=None):
    """Opens the websocket (over a TCP connection to `via`, (host, port),
    when given) and sends the first frame; returns the socket (reads time
    out after `idle` seconds), raises ConnectionError."""
    u = urlsplit(url)
    sock = socket.create_connection(via or (u.hostname, u.port or 80), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    path = u.path + ("?" + u.query if u.query else "")
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += recv_exact(sock, 1)
    status = response.split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        sock.close()
        raise ConnectionError(f"handshake failed: {status.decode(errors='replace')}")
    send_frame(sock, 0x1, json.dumps(hello).encode())
    sock.settimeout(idle)
    return sock


def serve(sock, f, on_event):
    """Reads frames until the socket ends; the close code, or None if it broke."""
    while True:
        try:
            opcode, payload = recv_frame(sock)
        except (ConnectionError, OSError) as e:
            f.write(json.dumps({"bot": "lost", "error": str(e)}) + "\n")
            return None
        if opcode == 0x1:
            text = payload.decode()
            f.write(text + "\n")
            on_event(text)
        elif opcode == 0x9:
            f.write(json.dumps({"bot": "ping"}) + "\n")
            try:
                send_frame(sock, 0xA, payload)
            except OSError:
                pass
        elif opcode == 0x8:
            code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
            f.write(json.dumps({"bot": "closed", "code": code}) + "\n")
            return code


def main():
    args = sys.argv[1:]
    reconnect = "--reconnect" in args
    args = [a for a in args if a != "--reconnect"]
    via = None
    if "--via" in args:
        i = args.index("--via")
        host, port = args[i + 1].rsplit(":", 1)
        via = (host, int(port))
        del args[i : i + 2]
    url, token, out = args
    with open(out, "a", buffering=1) as f:
        if not reconnect:
            try:
                sock = connect(url, {"token": token}, via=via)
            except ConnectionError as e:
                print(str(e), file=sys.stderr)
                return 1
            f.write(json.dumps({"bot": "connected"}) + "\n")
            code = serve(sock, f, lambda _text: None)
            return 0 if code in (1000, 1001) else 1
        last = {"id": None}

        def on_event(text):
            try:
                frame = json.loads(text)
            except ValueError:
                return
            if isinstance(frame, dict) and frame.get("id") and frame.get("event_id"):
                last["id"] = frame["id"]

        while True:
            hello = {"token": token}
            if last["id"]:
                hello["since"] = last["id"]
            try:
                # The relay pings every 20 s: silence past two pings is a
                # dead connection (a pod gone without a close).
                sock = connect(url, hello, idle=45, via=via)
            except (ConnectionError, OSError):
                time.sleep(0.25)
                continue
            f.write(json.dumps({"bot": "connected", "since": last["id"]}) + "\n")
            code = serve(sock, f, on_event)
            sock.close()
            if code == 1008:
                return 1


if __name__ == "__main__":
    sys.exit(main())
