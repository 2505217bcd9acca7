"""A minimal TCP load balancer for the EventSub compatibility tier.

Listens on 127.0.0.1:PORT and hands each new connection to the first
backend (127.0.0.1:P1, 127.0.0.1:P2, ...) that accepts it, as a load
balancer in front of a fleet would: a draining relay stops accepting, so
new connections (the bot's reconnect, webhooks) reach the next replica.
Usage: python3 balancer.py PORT P1 [P2 ...]
"""

import asyncio
import sys

PORT = int(sys.argv[1])
BACKENDS = [int(p) for p in sys.argv[2:]]


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_reader, client_writer):
    for port in BACKENDS:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            continue
    else:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
