#!/bin/sh
# Installs the Python component of a build tree into a fresh directory (what
# `./dev python DIR` does) and imports the package from there, away from the
# source and build trees.
# usage: install_test.sh <build dir> <python>
set -eu
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cmake --install "$1" --component python --prefix "$dir" >/dev/null
cd /
PYTHONPATH="$dir" "$2" -P -c "
import callcache, callcache.telethon, callcache.testing.fake_telegram
assert callcache.__file__.startswith('$dir'), callcache.__file__
engine = callcache.Engine(namespaces={'n': {'ttl': 60}})
engine.cache.put('n', 'k', 42)
print('installed callcache works:', engine.cache.get('n', 'k'))
"
