#!/usr/bin/env python3
"""A TAU bot with nothing but the standard library, for shell tiers.

    tau-bot.py ws://HOST:PORT/ws/twitch-events/ TOKEN OUT.jsonl

Connects like a bot written for the original TAU (one text frame
{"token": ...} after the handshake), then appends every text frame it
receives to OUT.jsonl, one per line, until the socket closes or it is
killed. Exits 0 on a normal close, 1 otherwise. Answers pings.
"""
import base64
import json
import os
import socket
import struct
import sys
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


def main():
    url, token, out = sys.argv[1], sys.argv[2], sys.argv[3]
    u = urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port or 80), timeout=10)
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
        print(f"handshake failed: {status.decode(errors='replace')}", file=sys.stderr)
        return 1
    send_frame(sock, 0x1, json.dumps({"token": token}).encode())
    sock.settimeout(None)
    with open(out, "a", buffering=1) as f:
        f.write(json.dumps({"bot": "connected"}) + "\n")
        while True:
            try:
                opcode, payload = recv_frame(sock)
            except ConnectionError:
                return 1
            if opcode == 0x1:
                f.write(payload.decode() + "\n")
            elif opcode == 0x9:
                send_frame(sock, 0xA, payload)
            elif opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                f.write(json.dumps({"bot": "closed", "code": code}) + "\n")
                return 0 if code in (1000, 1001) else 1


if __name__ == "__main__":
    sys.exit(main())
