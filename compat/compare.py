#!/usr/bin/env python3
"""Compare a suite's direct run with its run through the door (two pytest JUnit files).

Prints the counts and every test that passes directly but not through the door, minus the
documented exclusions (`compat/excluded*.txt`: `suite:test-id  # reason`, shell-style
wildcards allowed). Exits 1 when an unexplained difference remains, 2 on bad input.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


def nodeid(tc: ET.Element) -> str:
    """pytest's node id (`tests/x.py::Class::name`) from a JUnit test case."""
    cls, name, file = tc.get("classname", ""), tc.get("name", ""), tc.get("file") or ""
    module = file.removesuffix(".py").replace("/", ".")
    inner = cls[len(module) :].lstrip(".") if file and cls.startswith(module) else ""
    return "::".join([file, *inner.split("."), name] if inner else [file, name])


NODEIDS: dict[str, str] = {}


def load(path: Path) -> dict[str, tuple[str, str]]:
    """Test id -> (outcome, first line of the failure message)."""
    res: dict[str, tuple[str, str]] = {}
    for tc in ET.parse(path).getroot().iter("testcase"):
        tid = f"{tc.get('classname', '')}::{tc.get('name', '')}"
        NODEIDS.setdefault(tid, nodeid(tc))
        outcome, msg = PASSED, ""
        for child in tc:
            if child.tag in ("failure", "error"):
                outcome = FAILED
                msg = first_line(child.get("message") or child.text or "")
                break
            if child.tag == "skipped":
                outcome = SKIPPED
        # A test reported twice (a failing teardown after a passing call) failed.
        if tid in res and res[tid][0] == FAILED:
            continue
        res[tid] = (outcome, msg)
    return res


def first_line(msg: str) -> str:
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    return lines[0][:300] if lines else ""


def load_exclusions(files: list[Path], suite: str) -> list[tuple[str, str]]:
    pats: list[tuple[str, str]] = []
    for f in files:
        if not f.exists():
            continue
        for line in f.read_text().splitlines():
            body, _, reason = line.partition("#")
            body = body.strip()
            if not body:
                continue
            s, sep, pat = body.partition(":")
            if sep and s == suite:
                # `*` and `?` are wildcards; brackets are literal, as in pytest's ids.
                literal = re.sub(r"[\[\]]", lambda m: f"[{m.group(0)}]", pat)
                pats.append((literal, reason.strip()))
    return pats


def signature(msg: str) -> str:
    """The message with numbers and quoted names blurred, to group failures by cause."""
    s = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", msg)
    s = re.sub(r"0x[0-9a-f]+|\d+", "N", s)
    return s[:160]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", required=True)
    ap.add_argument("--label", default="door")
    ap.add_argument("--direct", required=True, type=Path)
    ap.add_argument("--door", required=True, type=Path)
    ap.add_argument("--exclude", action="append", default=[], type=Path)
    ap.add_argument(
        "--flaky",
        action="append",
        default=[],
        type=Path,
        help="tests shown to fail directly too, now and then: listed, not counted",
    )
    ap.add_argument(
        "--only-door-tests",
        action="store_true",
        help="compare only the tests the door run has (a -k subset)",
    )
    ap.add_argument("--lost-out", type=Path, help="write the unexplained tests' node ids here")
    ap.add_argument("--rerun", type=Path, help="JUnit file of those tests run again, alone")
    a = ap.parse_args()
    for p in (a.direct, a.door):
        if not p.exists():
            print(f"compare: {p} is missing (did pytest run?)", file=sys.stderr)
            return 2
    direct, door = load(a.direct), load(a.door)
    excl = load_exclusions(a.exclude, a.suite)
    flaky = load_exclusions(a.flaky, a.suite)
    if a.only_door_tests:
        direct = {t: v for t, v in direct.items() if t in door}

    def count(r: dict[str, tuple[str, str]], o: str) -> int:
        return sum(1 for v in r.values() if v[0] == o)

    lost = sorted(t for t, (o, _) in direct.items() if o == PASSED and door.get(t, ("",))[0] != PASSED)
    gained = sorted(t for t, (o, _) in door.items() if o == PASSED and direct.get(t, ("",))[0] != PASSED)
    excused: list[tuple[str, str]] = []
    flaked: list[tuple[str, str]] = []
    unexplained: list[str] = []
    for t in lost:
        reason = next((r for p, r in excl if fnmatch.fnmatchcase(t, p)), None)
        flake = next((r for p, r in flaky if fnmatch.fnmatchcase(t, p)), None)
        if reason is not None:
            excused.append((t, reason))
        elif flake is not None:
            flaked.append((t, flake))
        else:
            unexplained.append(t)

    if a.lost_out:
        a.lost_out.write_text("".join(f"{NODEIDS[t]}\n" for t in unexplained))
    rerun = load(a.rerun) if a.rerun and a.rerun.exists() else {}

    print(f"== {a.suite} ({a.label})")
    print(f"   tests: {len(direct)} direct, {len(door)} through the door")
    for name, r in (("direct", direct), ("door", door)):
        print(
            f"   {name:6} passed {count(r, PASSED):5}  failed {count(r, FAILED):4}"
            f"  skipped {count(r, SKIPPED):4}"
        )
    print(
        f"   passing directly but not through the door: {len(lost)}"
        f" ({len(excused)} documented exclusions, {len(flaked)} known flaky,"
        f" {len(unexplained)} unexplained)"
    )
    if gained:
        print(f"   (passing through the door but not directly: {len(gained)}; flaky tests?)")
        for t in gained[:10]:
            print(f"     + {t}")
    if excused:
        print("   documented exclusions that did not pass through the door:")
        for t, r in excused:
            print(f"     ~ {t}  # {r}")
    if flaked:
        print("   known flaky (timing-dependent, see compat/flaky.txt), not counted:")
        for t, r in flaked:
            print(f"     ? {t}  # {r}")
    if unexplained:
        groups: dict[str, list[str]] = defaultdict(list)
        for t in unexplained:
            groups[signature(door.get(t, ("", "not run through the door"))[1])].append(t)
        print("   UNEXPLAINED, grouped by message (count, first test, its message):")
        for _sig, ts in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            msg = door.get(ts[0], ("", "not run through the door"))[1]
            print(f"     [{len(ts)}] {ts[0]}\n         {msg}")
        print("   UNEXPLAINED, every test:")
        for t in unexplained:
            outcome, msg = door.get(t, ("missing", ""))
            again = ""
            if t in rerun:
                again = " (passed when re-run)" if rerun[t][0] == PASSED else " (failed again)"
            print(f"     - {t}  [{outcome}{again}] {msg[:160]}")
        if rerun:
            n = sum(1 for t in unexplained if rerun.get(t, ("",))[0] == PASSED)
            print(
                f"   re-run through the door after the suite: {n} of {len(unexplained)} passed"
                " (flaky or order-dependent: still counted)"
            )
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
