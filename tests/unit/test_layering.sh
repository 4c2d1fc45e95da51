#!/bin/sh
# Who may include whom (docs/ARCHITECTURE.md), checked on the sources: dependencies run one
# way, engine ← plug-in core (plugin/core) ← ui ← plug-in binary (plugin/*.c), and outside
# engine/ only the public sd35.h of the engine is seen.
#   1. engine/ includes nothing of plugin/ or ui/;
#   2. plugin/core includes only sd35.h (and json_file.h, the engine's bounded JSON reader)
#      and its own headers (no ui/, no plug-in binary);
#   3. ui/ includes only sd35.h, sd35-core.h and its own headers (no engine-internal header,
#      no plug-in binary header);
#   4. the plug-in binary includes the core, sd35.h, its own header and ui's public
#      sd35-dialog.h only;
#   5. the build files agree: the core and ui see the engine through engine_api_dep (sd35.h's
#      folder only), not engine_dep (every inner engine folder on the include path).
set -u
SRC=${SD35_SOURCE_DIR:-$(dirname "$0")/../..}
cd "$SRC" || exit 1
fails=0
ok ()   { echo "ok   $*"; }
fail () { echo "FAIL $*"; fails=$((fails + 1)); }

# quoted includes of the files given: "file: header" lines
includes () {
  grep -H -o '^#[[:space:]]*include[[:space:]]*"[^"]*"' "$@" 2>/dev/null |
    sed 's/#[[:space:]]*include[[:space:]]*"\(.*\)"/\1/'
}
# check NAME ALLOWED-REGEX FILES...: every quoted include of FILES matches ALLOWED-REGEX
check () {
  name=$1 allowed=$2; shift 2
  bad=$(includes "$@" | awk -F: -v re="$allowed" '{ h = $2; if (h !~ re) print }')
  n=$(includes "$@" | wc -l)
  if [ -n "$bad" ]; then
    fail "$name includes what it may not:"; echo "$bad" | sed 's/^/     /'
  else
    ok "$name: $n quoted includes, all allowed"
  fi
}

front_end_headers='sd35-core|sd35-plugin|sd35-dialog|sd35-models|sd35-preview'
bad=$(includes $(find engine -name '*.[ch]') | grep -E ":($front_end_headers)" || true)
[ -z "$bad" ] && ok "engine/ includes no plug-in or ui header" ||
  { fail "engine/ includes plug-in / ui headers:"; echo "$bad"; }

# its own headers, and of the engine sd35.h plus json_file.h (the depth-bounded JSON reader
# for parasites read from .xcf files, settings.c)
core_own=$(cd plugin/core && ls *.h | sed 's/\./\\./g' | paste -sd '|')
check "plugin/core" "^(sd35\\.h|json_file\\.h|$core_own)\$" plugin/core/*.[ch]

ui_own=$(cd ui && ls *.h | sed 's/\./\\./g' | paste -sd '|')
check "ui/" "^(sd35\\.h|sd35-core\\.h|$ui_own)\$" ui/*.[ch]

check "plug-in binary" '^(sd35\.h|sd35-core\.h|sd35-plugin\.h|sd35-dialog\.h)$' plugin/*.[ch]

for f in plugin/core/meson.build ui/meson.build; do
  [ -f "$f" ] || { fail "$f is missing"; continue; }
  if grep -v '^[[:space:]]*#' "$f" | grep -q 'engine_dep\b'; then
    fail "$f uses engine_dep (every engine folder on the include path); use engine_api_dep"
  else
    ok "$f sees the engine through engine_api_dep only"
  fi
done
grep -v '^[[:space:]]*#' plugin/meson.build plugin/core/meson.build ui/meson.build |
  grep -q 'engine_dev_dep\|sd35dev' &&
  fail "the plug-in links the development library sd35dev" ||
  ok "no plug-in meson.build links sd35dev (bench, test models)"

[ $fails -eq 0 ] && echo "RESULT: PASS" || echo "RESULT: FAIL ($fails)"
[ $fails -eq 0 ]
