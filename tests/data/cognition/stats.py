#!/usr/bin/env python3
"""Validate the cognition evaluation set and print its counts.

Usage: python3 tests/data/cognition/stats.py [--markdown]

Checks statements.jsonl and scenarios.jsonl against the formats in
README.md: every line parses, ids are unique, slots and relation types are
in the taxonomy of src/cognitive/extract.h, dates are valid ISO dates with
from < to, polarity and event types are known, negatives carry no fact,
scenario checks are of a known type with their required fields, and the
turns a check refers to exist.  Exits 1 on the first kind of error found
(all errors are listed).  With --markdown it prints the count tables used
in README.md.  Standard library only.
"""
import collections
import datetime
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

SINGLE = ["name", "age", "birthday", "gender", "location.city", "location.region",
          "location.country", "origin", "work.employer", "work.title", "work.industry",
          "education.school", "relationship", "diet"]
MULTI = ["pet", "preference.likes", "preference.dislikes", "allergy", "health", "hobby",
         "goal", "plan", "education", "language", "skill"]
FAMILY = ["spouse", "partner", "mother", "father", "parent", "son", "daughter", "child",
          "brother", "sister", "sibling", "grandmother", "grandfather", "grandparent",
          "grandchild", "aunt", "uncle", "cousin", "niece", "nephew", "friend"]
SLOTS = set(SINGLE) | set(MULTI) | {"family." + r for r in FAMILY}
RELS = {"works_at", "industry", "lives_in", "located_in", "from", "studied_at", "member_of",
        "owns", "has_pet", "likes", "dislikes", "married_to", "partner_of", "friend_of"} | \
       {"family." + r for r in FAMILY}
EVENT_TYPES = {"activity", "plan", "milestone", "preference", "social"}
POLARITY = {"asserted", "negated", "correction"}
NEG_KINDS = {"question", "hypothetical", "others_opinion", "wish", "undecided",
             "negated_nonfact", "sarcasm", "assistant", "generic"}
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

CHECKS = {  # type -> (required fields, optional fields)
    "profile": ({"slot", "value"}, {"subject", "alt"}),
    "profile_absent": ({"slot", "value"}, {"subject"}),
    "profile_count": ({"slot", "count"}, {"subject"}),
    "history": ({"slot", "values"}, {"subject"}),
    "as_of": ({"time", "slot", "value"}, {"subject", "alt"}),
    "confidence_above": ({"slot", "value", "min"}, {"subject"}),
    "sources": ({"slot", "value", "min"}, {"subject"}),
    "superseded": ({"slot", "value", "by_turn"}, {"subject"}),
    "search": ({"query", "k", "expect"}, set()),
    "event": ({"contains", "from", "to"}, {"event_type"}),
    "graph": ({"entity", "depth", "expect"}, set()),
}

errors = []


def err(where, msg):
    errors.append(f"{where}: {msg}")


def is_date(s):
    try:
        return isinstance(s, str) and datetime.date.fromisoformat(s).isoformat() == s
    except ValueError:
        return False


def is_time(s):
    if not isinstance(s, str) or not TIME_RE.match(s):
        return False
    try:
        datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ")
        return True
    except ValueError:
        return False


def nonempty_str(v):
    return isinstance(v, str) and v.strip() != ""


def check_keys(where, obj, required, optional):
    if not isinstance(obj, dict):
        err(where, "not an object")
        return False
    missing = required - obj.keys()
    extra = obj.keys() - required - optional
    if missing:
        err(where, f"missing {sorted(missing)}")
    if extra:
        err(where, f"unknown fields {sorted(extra)}")
    return not missing


def load(name):
    rows = []
    with open(os.path.join(HERE, name), encoding="utf-8") as fp:
        for n, line in enumerate(fp, 1):
            if not line.strip():
                err(f"{name}:{n}", "empty line")
                continue
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                err(f"{name}:{n}", f"bad JSON: {e}")
    return rows


def validate_fact(where, f):
    if not check_keys(where, f, {"subject", "slot", "value"},
                      {"polarity", "prev_value", "valid_from", "alt"}):
        return
    if not isinstance(f["subject"], str):
        err(where, "subject must be a string")
    if f["slot"] not in SLOTS:
        err(where, f"slot {f['slot']!r} not in the taxonomy")
    if not nonempty_str(f["value"]):
        err(where, "empty value")
    if f.get("polarity", "asserted") not in POLARITY:
        err(where, f"polarity {f.get('polarity')!r}")
    if "prev_value" in f and not nonempty_str(f["prev_value"]):
        err(where, "empty prev_value")
    if "valid_from" in f and not is_date(f["valid_from"]):
        err(where, f"valid_from {f['valid_from']!r} is not an ISO date")
    if "alt" in f and not (isinstance(f["alt"], list) and all(nonempty_str(a) for a in f["alt"])):
        err(where, "alt must be a list of strings")


def validate_statements():
    rows = load("statements.jsonl")
    ids = set()
    for n, r in rows:
        where = f"statements.jsonl:{n}"
        if not check_keys(where, r, {"id", "time", "role", "speaker", "text", "facts", "events",
                                     "relations"}, {"note", "tags"}):
            continue
        if not re.fullmatch(r"s\d{4}", str(r["id"])) or r["id"] in ids:
            err(where, f"bad or duplicate id {r['id']!r}")
        ids.add(r["id"])
        if not is_time(r["time"]):
            err(where, f"bad time {r['time']!r}")
        if r["role"] not in ("user", "assistant"):
            err(where, f"bad role {r['role']!r}")
        if r["speaker"] is not None and not nonempty_str(r["speaker"]):
            err(where, "speaker must be null or a name")
        if not nonempty_str(r["text"]):
            err(where, "empty text")
        for i, f in enumerate(r["facts"]):
            validate_fact(f"{where} fact {i}", f)
        singles = collections.Counter(
            (f.get("subject"), f.get("slot")) for f in r["facts"]
            if f.get("slot") in SINGLE and f.get("polarity", "asserted") != "negated")
        for (subj, slot), c in singles.items():
            if c > 1:
                err(where, f"two asserted values for single slot {slot} of {subj!r}")
        for i, e in enumerate(r["events"]):
            w = f"{where} event {i}"
            if not check_keys(w, e, {"type", "from", "to"}, {"what", "who", "when"}):
                continue
            if e["type"] not in EVENT_TYPES:
                err(w, f"type {e['type']!r}")
            if not (is_date(e["from"]) and is_date(e["to"]) and e["from"] < e["to"]):
                err(w, f"bad range {e['from']!r}..{e['to']!r}")
            if "who" in e and not (isinstance(e["who"], list) and all(nonempty_str(x) for x in e["who"])):
                err(w, "who must be a list of names")
            if e.get("when") is not None and not nonempty_str(e["when"]):
                err(w, "when must be null or the time phrase")
        for i, rel in enumerate(r["relations"]):
            w = f"{where} relation {i}"
            if not check_keys(w, rel, {"src", "rel", "dst"}, set()):
                continue
            if rel["rel"] not in RELS:
                err(w, f"relation {rel['rel']!r} not in the list")
            if not isinstance(rel["src"], str) or not nonempty_str(rel["dst"]):
                err(w, "src must be a string and dst a name")
        tags = r.get("tags", [])
        if not isinstance(tags, list):
            err(where, "tags must be a list")
            tags = []
        if "negative" in tags:
            if r["facts"]:
                err(where, "a negative statement lists facts")
            if not any(t in NEG_KINDS for t in tags):
                err(where, "a negative needs one of " + ", ".join(sorted(NEG_KINDS)))
        if r["role"] == "assistant" and r["facts"]:
            err(where, "an assistant turn lists facts")
    return [r for _, r in rows]


def validate_scenarios():
    rows = load("scenarios.jsonl")
    ids = set()
    for n, s in rows:
        where = f"scenarios.jsonl:{n}"
        if not check_keys(where, s, {"id", "title", "turns", "checks"}, {"themes", "speaker"}):
            continue
        if not re.fullmatch(r"sc\d{2,3}", str(s["id"])) or s["id"] in ids:
            err(where, f"bad or duplicate id {s['id']!r}")
        ids.add(s["id"])
        turns = s["turns"]
        if not turns:
            err(where, "no turns")
        prev = ""
        for i, t in enumerate(turns):
            w = f"{where} turn {i}"
            if not check_keys(w, t, {"time", "role", "text"}, {"speaker"}):
                continue
            if not is_time(t["time"]):
                err(w, f"bad time {t['time']!r}")
            elif t["time"] < prev:
                err(w, "turns are not in time order")
            prev = t["time"]
            if t["role"] not in ("user", "assistant") or not nonempty_str(t["text"]):
                err(w, "bad role or empty text")
        texts = {t.get("text") for t in turns}
        if not s["checks"]:
            err(where, "no checks")
        for i, c in enumerate(s["checks"]):
            w = f"{where} check {i}"
            if not isinstance(c, dict) or c.get("type") not in CHECKS:
                err(w, f"unknown check type {c.get('type') if isinstance(c, dict) else c!r}")
                continue
            req, opt = CHECKS[c["type"]]
            if not check_keys(w, c, req | {"type"}, opt):
                continue
            if "slot" in c and c["slot"] not in SLOTS:
                err(w, f"slot {c['slot']!r} not in the taxonomy")
            if "subject" in c and not isinstance(c["subject"], str):
                err(w, "subject must be a string")
            if c["type"] in ("profile", "profile_absent", "confidence_above", "sources", "superseded"):
                if not nonempty_str(c["value"]):
                    err(w, "empty value")
            if c["type"] == "as_of" and not (c["value"] is None or nonempty_str(c["value"])):
                err(w, "as_of value must be a string or null")
            if c["type"] == "as_of" and not is_time(c["time"]):
                err(w, f"bad time {c['time']!r}")
            if c["type"] == "profile_count" and not (isinstance(c["count"], int) and c["count"] >= 0):
                err(w, "count must be a non-negative integer")
            if c["type"] == "history" and not (isinstance(c["values"], list) and c["values"]
                                                and all(nonempty_str(v) for v in c["values"])):
                err(w, "values must be a non-empty list")
            if c["type"] in ("confidence_above",) and not (0 < c["min"] <= 1):
                err(w, "min must be in (0, 1]")
            if c["type"] == "sources" and not (isinstance(c["min"], int) and c["min"] >= 1):
                err(w, "min must be a positive integer")
            if c["type"] == "superseded" and not (isinstance(c["by_turn"], int)
                                                   and 0 <= c["by_turn"] < len(turns)):
                err(w, "by_turn out of range")
            if c["type"] == "search":
                if not (isinstance(c["k"], int) and c["k"] >= len(c["expect"]) >= 1):
                    err(w, "k must be an integer >= the number of expected turns")
                for e in c["expect"]:
                    if e not in texts:
                        err(w, f"expected text is not a turn: {e!r}")
            if c["type"] == "event":
                if not (is_date(c["from"]) and is_date(c["to"]) and c["from"] < c["to"]):
                    err(w, "bad event range")
                if "event_type" in c and c["event_type"] not in EVENT_TYPES:
                    err(w, f"event_type {c['event_type']!r}")
                if not nonempty_str(c["contains"]):
                    err(w, "empty contains")
            if c["type"] == "graph":
                if not (isinstance(c["depth"], int) and 1 <= c["depth"] <= 4):
                    err(w, "depth must be 1..4")
                if not (isinstance(c["expect"], list) and c["expect"]):
                    err(w, "expect must be a non-empty list")
    return [s for _, s in rows]


def tables(stmts, scens, md):
    slot_stmt = collections.Counter()
    slot_speaker = collections.Counter()
    slot_other = collections.Counter()
    slot_pol = collections.Counter()
    for r in stmts:
        seen = set()
        for f in r["facts"]:
            slot_stmt[f["slot"]] += f["slot"] not in seen
            seen.add(f["slot"])
            (slot_speaker if f["subject"] == "" else slot_other)[f["slot"]] += 1
            if f.get("polarity", "asserted") != "asserted":
                slot_pol[f["slot"]] += 1
    used_family = sorted(s for s in slot_stmt if s.startswith("family."))
    order = SINGLE + MULTI + used_family
    out = []
    out.append(f"statements: {len(stmts)}; with facts: {sum(1 for r in stmts if r['facts'])}; "
               f"facts: {sum(len(r['facts']) for r in stmts)}; events: "
               f"{sum(len(r['events']) for r in stmts)}; relations: {sum(len(r['relations']) for r in stmts)}")
    out.append("")
    out.append("| slot | kind | statements | speaker facts | others' facts | negated/correction |")
    out.append("|---|---|---:|---:|---:|---:|")
    for s in order:
        kind = "single" if s in SINGLE or s in ("family.spouse", "family.partner") else "multi"
        out.append(f"| {s} | {kind} | {slot_stmt[s]} | {slot_speaker[s]} | {slot_other[s]} | {slot_pol[s]} |")
    unused = sorted(s for s in SLOTS if s not in slot_stmt)
    out.append("")
    out.append("Family relations without statements: " + (", ".join(unused) if unused else "none"))
    ev = collections.Counter(e["type"] for r in stmts for e in r["events"])
    timed = sum(1 for r in stmts for e in r["events"] if e.get("when"))
    out.append("")
    out.append("| event type | count |")
    out.append("|---|---:|")
    for t in sorted(EVENT_TYPES):
        out.append(f"| {t} | {ev[t]} |")
    out.append(f"\nEvents with an explicit time phrase: {timed}; on the turn's day: "
               f"{sum(ev.values()) - timed}")
    rel = collections.Counter(x["rel"] for r in stmts for x in r["relations"])
    out.append("")
    out.append("| relation | count |")
    out.append("|---|---:|")
    for k, v in sorted(rel.items()):
        out.append(f"| {k} | {v} |")
    neg = collections.Counter(t for r in stmts for t in r.get("tags", []) if t in NEG_KINDS)
    out.append("")
    out.append(f"Negatives (no fact for anyone): {sum(1 for r in stmts if 'negative' in r.get('tags', []))}")
    out.append("")
    out.append("| negative kind | count |")
    out.append("|---|---:|")
    for k, v in sorted(neg.items()):
        out.append(f"| {k} | {v} |")
    th = collections.Counter(t for s in scens for t in s.get("themes", []))
    ck = collections.Counter(c["type"] for s in scens for c in s["checks"])
    out.append("")
    out.append(f"Scenarios: {len(scens)}; turns: {sum(len(s['turns']) for s in scens)}; "
               f"checks: {sum(ck.values())}; with 8 or more turns: "
               f"{sum(1 for s in scens if len(s['turns']) >= 8)}")
    out.append("")
    out.append("| scenario theme | scenarios |")
    out.append("|---|---:|")
    for k, v in sorted(th.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"| {k} | {v} |")
    out.append("")
    out.append("| check type | count |")
    out.append("|---|---:|")
    for k in CHECKS:
        out.append(f"| {k} | {ck[k]} |")
    text = "\n".join(out)
    if not md:
        text = text.replace("|---|---|---:|---:|---:|---:|\n", "").replace("|---|---:|\n", "")
    print(text)


def main():
    stmts = validate_statements()
    scens = validate_scenarios()
    if errors:
        for e in errors:
            print("error:", e, file=sys.stderr)
        print(f"{len(errors)} error(s)", file=sys.stderr)
        return 1
    tables(stmts, scens, "--markdown" in sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
