#!/usr/bin/env python3
"""The declared MSRV, as far as this machine can check it without the old
toolchain: every crate the library builds with (all features, normal and
build dependencies, not dev-dependencies) declares a `rust-version` no newer
than the library's own. Prints each offender and exits 1; crates that
declare none are listed as unverified. (clippy's `incompatible_msrv` lint,
on by default and read from `rust-version`, checks the library's own use of
newer standard-library APIs.)"""
import json
import subprocess
import sys

host = next(l.split()[1] for l in subprocess.check_output(["rustc", "-vV"], text=True).splitlines()
            if l.startswith("host:"))
meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked",
     "--filter-platform", host]))
packages = {p["id"]: p for p in meta["packages"]}
root = next(p for p in meta["packages"] if p["name"] == "mcp-resource-guard")
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}

seen, todo = set(), [root["id"]]
while todo:
    pid = todo.pop()
    if pid in seen:
        continue
    seen.add(pid)
    for dep in nodes[pid]["deps"]:
        if any(k["kind"] in (None, "build") for k in dep["dep_kinds"]):
            todo.append(dep["pkg"])
seen.discard(root["id"])

def version(v):
    return tuple(int(x) for x in (v.split(".") + ["0", "0"])[:3])

newer, undeclared = [], []
for pid in sorted(seen, key=lambda i: packages[i]["name"]):
    p = packages[pid]
    if p["rust_version"] is None:
        undeclared.append(f'{p["name"]} {p["version"]}')
    elif version(p["rust_version"]) > version(root["rust_version"]):
        newer.append(f'{p["name"]} {p["version"]} needs Rust {p["rust_version"]}')

print(f"{len(seen)} crates built with the library on {host} (all features); "
      f"{len(seen) - len(undeclared)} declare a rust-version, "
      f"{len(undeclared)} declare none (unverified)")
for line in newer:
    print(f"newer than the library's rust-version {root['rust_version']}: {line}")
sys.exit(1 if newer else 0)
