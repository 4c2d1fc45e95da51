#!/bin/bash
# The gimp suite, inside the trixie chroot of tools/gimp3-env (run-gimp-tests.sh calls it):
# builds the plug-in and the sd35 CLI, installs the plug-in with `meson install` into the
# throw-away profile, lays out the tiny golden models as an SD 3.5 release folder, then runs
# the Python-Fu and Script-Fu checks in gimp-console (always --quit, always under timeout),
# once more with the model loaded per call, to compare latencies, and the i18n section once
# more under LANGUAGE=de (the plug-in's texts must come back German through the PDB).
# env (from gimp3-env): GIMP3_DIRECTORY, GIMP3_ENV_TMP, SD35_SOURCE_DIR, SD35_SHARED_DIR
#      SD35_GIMP_BUILD  build folder inside the chroot (kept between runs for speed)
#      SD35_TEST_ONLY   comma-separated Python sections to run (default: all)
#      SD35_GIMP_MESON_ARGS  extra `meson setup` options for a new build folder, e.g.
#                       -Db_sanitize=address,undefined (with SD35_GIMP_BUILD elsewhere)
#      SD35_ASAN_OPTIONS / SD35_UBSAN_OPTIONS  become ASAN_OPTIONS / UBSAN_OPTIONS
set -euo pipefail
SRC=$SD35_SOURCE_DIR
# one build folder per source tree (a fresh clone elsewhere must not reuse another tree's)
B=${SD35_GIMP_BUILD:-/var/tmp/sd35-gimp-build-$(printf %s "$SRC" | md5sum | cut -c1-8)}
T=$GIMP3_ENV_TMP
G="timeout ${SD35_GIMP_TIMEOUT:-600} gimp-console-3.0 -i -d -f"
rc=0
[ -n "${SD35_ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS=$SD35_ASAN_OPTIONS
[ -n "${SD35_UBSAN_OPTIONS:-}" ] && export UBSAN_OPTIONS=$SD35_UBSAN_OPTIONS

# --- build + install ------------------------------------------------------------------------
if [ ! -f "$B/build.ninja" ]; then
  meson setup "$B" "$SRC" -Dgimp=enabled -Dcuda=disabled -Dshared-dir="$SD35_SHARED_DIR" \
    ${SD35_GIMP_MESON_ARGS:-} >"$T/meson-setup.log" 2>&1 || { cat "$T/meson-setup.log"; exit 1; }
fi
if ! meson configure "$B" -Dgimp-plugin-dir="$GIMP3_DIRECTORY/plug-ins" >"$T/meson-configure.log" 2>&1; then
  rm -rf "$B"  # a build folder from an incompatible tree: start afresh
  meson setup "$B" "$SRC" -Dgimp=enabled -Dcuda=disabled -Dshared-dir="$SD35_SHARED_DIR" \
    -Dgimp-plugin-dir="$GIMP3_DIRECTORY/plug-ins" ${SD35_GIMP_MESON_ARGS:-} >"$T/meson-setup.log" 2>&1 ||
    { cat "$T/meson-setup.log"; exit 1; }
fi
# build only what is installed (not every test of the tree); when something else installable
# appeared, fall back to building everything
targets="plugin/gimp-sd35 engine/sd35"
grep -q '^build gimp-sd35-gmo:' "$B/build.ninja" && targets="$targets gimp-sd35-gmo"
ninja -C "$B" $targets >"$T/ninja.log" 2>&1 || { tail -40 "$T/ninja.log"; exit 1; }
if ! meson install -C "$B" --no-rebuild --quiet >"$T/install.log" 2>&1; then
  ninja -C "$B" >"$T/ninja.log" 2>&1 || { tail -40 "$T/ninja.log"; exit 1; }
  meson install -C "$B" --quiet >"$T/install.log" 2>&1 || { cat "$T/install.log"; exit 1; }
fi
BIN=$GIMP3_DIRECTORY/plug-ins/gimp-sd35/gimp-sd35
[ -x "$BIN" ] || { echo "FAIL meson install did not install $BIN"; exit 1; }
echo "ok   meson install -> $BIN"
if ldd "$BIN" | grep -q 'libgimpui\|libgtk-3'; then
  echo "FAIL the plug-in links libgimpui / GTK 3:"; ldd "$BIN" | grep 'gimpui\|gtk'; rc=1
else
  echo "ok   the plug-in links libgimp-3.0 and not libgimpui-3.0 / GTK 3"
fi

# development-only code (engine/dev: benchmarks, random test models, PNG helpers; library
# sd35dev) must not be in the plug-in: none of sd35dev's global symbols, and no symbol named
# after a benchmark or test model
DEV_LIB=$B/engine/libsd35dev.a
if ! command -v nm >/dev/null; then
  echo "info nm missing: the plug-in's symbols were not checked"
elif [ ! -f "$DEV_LIB" ]; then
  ninja -C "$B" engine/libsd35dev.a >>"$T/ninja.log" 2>&1 || true
fi
if command -v nm >/dev/null && [ -f "$DEV_LIB" ]; then
  nm -g --defined-only "$DEV_LIB" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u >"$T/dev-syms"
  nm "$BIN" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u >"$T/bin-syms"
  both=$(comm -12 "$T/dev-syms" "$T/bin-syms" | head -5 || true)
  named=$(grep -E 'bench|test_model|mmdit_random|image_png' "$T/bin-syms" | head -5 || true)
  if [ ! -s "$T/bin-syms" ]; then
    echo "FAIL nm read no symbols from $BIN"; rc=1
  elif [ -n "$both$named" ]; then
    echo "FAIL the plug-in holds development code: $(echo $both $named)"; rc=1
  else
    echo "ok   nm: none of the $(wc -l <"$T/dev-syms") global symbols of sd35dev (bench, test" \
         "models, PNG) and no bench / test-model symbol among the plug-in's $(wc -l <"$T/bin-syms")"
  fi
fi

# --- the tiny golden models as an official release folder -----------------------------------
M=$T/model
GM=$SD35_SHARED_DIR/golden/models
TK=$SD35_SHARED_DIR/tokenizers
mkdir -p "$M"/{text_encoders,text_encoder,text_encoder_2,text_encoder_3,tokenizer,tokenizer_2,tokenizer_3}
ln -s "$GM/sd3.5_tiny_large.safetensors" "$M/sd3.5_large.safetensors"
ln -s "$GM/clip_l.safetensors" "$M/text_encoders/clip_l.safetensors"
ln -s "$GM/clip_g.safetensors" "$M/text_encoders/clip_g.safetensors"
ln -s "$GM/t5xxl.safetensors" "$M/text_encoders/t5xxl_fp16.safetensors"
for d in text_encoder text_encoder_2 text_encoder_3; do ln -s "$GM/$d/config.json" "$M/$d/config.json"; done
for d in tokenizer tokenizer_2; do
  ln -s "$TK/clip/vocab.json" "$M/$d/vocab.json"; ln -s "$TK/clip/merges.txt" "$M/$d/merges.txt"
done
ln -s "$TK/t5/spiece.model" "$M/tokenizer_3/spiece.model"
ln -s "$TK/t5/tokenizer.json" "$M/tokenizer_3/tokenizer.json"

# SD35_MODEL: what an empty `model` argument discovers (checked once)
export SD35_TEST_MODEL=$M SD35_MODEL=$M SD35_CLI=$B/engine/sd35 SD35_TEST_OUT=$T/out
mkdir -p "$SD35_TEST_OUT"

# --- Python-Fu --------------------------------------------------------------------------------
show () { grep -E '^(ok|FAIL|info|RESULT)|gimp-sd35:|Traceback|Error' "$1" | grep -v 'gimp_flush\|dbus' || true; }
# python_fu SCRIPT LOG WHAT [VAR=value ...]: tests/gimp/SCRIPT (after its helpers, pdb_check.py)
# in the headless GIMP with the variables given; prints its checks; rc=1 unless RESULT: PASS
python_fu () {
  local script=$1 log=$2 what=$3
  shift 3
  if env "$@" $G --batch-interpreter=python-fu-eval \
       -b "exec(open('$SRC/tests/gimp/pdb_check.py').read()); exec(open('$SRC/tests/gimp/$script').read())" \
       --quit >"$log" 2>&1 && grep -q '^RESULT: PASS' "$log"; then
    show "$log"
  else
    show "$log"; echo "FAIL $what (log above)"; rc=1
  fi
}
echo "### Python-Fu checks (resident engine)"
python_fu check_plugin.py "$T/python.log" "Python-Fu checks"

# --- hostile inputs through the PDB (tests/gimp/check_hostile.py) ---------------------------
if [ -z "${SD35_TEST_ONLY:-}" ] || [[ ",$SD35_TEST_ONLY," == *,hostile,* ]]; then
  echo "### hostile inputs: bad model folder, bad tokenizer files, bomb image"
  python_fu check_hostile.py "$T/hostile.log" "hostile-input checks"
fi

# --- Script-Fu --------------------------------------------------------------------------------
if [ -z "${SD35_TEST_ONLY:-}" ] || [[ ",$SD35_TEST_ONLY," == *,script-fu,* ]]; then
  echo "### Script-Fu checks"
  if $G --batch-interpreter=plug-in-script-fu-eval \
       -b "(begin (define sd35-model \"$M\") (load \"$SRC/tests/gimp/check_plugin.scm\"))" --quit \
       >"$T/scheme.log" 2>&1 && grep -q 'script-fu-Warning: RESULT: PASS\|RESULT: PASS' "$T/scheme.log"; then
    grep -E 'ok   |FAIL|info|RESULT' "$T/scheme.log" | sed 's/^.*script-fu-Warning: //'
  else
    sed 's/^.*script-fu-Warning: //' "$T/scheme.log" | grep -v 'gimp_flush\|dbus' | tail -30
    echo "FAIL Script-Fu checks"; rc=1
  fi
fi

# --- per-call loading, for the latency comparison ----------------------------------------------
if [ -z "${SD35_TEST_ONLY:-}" ] || [[ ",$SD35_TEST_ONLY," == *,per-call,* ]]; then
  echo "### per-call loading (SD35_NO_RESIDENT=1) and the idle timeout (SD35_IDLE_TIMEOUT=2)"
  if SD35_NO_RESIDENT=1 $G --batch-interpreter=python-fu-eval \
       -b "exec(open('$SRC/tests/gimp/check_latency.py').read())" --quit >"$T/percall.log" 2>&1 &&
     SD35_IDLE_TIMEOUT=2 $G --batch-interpreter=python-fu-eval \
       -b "exec(open('$SRC/tests/gimp/check_latency.py').read())" --quit >"$T/idle.log" 2>&1; then
    show "$T/percall.log"; show "$T/idle.log"
  else
    show "$T/percall.log"; show "$T/idle.log"; echo "FAIL per-call / idle checks"; rc=1
  fi
fi

# --- German ------------------------------------------------------------------------------------
# GIMP starts its plug-ins in its own language: the same profile, now with LANGUAGE=de.  glibc
# ignores LANGUAGE under C.UTF-8, hence a German locale (localedef, package locales) in $T.
if [ -z "${SD35_TEST_ONLY:-}" ] || [[ ",$SD35_TEST_ONLY," == *,i18n,* ]]; then
  echo "### German: menu labels, blurbs and errors through the PDB (LANGUAGE=de)"
  de_env=(LANGUAGE=de SD35_EXPECT_LANG=de SD35_TEST_ONLY=i18n)
  mkdir -p "$T/locale"
  if localedef -i de_DE -c -f UTF-8 "$T/locale/de_DE.UTF-8" >"$T/localedef.log" 2>&1 ||
     [ -f "$T/locale/de_DE.UTF-8/LC_CTYPE" ]; then
    de_env+=(LOCPATH="$T/locale" LANG=de_DE.UTF-8)
  else
    echo "info localedef de_DE.UTF-8 failed ($(tail -1 "$T/localedef.log")): LANGUAGE alone"
  fi
  python_fu check_plugin.py "$T/german.log" "German checks" "${de_env[@]}"
fi
exit $rc
