#!/bin/sh
# Backend policy stays in the backend (issue 9): engine and model code ask struct backend
# (device_memory, backend_free_bytes, backend_work_budget) instead of comparing its name, and
# reach the backend only through ops.h's op_* wrappers (the sticky-error check, the debug size
# check), never through be->ops->... directly.  Files under engine/backend/ implement this and
# are exempt; engine/cli may print the name but not compare it.
set -u
SRC=${SD35_SOURCE_DIR:-$(dirname "$0")/../..}
ENG=$SRC/engine
[ -d "$ENG/backend" ] || { echo "SKIP: no engine/backend under $SRC"; exit 77; }
fails=0
fail () { echo "FAIL $*"; fails=$((fails + 1)); }

# A comparison of a backend's name: strcmp/strncmp/strcasecmp/g_str_equal/strstr on a
# backend's ->name or on a backend_name.  (Parsing the user's --backend cpu|cuda option in
# engine/cli compares an option string, not a backend's name, and is fine.)
CMP='(strn?(case)?cmp|g_str_equal|g_strcmp0|strstr|g_str_has_prefix) *\([^;]*'
NAME_CMP="${CMP}(be|backend|gpu|cpu)\)?->name|${CMP}backend_name"
DIRECT_OPS='->ops->'

# The patterns must catch the forms they are for (a test that cannot fail is no test).
for bad in 'if (strcmp (be->name, "cuda") == 0)' 'x = strcmp (e->be->name, "cpu") == 0;' \
           'taesd_preview_worth (strncmp (backend_name, "cpu", 3))' \
           'if (g_str_equal (backend->name, "vulkan"))'; do
  printf '%s\n' "$bad" | grep -Eq "$NAME_CMP" || fail "pattern misses: $bad"
done
printf '%s\n' '  be->ops->upload_f32 (be, t, x);' | grep -Fq -- "$DIRECT_OPS" \
  || fail "pattern misses a direct ops call"

hits=$(grep -rnE --include='*.c' --include='*.h' "$NAME_CMP" "$ENG" | grep -v "^$ENG/backend/")
if [ -n "$hits" ]; then
  fail "engine code compares a backend's name (ask struct backend instead, ops.h):"
  printf '%s\n' "$hits"
else
  echo "ok   no file under engine/ outside engine/backend/ compares a backend's name"
fi

hits=$(grep -rnF --include='*.c' --include='*.h' -- "$DIRECT_OPS" "$ENG" | grep -v "^$ENG/backend/")
if [ -n "$hits" ]; then
  fail "engine code calls the op table directly (use the op_* wrappers of ops.h):"
  printf '%s\n' "$hits"
else
  echo "ok   no file under engine/ outside engine/backend/ calls be->ops->... directly"
fi

# ops.h declares no query that only one backend answers (backend_cuda_new is the constructor).
hits=$(grep -nE 'backend_(cuda|cpu)_[a-z_]+ *\(' "$ENG/backend/ops.h" | grep -vE 'backend_(cuda|cpu)_new *\(')
if [ -n "$hits" ]; then
  fail "ops.h declares a backend-specific query:"; printf '%s\n' "$hits"
else
  echo "ok   ops.h declares no backend-specific query"
fi

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
