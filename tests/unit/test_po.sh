#!/bin/sh
# The translations (po/): every .po compiles with msgfmt --check; po/gimp-sd35.pot holds
# exactly the msgids the sources in po/POTFILES have today (regenerated with xgettext and the
# arguments of meson's 'glib' preset, i.e. what `ninja gimp-sd35-pot` runs); every msgid of
# the .pot is translated, not fuzzy, in every language of po/LINGUAS.
# Fix a failure with:  ninja -C BUILD gimp-sd35-pot gimp-sd35-update-po, then translate.
# (That the plug-in links GTK 4 and not GTK 3 is checked where it is built, in the chroot:
# tests/gimp/test_dialog.sh.)
set -u
SRC=${SD35_SOURCE_DIR:-$(dirname "$0")/../..}
PO=$SRC/po
for t in msgfmt xgettext msgcat msgcmp; do
  command -v $t >/dev/null || { echo "SKIP: $t (gettext) is not installed"; exit 77; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
ok ()   { echo "ok   $*"; }
fail () { echo "FAIL $*"; fails=$((fails + 1)); }

# 1. msgfmt --check (format strings, header, plural forms) for each .po
for po in "$PO"/*.po; do
  if out=$(msgfmt --check --statistics -o "$tmp/x.mo" "$po" 2>&1); then
    ok "msgfmt --check $(basename "$po"): $out"
  else
    fail "msgfmt --check $(basename "$po"):"; echo "$out"
  fi
done

# 2. the .pot is up to date with the sources
msgids () {  # the msgid / msgid_plural lines of a catalogue, sorted, one per line
  msgcat --no-location --no-wrap --sort-output "$1" | grep -E '^msgid(_plural)? ' | grep -v '^msgid ""$'
}
( cd "$SRC" && xgettext --from-code=UTF-8 --add-comments --keyword=_ --keyword=N_ \
    --keyword=C_:1c,2 --keyword=NC_:1c,2 --keyword=g_dcgettext:2 --keyword=g_dngettext:2,3 \
    --keyword=g_dpgettext2:2c,3 --flag=N_:1:pass-c-format --flag=C_:2:pass-c-format \
    --flag=NC_:2:pass-c-format --flag=g_dngettext:2:pass-c-format \
    --flag=g_strdup_printf:1:c-format --flag=g_set_error:4:c-format \
    --flag=g_error_new:3:c-format --package-name=gimp-sd35 \
    -f po/POTFILES -D . -o "$tmp/fresh.pot" ) || { fail "xgettext failed"; exit 1; }
msgids "$tmp/fresh.pot" >"$tmp/fresh.ids"
msgids "$PO/gimp-sd35.pot" >"$tmp/pot.ids"
if cmp -s "$tmp/fresh.ids" "$tmp/pot.ids"; then
  ok "po/gimp-sd35.pot is up to date ($(grep -c '^msgid ' "$tmp/pot.ids") msgids)"
else
  fail "po/gimp-sd35.pot is out of date with the sources (< sources, > .pot):"
  diff "$tmp/fresh.ids" "$tmp/pot.ids" | grep '^[<>]' | head -20
fi

# 3. every language translates every msgid of the .pot
for lang in $(grep -v '^#' "$PO/LINGUAS"); do
  po=$PO/$lang.po
  [ -f "$po" ] || { fail "po/LINGUAS lists $lang but there is no $lang.po"; continue; }
  if out=$(msgcmp "$po" "$tmp/fresh.pot" 2>&1); then
    stats=$(msgfmt --statistics -o /dev/null "$po" 2>&1)
    case $stats in
      *fuzzy*|*untranslated*) fail "$lang.po is incomplete: $stats" ;;
      *) ok "$lang.po translates every msgid ($stats)" ;;
    esac
  else
    fail "$lang.po lacks translations:"; echo "$out" | head -20
  fi
done
[ $fails -eq 0 ] && echo "RESULT: PASS" || echo "RESULT: FAIL ($fails)"
[ $fails -eq 0 ]
