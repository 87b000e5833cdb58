#!/usr/bin/env python3
"""The gateway's source layers, checked (`make lint`, `make test`).

  layers.py includes   every #include of a project header goes down or
                       stays in its own folder, names its folder, and no
                       two modules include each other, directly or round
                       a longer cycle
  layers.py readme     the README's "How it is built" names every module
                       with its folder, and names none that is gone

The layers, bottom up (a folder may include its own and those listed):

  gateway/lib      nothing else
  gateway/http     lib
  gateway/policy   lib
  gateway/audit    lib
  gateway/app      lib, http, policy, audit
  gateway/         everything (main, server wiring, admin, metrics, eval)

Prints each problem as "file:line: what" and exits 1 when there is one.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SRC = os.path.join(ROOT, "gateway")
TOP = ""
MAY_INCLUDE = {
    "lib": {"lib"},
    "http": {"lib", "http"},
    "policy": {"lib", "policy"},
    "audit": {"lib", "audit"},
    "app": {"lib", "http", "policy", "audit", "app"},
    TOP: {"lib", "http", "policy", "audit", "app", TOP},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources():
    """(folder, module, path) for every .c and .h under gateway/."""
    out = []
    for folder in MAY_INCLUDE:
        d = os.path.join(SRC, folder) if folder else SRC
        for name in sorted(os.listdir(d)):
            if name.endswith((".c", ".h")):
                out.append((folder, name[:-2], os.path.join(d, name)))
    return out


def check_includes():
    problems = []
    found = sources()
    headers = {(f, m) for f, m, p in found if p.endswith(".h")}
    edges = {}
    for folder, module, path in found:
        rel = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                target = m.group(1)
                parts = target.split("/")
                if len(parts) == 1:
                    tfolder, tname = TOP, parts[0]
                elif len(parts) == 2:
                    tfolder, tname = parts
                else:
                    problems.append(f"{rel}:{lineno}: include \"{target}\": name a header "
                                    "as \"folder/name.h\" (or \"name.h\" at the top)")
                    continue
                if not tname.endswith(".h") or (tfolder, tname[:-2]) not in headers:
                    problems.append(f"{rel}:{lineno}: include \"{target}\": no such header "
                                    "in gateway/ (headers outside a top-level file are "
                                    "named with their folder)")
                    continue
                if tfolder not in MAY_INCLUDE[folder]:
                    problems.append(
                        f"{rel}:{lineno}: include \"{target}\" goes up: "
                        f"gateway/{folder or ''} may include only "
                        f"{', '.join(sorted(x or 'top' for x in MAY_INCLUDE[folder]))}")
                src = (folder, module)
                dst = (tfolder, tname[:-2])
                if src != dst:
                    edges.setdefault(src, set()).add(dst)
    for cycle in cycles(edges):
        names = " -> ".join(f"{f + '/' if f else ''}{m}" for f, m in cycle + cycle[:1])
        problems.append(f"gateway: include cycle: {names}")
    return problems


def cycles(edges):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check_readme():
    """Every module is in the README's map as `folder/name.c`, and every
    module the map names exists."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        text = fh.read()
    m = re.search(r"^## How it is built\n(.*?)(?=^## )", text, re.S | re.M)
    if not m:
        return ["README.md: no \"## How it is built\" section"]
    section = m.group(1)
    # The module table's rows: "| `folder/name.c` | ... |".
    named = set(re.findall(r"^\| `((?:[a-z]+/)?[a-z_0-9]+\.c)` \|", section, re.M))
    problems = []
    have = set()
    for folder, module, path in sources():
        if not path.endswith(".c"):
            continue
        name = f"{folder}/{module}.c" if folder else f"{module}.c"
        have.add(name)
        if name not in named:
            problems.append(f"README.md: \"How it is built\" does not name gateway/{name} "
                            f"(write it as `{name}`)")
    for name in sorted(named - have):
        problems.append(f"README.md: \"How it is built\" names `{name}`, which is not in "
                        "gateway/")
    return problems


def main():
    what = sys.argv[1:] or ["includes", "readme"]
    problems = []
    for w in what:
        if w == "includes":
            problems += check_includes()
        elif w == "readme":
            problems += check_readme()
        else:
            print(f"usage: {sys.argv[0]} [includes] [readme]", file=sys.stderr)
            return 2
    for p in problems:
        print(p)
    if problems:
        print(f"layers: {len(problems)} problem(s)")
        return 1
    print(f"layers: {', '.join(what)}: no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
