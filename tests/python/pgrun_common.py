"""Shared helpers of psycopg_run.py and asyncpg_run.py: the JSON contract.

Usage of either script:

    <script> DSN [SPEC]        SPEC: JSON text, or "-"/absent to read it from stdin

SPEC is a list of statements or an object:

    {"statements": [...], "autocommit": true, "end": "commit" | "rollback",
     "stop_on_error": false, "prepare_threshold": 5 (psycopg only)}

A statement is a string (the SQL) or an object:

    {"sql": "...", "params": [...], "mode": "...", "binary": false, "many": [[...], ...]}

The script prints exactly one JSON object on stdout and exits 0, whatever the server said:

    {"driver": "psycopg" | "asyncpg", "driver_version": "...",
     "connected": bool, "error": ERROR | null,       # connection-level failure
     "server_version": int | null,
     "results": [{"sql": "...", "ok": bool, "columns": [...] | null, "rows": [[...]] | null,
                  "rowcount": int | null, "status": "SELECT 3" | null, "error": ERROR | null,
                  "sets": [...] (psycopg simple mode only)}],
     "end_error": ERROR | null}                      # commit/rollback/close failure

ERROR = {"sqlstate", "message", "detail", "hint", "severity", "type"}: the server's fields
when it sent an ErrorResponse (sqlstate null for client-side failures such as a refused TLS
handshake or a closed connection; "type" is the Python exception class).

Values in rows: numbers as JSON numbers (numeric as a string, to keep its digits), dates and
times ISO 8601, bytes as "\\x<hex>", arrays as lists, json/jsonb as parsed JSON (psycopg) or
as text (asyncpg returns the text).
"""

import base64
import datetime
import decimal
import ipaddress
import json
import sys
import uuid


def load_args(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    dsn = argv[1]
    raw = argv[2] if len(argv) > 2 and argv[2] != "-" else sys.stdin.read()
    spec = json.loads(raw) if raw.strip() else []
    if isinstance(spec, list):
        spec = {"statements": spec}
    if not isinstance(spec, dict):
        sys.stderr.write("SPEC must be a JSON list or object\n")
        sys.exit(2)
    stmts = []
    for s in spec.get("statements", []):
        if isinstance(s, str):
            s = {"sql": s}
        stmts.append(s)
    spec["statements"] = stmts
    return dsn, spec


def to_json(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (datetime.date, datetime.datetime, datetime.time)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return v.total_seconds()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, (uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address,
                      ipaddress.IPv4Network, ipaddress.IPv6Network,
                      ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    # Records, ranges, geometric types...: their text form.
    return str(v)


def emit(obj):
    sys.stdout.write(json.dumps(obj, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def b64(b):
    return base64.b64encode(b).decode()


def typed_param(p, jsonb):
    """A JSON parameter to a Python value. Plain JSON values pass through; an object
    {"$type": T, "value": V} converts V: date, timestamp, timestamptz (ISO 8601), decimal
    (string), bytes (hex), uuid, json/jsonb (through `jsonb`, the driver's own wrapper)."""
    if isinstance(p, list):
        return [typed_param(x, jsonb) for x in p]
    if not (isinstance(p, dict) and "$type" in p):
        return p
    t, v = p["$type"], p.get("value")
    if v is None:
        return None
    if t == "date":
        return datetime.date.fromisoformat(v)
    if t in ("timestamp", "timestamptz"):
        return datetime.datetime.fromisoformat(v)
    if t == "decimal":
        return decimal.Decimal(str(v))
    if t == "bytes":
        return bytes.fromhex(v[2:] if v.startswith("\\x") else v)
    if t == "uuid":
        return uuid.UUID(v)
    if t in ("json", "jsonb"):
        return jsonb(v)
    raise ValueError(f"unknown $type {t!r}")


def client_error(e):
    """ERROR for an exception that did not come with server fields."""
    return {"sqlstate": None, "message": str(e) or repr(e), "detail": None, "hint": None,
            "severity": None, "type": type(e).__name__}


def rowcount_from_status(status):
    """The count at the end of a command tag ("INSERT 0 3" -> 3), or None."""
    if not status:
        return None
    last = status.split()[-1]
    return int(last) if last.isdigit() else None
