#!/usr/bin/env python3
"""Runs statements with asyncpg and prints the outcome as one JSON object.

    asyncpg_run.py URL [SPEC]

URL: postgresql://user:password@host:port/db?sslmode=...&sslrootcert=...&connect_timeout=N
(asyncpg takes URIs only; other query parameters become server settings, as in asyncpg).
SPEC and output: see pgrun_common.py. Placeholders are $1, $2, ...; parameters must match
the server's types (cast in SQL, e.g. $1::text::date, or use {"$type": "date", ...}).

Statement "mode":
  "prepare" (default)  conn.prepare() then fetch(): a named prepared statement, binary
                       format, columns and command tag reported;
  "fetch"              conn.fetch(): asyncpg's statement cache (no command tag);
  "execute"            conn.execute(): simple Query without parameters (several statements
                       allowed), extended with them; command tag only.
"many": [[...], ...] runs executemany.
"""

import asyncio
import json
import sys
import urllib.parse

import asyncpg

from pgrun_common import (client_error, emit, load_args, rowcount_from_status, to_json,
                          typed_param)


def error_of(e):
    if isinstance(e, asyncpg.PostgresError) and getattr(e, "sqlstate", None):
        return {"sqlstate": e.sqlstate, "message": e.args[0] if e.args else str(e),
                "detail": getattr(e, "detail", None), "hint": getattr(e, "hint", None),
                "severity": getattr(e, "severity_en", None) or getattr(e, "severity", None),
                "type": type(e).__name__}
    return client_error(e)


def split_timeout(url):
    """Removes connect_timeout from the URI's query (asyncpg would send it as a setting)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    timeout = 10.0
    kept = []
    for k, v in query:
        if k == "connect_timeout":
            timeout = float(v)
        else:
            kept.append((k, v))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(kept))), timeout


async def run_statement(conn, st):
    sql = st["sql"]
    params = typed_param(st.get("params") or [], json.dumps)
    mode = st.get("mode", "prepare")
    res = {"sql": sql, "ok": True, "error": None, "columns": None, "rows": None,
           "rowcount": None, "status": None}
    if "many" in st:
        rows = [typed_param(p, json.dumps) for p in st["many"]]
        await conn.executemany(sql, rows)
    elif mode == "prepare":
        stmt = await conn.prepare(sql)
        attrs = stmt.get_attributes()
        records = await stmt.fetch(*params)
        if attrs:
            res["columns"] = [a.name for a in attrs]
            res["rows"] = [[to_json(v) for v in r.values()] for r in records]
        res["status"] = stmt.get_statusmsg()
        res["rowcount"] = rowcount_from_status(res["status"])
    elif mode == "fetch":
        records = await conn.fetch(sql, *params)
        res["columns"] = list(records[0].keys()) if records else []
        res["rows"] = [[to_json(v) for v in r.values()] for r in records]
        res["rowcount"] = len(records)
    elif mode == "execute":
        res["status"] = await conn.execute(sql, *params)
        res["rowcount"] = rowcount_from_status(res["status"])
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return res


async def main():
    url, spec = load_args(sys.argv)
    url, timeout = split_timeout(url)
    autocommit = bool(spec.get("autocommit", True))
    out = {"driver": "asyncpg", "driver_version": asyncpg.__version__, "connected": False,
           "error": None, "server_version": None, "results": [], "notices": [],
           "end_error": None}
    try:
        conn = await asyncpg.connect(url, timeout=timeout,
                                     statement_cache_size=spec.get("statement_cache_size", 100))
    except Exception as e:  # noqa: BLE001 - every failure is reported, none crashes
        out["error"] = error_of(e)
        emit(out)
        return
    out["connected"] = True
    v = conn.get_server_version()
    out["server_version"] = v.major * 10000 + v.minor * 100 + v.micro
    conn.add_log_listener(lambda _c, m: out["notices"].append(
        {"severity": getattr(m, "severity_en", None) or getattr(m, "severity", None),
         "sqlstate": getattr(m, "sqlstate", None), "message": str(m)}))
    tr = None
    if not autocommit:
        tr = conn.transaction()
        try:
            await tr.start()
        except Exception as e:  # noqa: BLE001
            out["end_error"] = error_of(e)
            tr = None
    for st in spec["statements"]:
        try:
            res = await run_statement(conn, st)
        except Exception as e:  # noqa: BLE001
            res = {"sql": st.get("sql"), "ok": False, "columns": None, "rows": None,
                   "rowcount": None, "status": None, "error": error_of(e)}
        out["results"].append(res)
        if not res["ok"] and spec.get("stop_on_error"):
            break
    try:
        if tr is not None and not conn.is_closed():
            if spec.get("end", "commit") == "rollback":
                await tr.rollback()
            else:
                await tr.commit()
    except Exception as e:  # noqa: BLE001
        out["end_error"] = error_of(e)
    try:
        await asyncio.wait_for(conn.close(), timeout=10)
    except Exception as e:  # noqa: BLE001
        conn.terminate()
        out["end_error"] = out["end_error"] or error_of(e)
    emit(out)


if __name__ == "__main__":
    asyncio.run(main())
