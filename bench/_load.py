"""Closed-loop HTTP load generator for bench/serving.py, run as its own process.

    python bench/_load.py URL BODIES.json --clients 32 --duration 20 --warmup 2 --rows 1

N clients (coroutines on one aiohttp session, uvloop when installed) each POST a body, wait
for the whole answer, and send the next one, cycling through the JSON bodies in BODIES.json.
Requests that start after the warm-up and finish before the end are counted; a status other
than 200, a timeout or a connection error is an error. Prints one JSON object: requests,
rows, errors, seconds, p50/p99 latency in ms, the load generator's CPU seconds and the first
error seen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from pathlib import Path

import aiohttp


def _percentile(ordered: list[float], share: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def _client(session: aiohttp.ClientSession, url: str, bodies: list[bytes], offset: int,
                  warm: float, end: float, out: dict) -> None:
    headers = {"Content-Type": "application/json"}
    index = offset
    while (start := time.perf_counter()) < end:
        body = bodies[index % len(bodies)]
        index += 1
        problem = None
        try:
            async with session.post(url, data=body, headers=headers) as response:
                text = await response.read()
                if response.status != 200:
                    problem = f"HTTP {response.status}: {text[:200].decode(errors='replace')}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        finish = time.perf_counter()
        if start < warm or finish > end:
            continue
        if problem:
            out["errors"] += 1
            out["first_error"] = out["first_error"] or problem
        else:
            out["latencies"].append(finish - start)


async def run(url: str, bodies: list[bytes], clients: int, duration: float, warmup: float,
              timeout: float) -> dict:
    out: dict = {"errors": 0, "first_error": None, "latencies": []}
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        warm = time.perf_counter() + warmup
        end = warm + duration
        step = max(1, len(bodies) // clients)
        await asyncio.gather(*[_client(session, url, bodies, i * step, warm, end, out)
                               for i in range(clients)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("bodies", type=Path)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rows", type=int, default=1, help="records per request")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    args = parser.parse_args()
    bodies = [json.dumps(body).encode() for body in json.loads(args.bodies.read_text())]
    try:
        from uvloop import run as runner
    except ImportError:
        runner = asyncio.run
    out = runner(run(args.url, bodies, args.clients, args.duration, args.warmup, args.timeout))
    latencies = sorted(out["latencies"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "requests": len(latencies), "rows": len(latencies) * args.rows, "errors": out["errors"],
        "seconds": args.duration,
        "p50_ms": None if not latencies else 1000 * _percentile(latencies, 0.50),
        "p99_ms": None if not latencies else 1000 * _percentile(latencies, 0.99),
        "client_cpu_seconds": usage.ru_utime + usage.ru_stime, "first_error": out["first_error"]}))


if __name__ == "__main__":
    main()
