#!/usr/bin/env python3
"""Runs masking-bypass cases with psycopg 3 or asyncpg and prints everything the client saw.

    leak_probe.py psycopg-text|psycopg-binary|asyncpg DSN SPEC

Used by crates/integration-tests/tests/masking_bypass.rs. SPEC is JSON:

    {"cases": [{"id": "...", "steps": [STEP, ...]}, ...]}
    STEP = {"how": "sql", "sql": "..."}
         | {"how": "copy", "sql": "COPY ... TO STDOUT ...", "source": "members" | "(SELECT ...)",
            "format": "text" | "csv" | "binary"}
         | {"how": "cursor", "sql": "SELECT ..."}       a driver-level cursor, in a transaction

Each case runs its steps in order on one connection (autocommit: the steps hold their own
BEGIN/ROLLBACK); an error does not stop the case. A connection lost mid-case is reported and
a new one is opened for the next case. Output, one JSON object on stdout:

    {"driver": "...", "cases": [{"id": "...", "status": "ok" | "error" | "lost",
                                 "sqlstates": [...], "events": [EVENT, ...]}]}
    EVENT = {"kind": "row" | "error" | "notice" | "notify" | "copy" | "status", "text": "..."}
          | {"kind": ..., "b64": "..."}             raw bytes (COPY data, bytea values)

psycopg-text runs statements as named prepared statements with text results (the extended
protocol); psycopg-binary as unnamed statements with binary results; asyncpg uses binary
results and statement_cache_size=0 (the setting behind pgbouncer), so every query is an
unnamed statement that is parsed and described, then parsed again and executed. Error and notice events carry every field the
driver exposes (message, detail, hint, context, internal query, ...).
"""

import asyncio
import base64
import io
import json
import sys

DIAG_FIELDS = (
    "severity", "sqlstate", "message_primary", "message_detail", "message_hint",
    "context", "internal_query", "internal_position", "statement_position", "schema_name",
    "table_name", "column_name", "datatype_name", "constraint_name", "source_function",
)


def b64(data):
    return base64.b64encode(bytes(data)).decode()


def render(value, events):
    """A value as text; raw bytes are also kept as they arrived."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        events.append({"kind": "row", "b64": b64(value)})
        return "\\x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render(v, events) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def rows_event(rows, events):
    """One event for a result: its rows one per line (a value spread over rows stays
    readable across them)."""
    lines = []
    for r in rows:
        values = r.values() if hasattr(r, "values") and callable(r.values) else r
        lines.append(" | ".join(render(v, events) for v in values))
    events.append({"kind": "row", "text": "\n".join(lines)})


class Case:
    def __init__(self, cid):
        self.out = {"id": cid, "status": "ok", "sqlstates": [], "events": []}

    def event(self, kind, text):
        self.out["events"].append({"kind": kind, "text": text})

    def failed(self, sqlstate, fields, text):
        self.out["status"] = "error" if self.out["status"] == "ok" else self.out["status"]
        self.out["sqlstates"].append(sqlstate)
        self.event("error", json.dumps(fields, ensure_ascii=False, default=str))
        self.event("error", text)

    def lost(self, text):
        self.out["status"] = "lost"
        self.event("error", text)


# ---- psycopg ----------------------------------------------------------------------------


def psycopg_main(binary, dsn, spec):
    import psycopg

    def diag(d):
        return {f: getattr(d, f, None) for f in DIAG_FIELDS if getattr(d, f, None) is not None}

    current = {"case": None}

    def connect():
        conn = psycopg.connect(dsn, autocommit=True)
        conn.add_notice_handler(
            lambda d: current["case"] and current["case"].event("notice", json.dumps(
                diag(d), ensure_ascii=False, default=str)))
        conn.add_notify_handler(
            lambda n: current["case"] and current["case"].event(
                "notify", f"{n.channel} {n.payload}"))
        return conn

    def step(conn, case, st):
        events = case.out["events"]
        how = st.get("how", "sql")
        if how == "copy":
            with conn.cursor() as cur:
                with cur.copy(st["sql"]) as copy:
                    for block in copy:
                        events.append({"kind": "copy", "b64": b64(block)})
        elif how == "cursor":
            with conn.transaction():
                with conn.cursor(name="leak_probe_c", binary=binary) as cur:
                    cur.execute(st["sql"])
                    rows_event(cur.fetchall(), events)
        else:
            with conn.cursor(binary=binary) as cur:
                if binary:
                    cur.execute(st["sql"], binary=True)
                else:
                    cur.execute(st["sql"], prepare=True)
                if cur.description is not None:
                    rows_event(cur.fetchall(), events)
                case.event("status", str(cur.statusmessage))

    conn = None
    results = []
    for c in spec["cases"]:
        case = Case(c["id"])
        current["case"] = case
        for st in c["steps"]:
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = connect()
                step(conn, case, st)
            except psycopg.Error as e:
                if e.sqlstate:
                    case.failed(e.sqlstate, diag(e.diag), str(e))
                if not e.sqlstate or conn.closed or conn.broken:
                    case.lost(f"{type(e).__name__}: {e}")
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure is reported
                case.lost(f"{type(e).__name__}: {e}")
                conn = None
        results.append(case.out)
        current["case"] = None
    if conn is not None and not conn.closed:
        conn.close()
    return results


# ---- asyncpg ----------------------------------------------------------------------------


async def asyncpg_main(url, spec):
    import asyncpg

    current = {"case": None}

    def fields(m):
        d = m.as_dict() if hasattr(m, "as_dict") else {}
        return {k: v for k, v in d.items() if v is not None}

    async def connect():
        conn = await asyncpg.connect(url, timeout=10, statement_cache_size=0)
        conn.add_log_listener(
            lambda _c, m: current["case"] and current["case"].event(
                "notice", json.dumps(fields(m), ensure_ascii=False, default=str)))
        return conn

    async def step(conn, case, st):
        events = case.out["events"]
        how = st.get("how", "sql")
        if how == "copy":
            buf = io.BytesIO()
            source = st["source"]
            if source.startswith("("):
                await conn.copy_from_query(source[1:-1], output=buf, format=st["format"])
            else:
                await conn.copy_from_table(source, output=buf, format=st["format"])
            events.append({"kind": "copy", "b64": b64(buf.getvalue())})
        elif how == "cursor":
            async with conn.transaction():
                rows = [r async for r in conn.cursor(st["sql"], prefetch=2)]
            rows_event(rows, events)
        else:
            stmt = await conn.prepare(st["sql"])
            rows = await stmt.fetch()
            rows_event(rows, events)
            case.event("status", str(stmt.get_statusmsg()))

    conn = None
    results = []
    for c in spec["cases"]:
        case = Case(c["id"])
        current["case"] = case
        for st in c["steps"]:
            try:
                if conn is None or conn.is_closed():
                    conn = await connect()
                await step(conn, case, st)
            except asyncpg.PostgresError as e:
                if getattr(e, "sqlstate", None):
                    case.failed(e.sqlstate, fields(e), str(e))
                if not getattr(e, "sqlstate", None) or conn.is_closed():
                    case.lost(f"{type(e).__name__}: {e}")
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure is reported
                case.lost(f"{type(e).__name__}: {e}")
                if conn is not None:
                    conn.terminate()
                conn = None
        results.append(case.out)
        current["case"] = None
    if conn is not None and not conn.is_closed():
        await conn.close(timeout=10)
    return results


def without_connect_timeout(url):
    """asyncpg would send connect_timeout as a server setting: it is dropped (10 s is used)."""
    import urllib.parse
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "connect_timeout"]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    driver, dsn, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    if driver == "psycopg-text":
        results = psycopg_main(False, dsn, spec)
    elif driver == "psycopg-binary":
        results = psycopg_main(True, dsn, spec)
    elif driver == "asyncpg":
        results = asyncio.run(asyncpg_main(without_connect_timeout(dsn), spec))
    else:
        sys.exit(f"unknown driver {driver!r}")
    sys.stdout.write(json.dumps({"driver": driver, "cases": results}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
