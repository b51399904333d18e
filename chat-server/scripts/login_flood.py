#!/usr/bin/env python3
"""N concurrent staff logins with unknown e-mails against a running chat-server, printing
the server's resident memory (VmRSS) and its peak (VmHWM) before and after.

    target/release/chat-server --listen 127.0.0.1:18080 --db /tmp/flood/chat.db \
        --max-connections-per-ip 0 --rate-per-ip 0 &
    python3 chat-server/scripts/login_flood.py 18080 "$(pgrep -f 'listen 127.0.0.1:18080')" 200
"""
import asyncio
import json
import sys
import time

port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])


def memory():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(("VmHWM", "VmRSS")):
            print(line.strip())


async def login(i):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"email": f"nobody{i}@x.example", "password": "wrong password"}).encode()
    writer.write(
        b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer.split(b" ", 2)[1].decode()


async def main():
    memory()
    started = time.time()
    codes = await asyncio.gather(*(login(i) for i in range(n)))
    print("took %.1f s" % (time.time() - started), {c: codes.count(c) for c in set(codes)})
    memory()


asyncio.run(main())
