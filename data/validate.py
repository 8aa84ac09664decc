#!/usr/bin/env python3
"""Validate the project's Swedish data sets against the intent contract (stdlib only).

Usage (from the repository root or anywhere):

    python3 data/validate.py            # check every file, print per-intent counts, exit 1 on errors
    python3 data/validate.py --strict   # also fail on label-consistency warnings

Checks: one JSON object per line (bad lines are reported by number; the traffic file's deliberate
malformed lines are expected and only counted), allowed intents, tool consistent with intent,
allowed slot keys and value formats per intent, unique ids, no duplicate texts across the NLU
splits, identical texts carry identical labels, cache group/near-miss structure, minimum sizes.
Warnings come from a heuristic cross-check of the text against the labels: relative day words
("imorgon", "på fredag", "den 24 mars"), Swedish clock words ("halv tre", "kvart i fyra"),
attendee names and e-mail recipients that must appear in the text as written.
"""

from __future__ import annotations

import argparse
import json
import re
import string
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent
REFERENCE_DAY = date(2026, 3, 10)  # Tuesday; reference time 2026-03-10T09:00 Europe/Stockholm

INTENTS: dict[str, set[str]] = {
    "greeting.hello": set(),
    "time.now": set(),
    "weather.lookup": {"city", "date"},
    "calendar.create_draft": {"start", "attendees", "title"},
    "calendar.move": {"new_start", "attendees"},
    "calendar.list": {"date"},
    "email.create_draft": {"to"},
    "timer.set": {"duration_s"},
    "memory.query": set(),
    "info.query": set(),
}
NO_TOOL = {"greeting.hello", "info.query"}
CACHEABLE = {"weather.lookup", "info.query", "calendar.list", "memory.query"}
RECORD_KEYS = {"id", "text", "intent", "tool", "slots"}
TRAFFIC_EXTRA_KEYS = {"user", "session"}

MIN_SIZES = {"train": 420, "dev": 120, "test": 160, "traffic": 1100}
MIN_CACHE_GROUPS = 45
MIN_CACHE_NEAR_MISSES = 35
DEFAULT_TRAFFIC_MALFORMED = 5

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$")
USER_RE = re.compile(r"^u\d{2}$")


@dataclass
class Report:
    """Collects errors and warnings with file:line locations."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, where: str, msg: str) -> None:
        self.errors.append(f"ERROR {where}: {msg}")

    def warn(self, where: str, msg: str) -> None:
        self.warnings.append(f"WARN  {where}: {msg}")


# --- value formats ------------------------------------------------------------------------------


def valid_date(value: Any) -> bool:
    if not isinstance(value, str) or not DATE_RE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def valid_start(value: Any) -> bool:
    if valid_date(value):
        return True
    if not isinstance(value, str) or not DATETIME_RE.match(value):
        return False
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M")
    except ValueError:
        return False
    return True


def check_slots(intent: str, slots: Any, where: str, rep: Report) -> None:
    if not isinstance(slots, dict):
        rep.error(where, "slots must be an object")
        return
    allowed = INTENTS[intent]
    for key, value in slots.items():
        if key not in allowed:
            rep.error(where, f"slot {key!r} not allowed for {intent}")
            continue
        if key == "date" and not valid_date(value):
            rep.error(where, f"date {value!r} is not YYYY-MM-DD")
        elif key in ("start", "new_start") and not valid_start(value):
            rep.error(where, f"{key} {value!r} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM")
        elif key == "duration_s" and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            rep.error(where, f"duration_s {value!r} is not a positive integer")
        elif key == "attendees" and (
            not isinstance(value, list) or not value or not all(isinstance(a, str) and a.strip() for a in value)
        ):
            rep.error(where, "attendees must be a non-empty list of names")
        elif key in ("city", "to", "title") and (not isinstance(value, str) or not value.strip()):
            rep.error(where, f"{key} must be a non-empty string")


# --- heuristic cross-check of text and labels ----------------------------------------------------

WEEKDAYS = {
    "måndag": 0,
    "tisdag": 1,
    "onsdag": 2,
    "torsdag": 3,
    "fredag": 4,
    "lördag": 5,
    "söndag": 6,
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
    "måndagen": 0,
    "tisdagen": 1,
    "onsdagen": 2,
    "torsdagen": 3,
    "fredagen": 4,
    "lördagen": 5,
    "söndagen": 6,
}
MONTHS = {"januari": 1, "februari": 2, "mars": 3, "april": 4, "maj": 5, "juni": 6}
_MONTHS = "|".join(MONTHS)
_WEEKDAYS = "|".join(WEEKDAYS)


def next_weekday(weekday: int) -> date:
    """A weekday named alone means its next occurrence; today's name means a week from today."""
    delta = (weekday - REFERENCE_DAY.weekday()) % 7
    return REFERENCE_DAY + timedelta(days=delta or 7)


def day_mentions(text: str) -> list[str]:
    """ISO dates of the day expressions in text, in order of appearance."""
    t = text.lower()
    rules: list[tuple[str, Any]] = [
        (r"\bi ?övermorgon\b", lambda m: REFERENCE_DAY + timedelta(days=2)),
        (r"\b(?:imorgon|i morgon|imorn|tomorrow)\b", lambda m: REFERENCE_DAY + timedelta(days=1)),
        (r"\b(?:idag|i dag|today|ikväll|i kväll|i eftermiddag|dagens|resten av dagen)\b", lambda m: REFERENCE_DAY),
        (
            r"\bden (\d{1,2})(?::e|:a)? (" + _MONTHS + r")\b",
            lambda m: date(REFERENCE_DAY.year, MONTHS[m.group(2)], int(m.group(1))),
        ),
        (r"\b(" + _WEEKDAYS + r")\b", lambda m: next_weekday(WEEKDAYS[m.group(1)])),
    ]
    found: list[tuple[int, str]] = []
    for pattern, resolve in rules:
        for m in re.finditer(pattern, t):
            found.append((m.start(), resolve(m).isoformat()))
    return [iso for _, iso in sorted(found)]


HOUR_WORDS = {
    "ett": 1,
    "två": 2,
    "tre": 3,
    "fyra": 4,
    "fem": 5,
    "sex": 6,
    "sju": 7,
    "åtta": 8,
    "nio": 9,
    "tio": 10,
    "elva": 11,
    "tolv": 12,
}
MINUTE_WORDS = {"fem": 5, "tio": 10, "tjugo": 20, "kvart": 15}
_H = "|".join(HOUR_WORDS)
_M = "|".join(MINUTE_WORDS)


def clock_mention(text: str) -> str | None:
    """HH:MM of a meeting clock expression; bare hours 1..7 mean the afternoon."""
    t = text.lower()
    if m := re.search(rf"\bfem i halv ({_H})\b", t):
        hour, minute = HOUR_WORDS[m.group(1)] - 1, 25
    elif m := re.search(rf"\bfem över halv ({_H})\b", t):
        hour, minute = HOUR_WORDS[m.group(1)] - 1, 35
    elif m := re.search(rf"\b({_M}) i ({_H})\b", t):
        hour, minute = HOUR_WORDS[m.group(2)] - 1, 60 - MINUTE_WORDS[m.group(1)]
    elif m := re.search(rf"\b({_M}) över ({_H})\b", t):
        hour, minute = HOUR_WORDS[m.group(2)], MINUTE_WORDS[m.group(1)]
    elif m := re.search(rf"\bhalv ({_H})\b", t):
        hour, minute = HOUR_WORDS[m.group(1)] - 1, 30
    elif m := re.search(r"\b(?:kl|klockan|at)\.? (\d{1,2})(?:[.:](\d\d))?\b", t):
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
    elif m := re.search(rf"\bklockan ({_H})\b", t):
        hour, minute = HOUR_WORDS[m.group(1)], 0
    else:
        return None
    if hour == 0:
        hour = 12
    if 1 <= hour <= 7:
        hour += 12
    return f"{hour:02d}:{minute:02d}"


DAY_SLOT = {
    "weather.lookup": "date",
    "calendar.list": "date",
    "calendar.create_draft": "start",
    "calendar.move": "new_start",
}


def cross_check(text: str, intent: str, slots: dict[str, Any], where: str, rep: Report) -> None:
    key = DAY_SLOT.get(intent)
    if key:
        days = day_mentions(text)
        expected = days[-1] if days else None  # "flytta ... från idag till fredag": the last one wins
        value = slots.get(key)
        got = value[:10] if isinstance(value, str) else None
        if expected != got:
            rep.warn(where, f"{key}: text suggests day {expected}, label has {got}")
        if intent in ("calendar.create_draft", "calendar.move"):
            clock = clock_mention(text)
            got_clock = value[11:] if isinstance(value, str) and len(value) > 10 else None
            if clock != got_clock:
                rep.warn(where, f"{key}: text suggests clock {clock}, label has {got_clock}")
    for name in slots.get("attendees", []) if isinstance(slots.get("attendees"), list) else []:
        if isinstance(name, str) and not re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text):
            rep.warn(where, f"attendee {name!r} is not written in the text")
    to = slots.get("to")
    if isinstance(to, str) and to not in text:
        rep.warn(where, f"recipient {to!r} is not written in the text")


# --- files ---------------------------------------------------------------------------------------


def read_lines(path: Path, rep: Report) -> list[tuple[int, str]]:
    if not path.exists():
        rep.error(str(path), "file is missing")
        return []
    with path.open(encoding="utf-8") as f:
        return [(n, line.rstrip("\n")) for n, line in enumerate(f, 1)]


def parse(line: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def normalise(text: str) -> str:
    table = str.maketrans("", "", string.punctuation + "¿¡")
    return " ".join(text.casefold().translate(table).split())


def label_key(rec: dict[str, Any]) -> str:
    slots = {k: v for k, v in rec.get("slots", {}).items() if k != "title"}
    return json.dumps([rec.get("intent"), rec.get("tool"), slots], sort_keys=True, ensure_ascii=False)


def check_record(rec: dict[str, Any], where: str, rep: Report, extra_keys: set[str]) -> bool:
    """Check one intent-file record; returns False when it is unusable."""
    missing = RECORD_KEYS - rec.keys()
    if missing:
        rep.error(where, f"missing keys {sorted(missing)}")
        return False
    unknown = rec.keys() - RECORD_KEYS - extra_keys
    if unknown:
        rep.error(where, f"unknown keys {sorted(unknown)}")
    if not isinstance(rec["id"], str) or not rec["id"]:
        rep.error(where, "id must be a non-empty string")
    if not isinstance(rec["text"], str) or not rec["text"].strip():
        rep.error(where, "text must be a non-empty string")
        return False
    intent = rec["intent"]
    if intent not in INTENTS:
        rep.error(where, f"unknown intent {intent!r}")
        return False
    expected_tool = None if intent in NO_TOOL else intent
    if rec["tool"] != expected_tool:
        rep.error(where, f"tool {rec['tool']!r} should be {expected_tool!r} for {intent}")
    check_slots(intent, rec["slots"], where, rep)
    if isinstance(rec["slots"], dict):
        cross_check(rec["text"], intent, rec["slots"], where, rep)
    return True


def check_nlu(rep: Report, counts: dict[str, Counter[str]]) -> None:
    seen_ids: dict[str, str] = {}
    seen_texts: dict[str, str] = {}
    prefixes = {"train": "tr", "dev": "dv", "test": "te"}
    for split, prefix in prefixes.items():
        path = DATA_DIR / "nlu" / f"{split}.jsonl"
        counter: Counter[str] = Counter()
        for n, line in read_lines(path, rep):
            where = f"nlu/{split}.jsonl:{n}"
            rec = parse(line)
            if rec is None:
                rep.error(where, "not a JSON object")
                continue
            if not check_record(rec, where, rep, set()):
                continue
            rid = rec["id"]
            if not re.fullmatch(prefix + r"\d{4}", str(rid)):
                rep.error(where, f"id {rid!r} should look like {prefix}0001")
            if rid in seen_ids:
                rep.error(where, f"duplicate id {rid!r} (first at {seen_ids[rid]})")
            seen_ids[rid] = where
            norm = normalise(rec["text"])
            if norm in seen_texts:
                rep.error(where, f"duplicate text {rec['text']!r} (first at {seen_texts[norm]})")
            seen_texts[norm] = where
            counter[rec["intent"]] += 1
        counts[split] = counter
        total = sum(counter.values())
        if total < MIN_SIZES[split]:
            rep.error(f"nlu/{split}.jsonl", f"{total} lines, expected at least {MIN_SIZES[split]}")
        missing = set(INTENTS) - counter.keys()
        if missing:
            rep.error(f"nlu/{split}.jsonl", f"intents missing from split: {sorted(missing)}")


def check_cache(rep: Report) -> tuple[int, int, Counter[str]]:
    path = DATA_DIR / "cache" / "cache.jsonl"
    groups = near = 0
    by_intent: Counter[str] = Counter()
    near_info = 0
    ids: set[str] = set()
    texts: dict[str, str] = {}
    for n, line in read_lines(path, rep):
        where = f"cache/cache.jsonl:{n}"
        rec = parse(line)
        if rec is None:
            rep.error(where, "not a JSON object")
            continue
        if "group" in rec:
            gid = rec["group"]
            if gid in ids:
                rep.error(where, f"duplicate id {gid!r}")
            ids.add(gid)
            intent = rec.get("intent")
            if intent not in CACHEABLE:
                rep.error(where, f"intent {intent!r} is not cacheable (allowed: {sorted(CACHEABLE)})")
                continue
            slots = rec.get("slots")
            check_slots(intent, slots, where, rep)
            paraphrases = rec.get("paraphrases")
            if (
                not isinstance(paraphrases, list)
                or not 3 <= len(paraphrases) <= 5
                or not all(isinstance(p, str) and p.strip() for p in paraphrases)
            ):
                rep.error(where, "paraphrases must be a list of 3-5 non-empty strings")
                continue
            for p in paraphrases:
                norm = normalise(p)
                if norm in texts:
                    rep.error(where, f"paraphrase {p!r} also in {texts[norm]}")
                texts[norm] = where
                if intent in DAY_SLOT and isinstance(slots, dict):
                    days = day_mentions(p)
                    if days and days[-1] != slots.get("date"):
                        rep.warn(where, f"paraphrase {p!r} suggests day {days[-1]}, group has {slots.get('date')}")
            groups += 1
            by_intent[intent] += 1
        elif "near_miss" in rec:
            mid = rec["near_miss"]
            if mid in ids:
                rep.error(where, f"duplicate id {mid!r}")
            ids.add(mid)
            a, b, why = rec.get("a"), rec.get("b"), rec.get("why")
            if not all(isinstance(x, str) and x.strip() for x in (a, b, why)):
                rep.error(where, "near_miss needs non-empty a, b and why")
                continue
            if normalise(str(a)) == normalise(str(b)):
                rep.error(where, "a and b are the same question")
            near += 1
            if (
                not day_mentions(str(a))
                and not re.search(r"\b(sa jag|kommer du ihåg|minns du)\b", str(a).lower())
                and "kalendern" not in str(a).lower()
                and "väder" not in str(a).lower()
            ):
                near_info += 1
        else:
            rep.error(where, "neither a group nor a near_miss line")
    if groups < MIN_CACHE_GROUPS:
        rep.error("cache/cache.jsonl", f"{groups} groups, expected at least {MIN_CACHE_GROUPS}")
    if near < MIN_CACHE_NEAR_MISSES:
        rep.error("cache/cache.jsonl", f"{near} near misses, expected at least {MIN_CACHE_NEAR_MISSES}")
    by_intent["near_miss(info-like)"] = near_info
    return groups, near, by_intent


def check_traffic(rep: Report, expected_malformed: int) -> tuple[Counter[str], int, int]:
    path = DATA_DIR / "traffic" / "standard.jsonl"
    counter: Counter[str] = Counter()
    malformed: list[int] = []
    ids: set[str] = set()
    labels: dict[str, tuple[str, str]] = {}
    users: Counter[str] = Counter()
    for n, line in read_lines(path, rep):
        where = f"traffic/standard.jsonl:{n}"
        rec = parse(line)
        if rec is None or not isinstance(rec.get("text"), str) or not rec["text"].strip():
            malformed.append(n)
            continue
        if not check_record(rec, where, rep, TRAFFIC_EXTRA_KEYS):
            continue
        if rec["id"] in ids:
            rep.error(where, f"duplicate id {rec['id']!r}")
        ids.add(rec["id"])
        user = rec.get("user", "u1")
        if "user" in rec and not (isinstance(user, str) and USER_RE.match(user)):
            rep.error(where, f"user {user!r} should look like u01")
        if "session" in rec and not isinstance(rec["session"], str):
            rep.error(where, "session must be a string")
        key = label_key(rec)
        first = labels.setdefault(rec["text"], (key, where))
        if first[0] != key:
            rep.error(where, f"same text labelled differently at {first[1]}")
        counter[rec["intent"]] += 1
        users[user] += 1
    if malformed:
        print(f"traffic/standard.jsonl: malformed lines (expected, skipped by the evaluations): {malformed}")
    if len(malformed) != expected_malformed:
        rep.error(
            "traffic/standard.jsonl",
            f"{len(malformed)} malformed lines, expected {expected_malformed} (see --traffic-malformed)",
        )
    total = sum(counter.values())
    if total < MIN_SIZES["traffic"]:
        rep.error("traffic/standard.jsonl", f"{total} valid lines, expected at least {MIN_SIZES['traffic']}")
    return counter, len(malformed), len(users)


def check_label_consistency(rep: Report) -> None:
    """The same text must carry the same labels everywhere (NLU splits and traffic)."""
    labels: dict[str, tuple[str, str]] = {}
    files = [DATA_DIR / "nlu" / f"{s}.jsonl" for s in ("train", "dev", "test")]
    files.append(DATA_DIR / "traffic" / "standard.jsonl")
    for path in files:
        if not path.exists():
            continue
        for n, line in read_lines(path, rep):
            rec = parse(line)
            if rec is None or not isinstance(rec.get("text"), str) or "intent" not in rec:
                continue
            where = f"{path.parent.name}/{path.name}:{n}"
            key = label_key(rec)
            norm = normalise(rec["text"])
            first = labels.setdefault(norm, (key, where))
            if first[0] != key:
                rep.error(where, f"text {rec['text']!r} labelled differently at {first[1]}")


def print_table(counts: dict[str, Counter[str]]) -> None:
    columns = list(counts)
    width = max(len(i) for i in INTENTS) + 2
    print("intent".ljust(width) + "".join(c.rjust(9) for c in columns))
    for intent in INTENTS:
        print(intent.ljust(width) + "".join(str(counts[c][intent]).rjust(9) for c in columns))
    print("total".ljust(width) + "".join(str(sum(counts[c].values())).rjust(9) for c in columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate data/ against the intent contract.")
    parser.add_argument("--strict", action="store_true", help="treat label cross-check warnings as errors")
    parser.add_argument(
        "--traffic-malformed",
        type=int,
        default=DEFAULT_TRAFFIC_MALFORMED,
        help="number of deliberately malformed traffic lines (default %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not list warnings")
    args = parser.parse_args(argv)

    rep = Report()
    counts: dict[str, Counter[str]] = {}
    check_nlu(rep, counts)
    traffic_counts, _, n_users = check_traffic(rep, args.traffic_malformed)
    counts["traffic"] = traffic_counts
    check_label_consistency(rep)
    groups, near, cache_by_intent = check_cache(rep)

    print_table(counts)
    traffic_total = sum(traffic_counts.values()) or 1
    shares = ", ".join(f"{i} {100 * c / traffic_total:.1f}%" for i, c in traffic_counts.most_common())
    print(f"traffic: {n_users} users; shares: {shares}")
    by_intent = ", ".join(f"{k} {v}" for k, v in sorted(cache_by_intent.items()))
    print(f"cache: {groups} groups, {near} near misses ({by_intent})")

    if not args.quiet:
        for w in rep.warnings:
            print(w)
    for e in rep.errors:
        print(e)
    failed = bool(rep.errors) or (args.strict and bool(rep.warnings))
    print(f"{len(rep.errors)} errors, {len(rep.warnings)} warnings: {'FAIL' if failed else 'OK'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
