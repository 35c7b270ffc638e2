#!/usr/bin/env python3
"""Regenerate publisher/data/hub_licenses.json from hub-docs' repositories-licenses.md.

Usage: python3 scripts/hub_licenses.py PATH/TO/repositories-licenses.md [SOURCE-NOTE]

The ids and full names come from the table between the ``region licenses`` comments.
The classification (permissive / copyleft / non-commercial / restrictive-use / other) is
ours: it is kept from the existing JSON, and a new id gets ``other`` (reported on stderr)
until someone classifies it by hand.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "publisher" / "data" / "hub_licenses.json"
ROW = re.compile(
    r"^\|\s*(?P<name>.+?)\s*\|\s*`(?P<id>[^`]+)`\s*\|\s*(?:<!--(?P<comment>.*?)-->)?\s*$"
)
LINK = re.compile(r"\b(license|info):\s*(\S+)")


def parse(markdown: str) -> list[tuple[str, str, str | None]]:
    region = markdown
    if "<!-- region licenses -->" in markdown:
        region = markdown.split("<!-- region licenses -->", 1)[1].split("<!-- endregion -->", 1)[0]
    rows = []
    for line in region.splitlines():
        m = ROW.match(line.strip())
        if m:
            links = dict(LINK.findall(m["comment"] or ""))
            url = links.get("license") or links.get("info")
            rows.append((m["id"], m["name"].replace("\\*", "*"), url))
    return rows


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    rows = parse(Path(argv[0]).read_text())
    if not rows:
        print("no license table found", file=sys.stderr)
        return 2
    old = json.loads(OUT.read_text()) if OUT.is_file() else {"licenses": []}
    classes = {e["id"]: e["class"] for e in old["licenses"]}
    entries = []
    for lid, name, url in rows:
        if lid not in classes:
            print(f"new license id {lid!r} ({name}): classified 'other', review it", file=sys.stderr)
        entry = {"id": lid, "name": name, "class": classes.get(lid, "other")}
        if url:
            entry["url"] = url
        entries.append(entry)
    data = {
        "source": argv[1] if len(argv) > 1 else old.get("source", argv[0]),
        "classes": old.get("classes", {}),
        "licenses": entries,
    }
    OUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(entries)} licenses to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
