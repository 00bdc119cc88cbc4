"""Calls per second and latency of one `SELECT 1` per call, on each path (see run.sh)."""

import asyncio
import os
import time

import httpx
import psycopg

SECS = float(os.environ["SECS"])
CONC = int(os.environ["CONC"])
TOKEN = os.environ["TOKEN"]
SQL = "SELECT 1"


def pg(port: str, db: str, password: str):
    async def call(_: httpx.AsyncClient) -> None:
        async with await psycopg.AsyncConnection.connect(
            host="127.0.0.1", port=port, user="postgres", dbname=db, password=password, sslmode="disable"
        ) as c:
            await (await c.execute(SQL)).fetchall()

    return call


async def exec_api(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/exec", json={"connection": "bench", "input": SQL})
    if r.status_code != 200 or r.json()["rows"] != [["1"]]:
        raise RuntimeError(f"exec answered {r.status_code}: {r.text}")


async def measure(call) -> tuple[int, list[float]]:
    lat: list[float] = []
    end = time.perf_counter() + SECS
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{os.environ['API_PORT']}",
        headers={"authorization": f"Bearer {TOKEN}"},
        limits=httpx.Limits(max_connections=CONC),
    ) as http:

        async def worker() -> None:
            while (t := time.perf_counter()) < end:
                await call(http)
                lat.append(time.perf_counter() - t)

        await asyncio.gather(*(worker() for _ in range(CONC)))
    return len(lat), sorted(lat)


async def main() -> None:
    paths = [
        ("direct PostgreSQL (new connection per call)", pg(os.environ["PG_PORT"], "postgres", "")),
        ("pgbouncer (new client connection per call)", pg(os.environ["BOUNCER_PORT"], "postgres", "")),
        ("PostgreSQL door (new connection per call)", pg(os.environ["DOOR_PORT"], "bench", TOKEN)),
        ("POST /v1/exec (keep-alive HTTP)", exec_api),
    ]
    results = []
    for name, call in paths:
        n, lat = await measure(call)
        results.append((name, n / SECS, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3))
    direct = results[0][1]
    door = results[2][1]
    print("| path | calls/s | p50 ms | p99 ms | vs direct | vs door |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rate, p50, p99 in results:
        print(f"| {name} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {rate / direct:.2f} | {rate / door:.2f} |")


asyncio.run(main())
