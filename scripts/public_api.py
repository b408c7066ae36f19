#!/usr/bin/env python3
"""The library's public API, counted from rustdoc's JSON (nightly rustdoc,
every feature): items by kind (structs, enums, traits, functions, constants,
type aliases; modules and enum variants apart) and public functions
including methods, and the items per top-level module (where they are
defined). `--list` prints every item's path.

    python3 scripts/public_api.py [--list]
"""
import collections
import json
import os
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(
    ["cargo", "+nightly", "rustdoc", "-q", "--lib", "--all-features", "--",
     "-Z", "unstable-options", "--output-format", "json"],
    cwd=root, check=True)
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
doc = json.load(open(os.path.join(target, "doc", "mcp_resource_guard.json")))

items = collections.defaultdict(list)
for entry in doc["paths"].values():  # sealed traits are not nameable: left out
    if entry["crate_id"] == 0 and "sealed" not in entry["path"]:
        items[entry["kind"]].append("::".join(entry["path"][1:]))
functions = sum(
    1 for it in doc["index"].values()
    if it.get("crate_id") == 0 and "function" in it["inner"] and it.get("visibility") == "public")

kinds = ["struct", "enum", "trait", "function", "constant", "type_alias", "macro"]
total = sum(len(items[k]) for k in kinds)
print(f"public items: {total} ({', '.join(f'{len(items[k])} {k}' for k in kinds if items[k])}); "
      f"{len(items['module'])} modules, {len(items['variant'])} enum variants; "
      f"{functions} public functions and methods")
per_module = collections.Counter(
    (p.split("::")[0] if "::" in p else "(root)") for k in kinds for p in items[k])
print("by module: " + ", ".join(f"{m} {n}" for m, n in per_module.most_common()))
if "--list" in sys.argv:
    for k in kinds + ["module"]:
        for path in sorted(items[k]):
            print(f"{k:10} {path}")
