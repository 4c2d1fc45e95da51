#!/bin/bash
# The GTK 4 dialog in a real GIMP 3 under Xvfb, inside the trixie chroot of tools/gimp3-env
# (meson test 'gimp-dialog', suite gimp):
#   tools/gimp3-env tests/gimp/test_dialog.sh
# 1. builds and installs the plug-in (with ui/ and the catalogues) into the throw-away
#    profile, and checks that the binary links libgtk-4 and not libgtk-3 / libgimpui;
# 2. gimp-console runs plug-in-sd35-txt2img INTERACTIVE (tests/gimp/dialog_batch.py) on a
#    128×128 image with the tiny golden models, from FRESH settings (a new profile, nothing
#    pre-set), driven by xdotool as a first-time user: the prompt starts empty with a hint,
#    Generate with it empty is refused with a clear message; in a window made small the wheel
#    over Guidance scrolls the form and leaves the value alone; the prompt typed into the
#    empty field names the layer; the seed shows "Random" and the seed used is offered
#    after the run; a typed seed is the seed used; Escape cancels a second try (nothing
#    added), Escape closes; then a batch of 3 ends as thumbnails, and "Add selected" with
#    two of them chosen adds exactly those two layers; screenshots before / during / after /
#    batch;
# 3. the same dialog with LANGUAGE=de must be titled "… Text zu Bild", show German labels,
#    and say what went wrong with a missing model in German without one English word or
#    variable name (those stay under Details);
# 4. in the GUI gimp-3.0 with the image in a display, Image to Image with a Turbo model: the
#    dialog is transient for the image window, follows GIMP's colour scheme (dark by
#    default), and shows the steps that will run at the strength typed (2 of 4 at 0.5), which
#    the run then reports.
# The dialog writes its events and labels to $SD35_DIALOG_DUMP (see ui/sd35-dialog-actions.c).
# env: SD35_UI_BUILD (build folder in the chroot), SD35_UI_OUT (keep logs, dumps and
#      screenshots there; default: the throw-away run folder), SD35_SCREENSHOTS_DIR (copy the PNGs there,
#      e.g. $SD35_SOURCE_DIR/docs/screenshots)
set -uo pipefail
SRC=$SD35_SOURCE_DIR
# one build folder per source tree (a fresh clone elsewhere must not reuse another tree's)
B=${SD35_UI_BUILD:-/var/tmp/sd35-ui-build-$(printf %s "$SRC" | md5sum | cut -c1-8)}
T=${GIMP3_ENV_TMP:-$(mktemp -d)}
OUT=${SD35_UI_OUT:-$T/out}
mkdir -p "$OUT"
fails=0
ok ()   { echo "ok   $*"; }
fail () { echo "FAIL $*"; fails=$((fails + 1)); }

for tool in xvfb-run xdotool import convert gimp-console-3.0; do
  command -v $tool >/dev/null || { echo "SKIP: $tool missing in the chroot"; exit 77; }
done

# --- 1. build, install, link check --------------------------------------------------------
if [ ! -f "$B/build.ninja" ]; then
  meson setup "$B" "$SRC" -Dgimp=enabled -Dui=enabled -Dcuda=disabled \
    -Dshared-dir="$SD35_SHARED_DIR" >"$T/meson-setup.log" 2>&1 || { cat "$T/meson-setup.log"; exit 1; }
fi
meson configure "$B" -Dgimp-plugin-dir="$GIMP3_DIRECTORY/plug-ins" >/dev/null
meson configure "$B" -Dui=enabled >/dev/null
# only what gets installed: a broken test elsewhere in the tree must not stop this one
ninja -C "$B" plugin/gimp-sd35 engine/sd35 gimp-sd35-gmo >"$T/ninja.log" 2>&1 ||
  { tail -40 "$T/ninja.log"; exit 1; }
meson install -C "$B" --no-rebuild --quiet >"$T/install.log" 2>&1 || { cat "$T/install.log"; exit 1; }
BIN=$GIMP3_DIRECTORY/plug-ins/gimp-sd35/gimp-sd35
[ -x "$BIN" ] || { echo "FAIL meson install did not install $BIN"; exit 1; }
needed=$(readelf -d "$BIN" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
if echo "$needed" | grep -q '^libgtk-4\.so'; then ok "the plug-in links libgtk-4 ($(echo "$needed" | grep gtk))"
else fail "the plug-in does not link libgtk-4: $(echo $needed)"; fi
if ldd "$BIN" | grep -q 'libgtk-3\|libgimpui\|libgimpwidgets'; then
  fail "the plug-in pulls in GTK 3 / libgimpui: $(ldd "$BIN" | grep 'gtk-3\|gimpui\|gimpwidgets')"
else ok "no libgtk-3, libgimpui-3.0 or libgimpwidgets-3.0 in ldd"; fi
MO=$GIMP3_DIRECTORY/plug-ins/gimp-sd35/locale/de/LC_MESSAGES/gimp-sd35.mo
[ -f "$MO" ] && ok "German catalogue installed beside the plug-in" || fail "no $MO"

# --- the tiny golden models as an official release folder ---------------------------------
M=$T/model GM=$SD35_SHARED_DIR/golden/models TK=$SD35_SHARED_DIR/tokenizers
[ -d "$GM" ] || { echo "SKIP: no golden models in $GM"; exit 77; }
rm -rf "$M"
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
# a LoRA beside the model: the dialog lists it (switched off)
mkdir -p "$M/loras" && ln -s "$SRC/tests/data/lora/kohya.safetensors" "$M/loras/kohya.safetensors"
ln -s "$TK/t5/tokenizer.json" "$M/tokenizer_3/tokenizer.json"
export SD35_MODEL=$M    # the dialog's "Automatic" model finds it as the sd35 CLI does

# --- 2./3. the dialog under Xvfb -------------------------------------------------------------
export OUT SRC
xvfb-run -a -s "-screen 0 1366x768x24" bash "$SRC/tests/gimp/dialog_drive.sh"
rc=$?
fails=$((fails + rc))

if [ -n "${SD35_SCREENSHOTS_DIR:-}" ]; then
  mkdir -p "$SD35_SCREENSHOTS_DIR"
  for f in dialog-before dialog-during dialog-after dialog-batch dialog-de dialog-de-error dialog-dark; do
    [ -f "$OUT/$f.png" ] && convert "$OUT/$f.png" -strip -colors 256 PNG8:"$SD35_SCREENSHOTS_DIR/$f.png"
  done
  echo "info screenshots copied to $SD35_SCREENSHOTS_DIR"
fi
[ $fails -eq 0 ] && echo "RESULT: PASS" || echo "RESULT: FAIL ($fails)"
[ $fails -eq 0 ]
