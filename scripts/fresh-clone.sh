#!/usr/bin/env bash
# What a newcomer does: clone the repository into an empty directory and run the README's first command verbatim.
# Fails unless it exits 0, synthesizes the example platform into dist/ and leaves `git status` clean (no rewritten
# lockfile, no stray output). Run by `npm test`; uses the committed state (HEAD), as a fresh clone would.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
# The first command line of the README's "Start here" block, without its trailing comment.
cmd="$(awk '/^## Start here/{f=1} f&&/^```sh/{getline; print; exit}' "$repo/README.md" | sed 's/ *#.*$//')"
[ -n "$cmd" ] || { echo "fresh-clone: no command found in README's Start here section" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/repo"
cd "$work/repo"
echo "fresh-clone: running the README's first command: $cmd"
bash -c "$cmd" >"$work/out.log" 2>&1 || { tail -40 "$work/out.log" >&2; echo "fresh-clone: FAILED: $cmd" >&2; exit 1; }
n=$(find dist -name '*.yaml' | wc -l)
[ "$n" -ge 2 ] || { echo "fresh-clone: dist/ has $n YAML files after '$cmd'" >&2; exit 1; }
[ -d dist/00-base ] || { echo "fresh-clone: dist/00-base/ missing" >&2; exit 1; }
dirty="$(git status --porcelain)"
[ -z "$dirty" ] || { echo "fresh-clone: the working tree is not clean after '$cmd':" >&2; echo "$dirty" >&2; exit 1; }
echo "fresh-clone: ok ($n files in dist/, working tree clean)"
