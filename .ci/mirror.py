#!/usr/bin/env python3
"""Mirror a checkout into a directory whose files change only when their content does.

Usage: mirror.py SOURCE MIRROR

Cargo decides what to rebuild by file modification times. A fresh clone has
new ones on every file, so a CI run on it rebuilds every workspace crate in
each profile it builds (debug tests, the release images, the instrumented
fuzz build: about 14 minutes on two cores) although the cached dependencies
are warm. CI runs from this mirror instead: a file is copied (getting a new
mtime) only when its bytes differ, files that left the checkout are removed,
and everything else keeps the mtime cargo already saw.

What is mirrored: every file `git ls-files` lists in SOURCE (a CI checkout
has nothing else); not `.git` (no CI step uses git).
Left alone in MIRROR: build and install directories the tiers create there
(node_modules, target, .venv); they are neither copied nor deleted.
"""

import filecmp
import os
import shutil
import subprocess
import sys

# Created by the tiers inside the tree; never part of a checkout.
KEEP = {"node_modules", "target", ".venv", "__pycache__"}


def tracked(source):
    out = subprocess.run(
        ["git", "-C", source, "ls-files", "-z", "--cached"],
        check=True,
        capture_output=True,
    ).stdout
    return {p for p in out.decode().split("\0") if p and os.path.lexists(os.path.join(source, p))}


def same(a, b):
    if os.path.islink(a) or os.path.islink(b):
        return os.path.islink(a) and os.path.islink(b) and os.readlink(a) == os.readlink(b)
    if not os.path.isfile(b):
        return False
    if os.stat(a).st_mode & 0o111 != os.stat(b).st_mode & 0o111:
        return False
    return filecmp.cmp(a, b, shallow=False)


def copy(a, b):
    os.makedirs(os.path.dirname(b), exist_ok=True)
    if os.path.lexists(b) or os.path.isdir(b):
        if os.path.isdir(b) and not os.path.islink(b):
            shutil.rmtree(b)
        else:
            os.unlink(b)
    if os.path.islink(a):
        os.symlink(os.readlink(a), b)
    else:
        shutil.copyfile(a, b)
        shutil.copymode(a, b)


def main():
    source, mirror = (os.path.abspath(p) for p in sys.argv[1:3])
    files = tracked(source)
    os.makedirs(mirror, exist_ok=True)
    changed = 0
    for path in sorted(files):
        a, b = os.path.join(source, path), os.path.join(mirror, path)
        if not same(a, b):
            copy(a, b)
            changed += 1
    removed = 0
    for root, dirs, names in os.walk(mirror, topdown=True):
        rel_root = os.path.relpath(root, mirror)
        dirs[:] = [d for d in dirs if d not in KEEP]
        for name in names:
            rel = os.path.normpath(os.path.join(rel_root, name))
            if rel not in files:
                os.unlink(os.path.join(root, name))
                removed += 1
    for root, dirs, names in os.walk(mirror, topdown=False):
        parts = set(os.path.relpath(root, mirror).split(os.sep))
        if root != mirror and not parts & KEEP and not os.listdir(root):
            os.rmdir(root)
    print(f"mirror {mirror}: {len(files)} files, {changed} copied, {removed} removed")


if __name__ == "__main__":
    main()
