"""A sequencer-set member in a process of its own, for the pause test (SIGSTOP / SIGCONT).

It takes the lease and keeps it renewed, reads the log's end, then prints one JSON line per tick
with `held()` and the time (`time.monotonic()`) just before it asked. Once the lease is not held
it tries the append it would have made as leader, fenced on the end it read, prints the outcome
and exits.

    python -m tests.cluster.lease_child --urls nats://... --holder NAME --ttl S --stream S --bucket B
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson

from sequencer.cluster.connect import connect
from sequencer.cluster.errors import Fenced
from sequencer.cluster.lease import Lease
from sequencer.cluster.log import ReplicatedLog

TICK_S = 0.02


def say(**fields: object) -> None:
    sys.stdout.write(orjson.dumps(fields).decode() + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> None:
    nc = await connect(args.urls.split(","), args.holder)
    log = await ReplicatedLog.open(nc, args.stream)
    lease = await Lease.open(nc, args.holder, ttl=args.ttl, bucket=args.bucket)
    renewing = asyncio.create_task(lease.run())
    while not lease.held():
        await asyncio.sleep(TICK_S)
    seen = await log.last_seq()
    say(event="leader", term=lease.term, seen=seen)
    held = True
    while held:
        at = time.monotonic()  # one clock for every process of the machine: the test compares
        held = lease.held()
        say(event="tick", held=held, at=at)
        await asyncio.sleep(TICK_S)
    try:
        seq = await log.append(b"from a deposed leader", seen)
        say(event="append", result="written", seq=seq)
    except Fenced as err:
        say(event="append", result="fenced", expected=err.expected, actual=err.actual)
    renewing.cancel()
    await asyncio.gather(renewing, return_exceptions=True)
    await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for flag in ("--urls", "--holder", "--stream", "--bucket"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--ttl", type=float, required=True)
    asyncio.run(main(parser.parse_args()))
