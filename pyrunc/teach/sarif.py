"""`pyrunc check --format sarif`: the findings as a SARIF 2.1.0 log, so that a CI pipeline
shows config risks as code-scanning alerts on config.json's lines.

One rule per check rule (capabilities, seccomp, ...), one result per finding: its level as
SARIF's (extreme and high: error, medium: warning, low: note) and as a
"security-severity" score, its JSON path as a logical location, the line of config.json
that path starts on as the physical one, and the CIS Docker Benchmark controls behind it
as taxa of a "CIS Docker Benchmark" taxonomy (and as rule tags, which code scanning shows).
"""
import json
import os

import pyrunc
from pyrunc.linux.capabilities import LEVELS
from pyrunc.teach import cis

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"extreme": "error", "high": "error", "medium": "warning", "low": "note"}
SEVERITY = {"extreme": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def log(where, text, found):
    """The SARIF log (a dict) for check's findings [(rule, Finding)] on `where`, whose
    contents are `text`."""
    lines = json_lines(text)
    uri = where if not os.path.isabs(where) else "file://" + where
    rules, results, taxa = {}, [], {}
    for rule, f in found:
        ids = cis.controls(rule, f)
        entry = rules.setdefault(rule, {"id": rule, "name": rule, "tags": set(),
                                        "level": f.level})
        entry["tags"].update(f"CIS-Docker-{cid}" for cid in ids)
        if LEVELS.index(f.level) > LEVELS.index(entry["level"]):
            entry["level"] = f.level
        for cid in ids:
            taxa.setdefault(cid, len(taxa))
        results.append({
            "ruleId": rule,
            "ruleIndex": list(rules).index(rule),
            "level": SARIF_LEVEL[f.level],
            "message": {"text": f"{f.path}: {f.message}"},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": uri},
                                     "region": {"startLine": line_of(lines, f.path)}},
                "logicalLocations": [{"fullyQualifiedName": f.path, "kind": "member"}],
            }],
            "taxa": [{"id": cid, "index": taxa[cid],
                      "toolComponent": {"name": cis.NAME}} for cid in ids],
            "properties": {"severity": f.level, "security-severity": SEVERITY[f.level]},
        })
    driver_rules = [{
        "id": r["id"], "name": r["name"],
        "shortDescription": {"text": f"pyrunc check rule {r['id']}"},
        "defaultConfiguration": {"level": SARIF_LEVEL[r["level"]]},
        "properties": {"tags": ["security", *sorted(r["tags"])],
                       "security-severity": SEVERITY[r["level"]]},
    } for r in rules.values()]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "pyrunc check", "version": pyrunc.__version__,
                                "rules": driver_rules,
                                "supportedTaxonomies": [{"name": cis.NAME}]}},
            "taxonomies": [{"name": cis.NAME, "version": cis.VERSION,
                            "taxa": [{"id": cid, "shortDescription": {
                                "text": cis.TITLES[cid]}} for cid in taxa]}],
            "artifacts": [{"location": {"uri": uri}}],
            "results": results,
        }],
    }


def line_of(lines, path):
    """The line (from 1) where the deepest part of JSON path `path` that config.json has
    starts: "mounts[1] (/dev)" -> the line of mounts[1]; 1 when nothing matches."""
    keys = parse_path(path.split(" (")[0])
    while keys:
        if tuple(keys) in lines:
            return lines[tuple(keys)]
        keys.pop()
    return 1


def parse_path(path):
    """"linux.namespaces[2].path" -> ["linux", "namespaces", 2, "path"];
    "linux.sysctl[net.ipv4.ip_forward]" -> ["linux", "sysctl", "net.ipv4.ip_forward"]."""
    keys, name, i = [], "", 0
    while i < len(path):
        c = path[i]
        if c == "." and name:
            keys.append(name)
            name = ""
        elif c == "[":
            if name:
                keys.append(name)
                name = ""
            end = path.find("]", i)
            if end < 0:
                break
            inner = path[i + 1:end]
            keys.append(int(inner) if inner.isdigit() else inner)
            i = end
        elif c != ".":
            name += c
        i += 1
    if name:
        keys.append(name)
    return keys


def json_lines(text):
    """{(key, index, ...): line} for every value in JSON `text`, each at the line its key
    (or, in an array, the value) starts on. Assumes valid JSON (json.loads read it)."""
    out = {}
    pos = [0]
    line = [1]

    def skip():
        while pos[0] < len(text) and text[pos[0]] in " \t\r\n":
            if text[pos[0]] == "\n":
                line[0] += 1
            pos[0] += 1

    def string():
        start = pos[0] + 1
        pos[0] = start
        while text[pos[0]] != '"':
            pos[0] += 2 if text[pos[0]] == "\\" else 1
        pos[0] += 1
        return json.loads(text[start - 1:pos[0]])

    def value(key):
        skip()
        c = text[pos[0]]
        if c == "{":
            pos[0] += 1
            skip()
            if text[pos[0]] == "}":
                pos[0] += 1
                return
            while True:
                skip()
                at = line[0]
                name = string()
                out[key + (name,)] = at
                skip()
                pos[0] += 1     # ':'
                value(key + (name,))
                skip()
                pos[0] += 1     # ',' or '}'
                if text[pos[0] - 1] == "}":
                    return
        elif c == "[":
            pos[0] += 1
            skip()
            if text[pos[0]] == "]":
                pos[0] += 1
                return
            i = 0
            while True:
                skip()
                out[key + (i,)] = line[0]
                value(key + (i,))
                skip()
                pos[0] += 1     # ',' or ']'
                if text[pos[0] - 1] == "]":
                    return
                i += 1
        elif c == '"':
            string()
        else:
            while pos[0] < len(text) and text[pos[0]] not in ",}] \t\r\n":
                pos[0] += 1

    value(())
    return out
