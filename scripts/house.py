#!/usr/bin/env python3
"""The house's measures (issue #17): the largest files, the longest functions, and the imports
that run back up a floor of ../shared/docs/house.md.

    python3 scripts/house.py [src] [--long]

Floors, ground up: 0 the ground floor (stage.rs, edl.rs, film, manifest, fsutil, items,
progress, media, nn); 1 shared capabilities (archive, vision, provenance); 2 the stages; 3 orchestration
(batch, plan); 4 the top (pipeline.rs, main.rs, lib.rs). An import runs back up when a file
imports (`crate::X` or `benjamin::X`) a module on a higher floor, or a stage imports a stage
that is not one of its declared inputs.
"""
import re
import sys
from pathlib import Path

FLOORS = {
    **{m: 0 for m in ["stage", "edl", "film", "manifest", "fsutil", "items", "progress", "media", "nn"]},
    "archive": 1, "vision": 1, "provenance": 1,
    **{m: 2 for m in ["screenplay", "voice", "shots", "faces", "music", "cut"]},
    "batch": 3, "plan": 3,
    "pipeline": 4, "main": 4, "lib": 4, "cli": 4,
}
# What each stage may read: its declared inputs (src/stage.rs `upstream`).
INPUTS = {
    "screenplay": set(), "voice": {"screenplay"}, "shots": {"screenplay", "voice"},
    "faces": {"screenplay", "shots"}, "music": {"screenplay", "voice"},
    "cut": {"voice", "shots", "faces", "music"},
}


def module_of(path: Path, root: Path) -> str:
    return path.relative_to(root).parts[0].removesuffix(".rs")


def functions(text: str):
    """(name, lines) of every fn, by brace matching from its signature."""
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*(pub(\([^)]*\))? )?(const )?(unsafe )?fn (\w+)", line)
        if not m:
            continue
        depth, started = 0, False
        for j in range(i, len(lines)):
            code = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j].split("//")[0])
            depth += code.count("{") - code.count("}")
            started = started or "{" in code
            if started and depth <= 0:
                out.append((m.group(5), j - i + 1))
                break
            if not started and code.rstrip().endswith(";"):
                break
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = Path(args[0] if args else "src")
    files = sorted(root.rglob("*.rs"))
    sizes, fns, ups = [], [], []
    for f in files:
        text = f.read_text()
        sizes.append((len(text.split("\n")) - 1, str(f)))
        code = text.split("#[cfg(test)]")[0]
        code = "\n".join(l for l in code.split("\n") if not l.lstrip().startswith("//"))
        fns += [(n, name, str(f)) for name, n in functions(code)]
        here = module_of(f, root)
        for target in sorted(set(re.findall(r"\b(?:crate|benjamin)::(\w+)", code))):
            if target == here or target not in FLOORS:
                continue
            a, b = FLOORS.get(here, 4), FLOORS[target]
            if b > a or (a == b == 2 and target not in INPUTS.get(here, set())):
                ups.append(f"{f} -> {target}")
    sizes.sort(reverse=True)
    fns.sort(reverse=True)
    print("largest files:", ", ".join(f"{p} {n}" for n, p in sizes[:5]))
    print("files over 600 lines:", sum(n > 600 for n, _ in sizes))
    print("longest functions:", ", ".join(f"{name} ({p}) {n}" for n, name, p in fns[:5]))
    print("functions over 80 lines:", sum(n > 80 for n, _, _ in fns))
    if "--long" in sys.argv:
        for n, name, p in fns:
            if n > 80:
                print(f"  {name} ({p}) {n}")
    print(f"imports running back up: {len(ups)}")
    for u in ups:
        print("  " + u)


main()
