#!/usr/bin/env python3
"""Runs statements with psycopg 3 and prints the outcome as one JSON object.

    psycopg_run.py DSN [SPEC]

DSN: a libpq keyword/value string or URI (sslmode, sslrootcert, connect_timeout... as libpq).
SPEC and output: see pgrun_common.py. Placeholders are psycopg's: %s or %(name)s.

Statement "mode":
  "extended" (default) Parse/Bind/Describe/Execute/Sync with an unnamed statement, also
                       without parameters (sent in pipeline mode then, as psycopg does);
  "prepare"            a named prepared statement (Parse once, Bind/Execute);
  "auto"               psycopg's own choice: simple protocol without parameters, extended
                       with them, named statements after prepare_threshold executions;
  "simple"             simple Query (no parameters; several statements allowed: every
                       result set is in "sets").
"binary": true asks for binary results. "many": [[...], ...] runs executemany (pipelined).
"""

import sys

import psycopg
from psycopg.types.json import Jsonb

from pgrun_common import (client_error, emit, load_args, rowcount_from_status, to_json,
                          typed_param)


def error_of(e):
    if isinstance(e, psycopg.Error) and e.sqlstate:
        d = e.diag
        return {"sqlstate": e.sqlstate, "message": d.message_primary or str(e),
                "detail": d.message_detail, "hint": d.message_hint,
                "severity": d.severity_nonlocalized or d.severity, "type": type(e).__name__}
    err = client_error(e)
    # A refused login has no result object: libpq's text carries "FATAL:  <message>".
    text = str(e)
    for sev in ("FATAL:  ", "ERROR:  "):
        if sev in text:
            err["severity"] = sev.rstrip(": ")
            msg = text.split(sev, 1)[1]
            for field in ("DETAIL:  ", "HINT:  "):
                if field in msg:
                    head, tail = msg.split(field, 1)
                    msg = head
                    key = field.rstrip(": ").lower()
                    err[key] = tail.split("\n")[0].strip()
            err["server_message"] = msg.strip()
            break
    return err


def collect(cur):
    sets = []
    while True:
        if cur.description is not None:
            cols = [d.name for d in cur.description]
            rows = [[to_json(v) for v in r] for r in cur.fetchall()]
        else:
            cols, rows = None, None
        status = cur.statusmessage
        rc = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
        if rc is None:
            rc = rowcount_from_status(status)
        sets.append({"columns": cols, "rows": rows, "rowcount": rc, "status": status})
        if not cur.nextset():
            break
    return sets


def run_statement(conn, st):
    sql = st["sql"]
    params = typed_param(st.get("params"), Jsonb)
    mode = st.get("mode", "extended")
    binary = bool(st.get("binary", False))
    cur = conn.cursor(binary=binary)
    try:
        if "many" in st:
            rows = [typed_param(p, Jsonb) for p in st["many"]]
            cur.executemany(sql, rows, returning=bool(st.get("returning", False)))
        elif mode == "simple":
            if params:
                raise ValueError("mode simple takes no params")
            cur.execute(sql, prepare=False)
        elif mode == "prepare":
            cur.execute(sql, params, prepare=True, binary=binary)
        elif mode == "auto":
            cur.execute(sql, params)
        elif mode == "extended":
            if params or binary:
                cur.execute(sql, params, prepare=False, binary=binary)
            else:
                with conn.pipeline():
                    cur.execute(sql, prepare=False)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        sets = collect(cur)
        out = {"sql": sql, "ok": True, "error": None, **sets[0]}
        if len(sets) > 1:
            out["sets"] = sets
        return out
    finally:
        try:
            cur.close()
        except Exception:
            pass


def main():
    dsn, spec = load_args(sys.argv)
    autocommit = bool(spec.get("autocommit", True))
    out = {"driver": "psycopg", "driver_version": psycopg.__version__, "connected": False,
           "error": None, "server_version": None, "results": [], "notices": [],
           "end_error": None}
    kwargs = {"autocommit": autocommit}
    if "prepare_threshold" in spec:
        kwargs["prepare_threshold"] = spec["prepare_threshold"]
    try:
        conn = psycopg.connect(dsn, **kwargs)
    except Exception as e:  # noqa: BLE001 - every failure is reported, none crashes
        out["error"] = error_of(e)
        emit(out)
        return
    out["connected"] = True
    out["server_version"] = conn.info.server_version
    conn.add_notice_handler(lambda d: out["notices"].append(
        {"severity": d.severity, "sqlstate": d.sqlstate, "message": d.message_primary}))
    for st in spec["statements"]:
        try:
            res = run_statement(conn, st)
        except Exception as e:  # noqa: BLE001
            res = {"sql": st.get("sql"), "ok": False, "columns": None, "rows": None,
                   "rowcount": None, "status": None, "error": error_of(e)}
        out["results"].append(res)
        if not res["ok"] and spec.get("stop_on_error"):
            break
    try:
        if not autocommit and not conn.closed:
            if spec.get("end", "commit") == "rollback":
                conn.rollback()
            else:
                conn.commit()
    except Exception as e:  # noqa: BLE001
        out["end_error"] = error_of(e)
    try:
        conn.close()
    except Exception as e:  # noqa: BLE001
        out["end_error"] = out["end_error"] or error_of(e)
    emit(out)


if __name__ == "__main__":
    main()
