#!/bin/bash
# Runs under xvfb-run for tests/gimp/test_dialog.sh (which exports OUT, SRC, SD35_MODEL): GIMP with the dialog open, driven by xdotool, checked through the dialog's
# event dump, GIMP's batch output and screenshots.  Exit status: the number of failures.
set -u
fails=0
ok ()   { echo "ok   $*"; }
fail () { echo "FAIL $*"; fails=$((fails + 1)); }
info () { echo "info $*"; }
# GTK's cairo renderer: under Xvfb the GL renderer runs on llvmpipe, whose one-time shader
# compilation at the first preview frame (0.3-5 s on a busy machine) would hide what the
# responsiveness check below measures, our threading
export GSK_RENDERER=cairo
G="timeout 300 gimp-console-3.0 -i -d -f --batch-interpreter=python-fu-eval"
BATCH="exec(open('$SRC/tests/gimp/dialog_batch.py').read())"

# wait_for FILE REGEX SECONDS: until FILE has a line matching REGEX
wait_for () {
  local i
  for ((i = 0; i < $3 * 10; i++)); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
# wait_count FILE REGEX N SECONDS: until FILE has at least N lines matching REGEX
wait_count () {
  local i
  for ((i = 0; i < $4 * 10; i++)); do
    [ "$(grep -cE "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0; sleep 0.1
  done
  return 1
}
# the region of a screenshot where the preview is, as grey standard deviation (0..1)
spread () {
  convert "$1" -crop "$2" +repage -colorspace Gray -format '%[fx:standard_deviation]' info:
}
open_dialog () {  # LOG DUMP [GIMP]: starts GIMP in the background, sets GP, WID, X Y WIDTH HEIGHT
  rm -f "$2"
  SD35_DIALOG_DUMP=$2 ${3:-$G} -b "$BATCH" --quit >"$1" 2>&1 &
  GP=$!
  WID=$(timeout 120 xdotool search --sync --name 'Stable Diffusion 3\.5' 2>/dev/null | head -1)
  if [ -z "$WID" ]; then
    fail "the dialog window never appeared"; grep -v 'gimp_flush\|dbus' "$1" | tail -20
    kill $GP 2>/dev/null; wait $GP 2>/dev/null; return 1
  fi
  wait_for "$2" '^title ' 20
  sleep 1  # drawn
  eval "$(xdotool getwindowgeometry --shell "$WID")"
  xdotool windowfocus --sync "$WID" 2>/dev/null || xdotool windowfocus "$WID" 2>/dev/null
  return 0
}
shot () { import -window root -crop "${WIDTH}x${HEIGHT}+${X}+${Y}" +repage "$OUT/$1.png"; }
# the first frame can take a few seconds (GL renderer on llvmpipe): until the window is drawn
shot_drawn () {
  local i
  for ((i = 0; i < 40; i++)); do
    shot "$1"
    awk -v s="$(convert "$OUT/$1.png" -colorspace Gray -format '%[fx:standard_deviation]' info:)" \
      'BEGIN { exit !(s > 0.01) }' && return 0
    sleep 0.5
  done
  fail "the dialog was never drawn ($1.png is uniform)"
}

# --- English: generate once, cancel once, close ---------------------------------------------
D=$OUT/dump-en.txt LOG=$OUT/gimp-en.log
if [ -z "${SD35_ONLY_DE:-}" ] && open_dialog "$LOG" "$D"; then
  ok "dialog opened: '$(xdotool getwindowname "$WID")' ${WIDTH}x${HEIGHT}"
  grep '^theme\|^parent' "$D" | sed 's/^/info /'
  shot_drawn dialog-before
  xdotool type --delay 15 "a red fox in the snow"
  sleep 0.5
  xdotool key ctrl+Return
  if wait_for "$D" '^step 20/' 120; then
    shot dialog-during
    read -r px py pw ph < <(sed -n 's/^preview-bounds //p' "$D" | head -1)
    crop="${pw}x${ph}+${px}+${py}"
    s0=$(spread "$OUT/dialog-before.png" "$crop"); s1=$(spread "$OUT/dialog-during.png" "$crop")
    info "preview area $crop: grey std-dev before $s0, during $s1"
    awk -v a="$s0" -v b="$s1" 'BEGIN { exit !(b > 0.02 && b > a + 0.01) }' &&
      ok "the preview shows a non-blank image during the generation" ||
      fail "the preview looks blank during the generation ($s1 vs $s0 before)"
    grep -q "^stage " "$D" && ok "stage reports: $(grep '^stage ' "$D" | cut -c7- | paste -sd '|')"
  else
    fail "no step 20 within 120 s"; tail -5 "$D"
  fi
  if wait_for "$D" '^event inserted' 180; then
    sleep 0.5; shot dialog-after
    ok "generate: $(grep '^event inserted' "$D")"
  else
    fail "the generation never finished"; tail -5 "$D"
  fi
  stall=$(sed -n 's/^event done max-stall-ms //p' "$D" | head -1)
  [ -n "$stall" ] && [ "$stall" -lt 250 ] &&
    ok "the dialog stayed responsive: longest main-loop stall ${stall} ms during the run" ||
    fail "the main loop stalled ${stall:-?} ms during the run (limit 250)"
  # second try, cancelled with Escape within a step
  xdotool key ctrl+Return
  if wait_count "$D" '^step 5/' 2 120; then
    xdotool key Escape
    if wait_for "$D" '^event cancelled' 30; then
      n=$(sed -n '/^event cancel-requested/,/^event cancelled/p' "$D" | grep -c '^step ')
      [ "$n" -le 2 ] && ok "Escape cancelled the run ($n step report(s) after the request)" ||
        fail "the run went on for $n steps after Escape"
    else
      fail "Escape did not cancel the run"
    fi
  else
    fail "the second generation did not start"
  fi
  sleep 0.5
  xdotool key Escape   # closes
  wait $GP; grc=$?
  [ $grc -eq 0 ] && ok "GIMP exited cleanly" || fail "GIMP exit status $grc"
  grep '^DIALOG' "$LOG" | sed 's/^/info /'
  [ "$(sed -n 's/^DIALOG added //p' "$LOG")" = 1 ] &&
    ok "the image gained exactly one layer (one Generate kept, the cancelled one added none)" ||
    fail "layers added: '$(sed -n 's/^DIALOG added //p' "$LOG")', expected 1"
  [ "$(grep -c '^event inserted 1 ' "$D")" = 1 ] && [ "$(grep -c '^event cancelled' "$D")" = 1 ] &&
    grep -q '^event closed inserted 1' "$D" && ok "dump: one insert, one cancel, closed" ||
    fail "unexpected dialog events: $(grep '^event' "$D" | paste -sd '|')"
  grep -q 'DIALOG layer a red fox in the snow \[seed [0-9]*\] 128 128' "$LOG" &&
    ok "the new layer is named after the typed prompt, 128×128" ||
    fail "no 128×128 layer named after the prompt"
fi

# --- German ------------------------------------------------------------------------------------
D=$OUT/dump-de.txt LOG=$OUT/gimp-de.log
# glibc ignores LANGUAGE under the C / C.UTF-8 locale: build a German one (localedef from
# the locales package) and point LOCPATH at it
mkdir -p "$OUT/locale"
if [ -d "$OUT/locale/de_DE.UTF-8" ] ||
   localedef -i de_DE -c -f UTF-8 "$OUT/locale/de_DE.UTF-8" >"$OUT/localedef.log" 2>&1; then
  export LOCPATH=$OUT/locale LANG=de_DE.UTF-8
else
  info "localedef de_DE.UTF-8 failed ($(tail -1 "$OUT/localedef.log")): trying LANGUAGE alone"
fi
export LANGUAGE=de
if SD35_MODEL=$OUT/no-such-model open_dialog "$LOG" "$D"; then
  title=$(xdotool getwindowname "$WID")
  [[ "$title" == *"Text zu Bild"* ]] && ok "German window title: $title" ||
    fail "window title not German: $title"
  for l in "Negativer Prompt" "Schritte" "Startwert" "Erweitert" "Bereit"; do
    grep -qx "label $l" "$D" && ok "German label: $l" || fail "no German label '$l'"
  done
  shot_drawn dialog-de
  # an impossible model: the error shows inline, in German, and nothing is added
  xdotool key ctrl+Return
  if wait_for "$D" '^event error' 60; then
    grep -q '^event error Das Modell konnte nicht geladen werden: ' "$D" &&
      ok "inline error in German: $(sed -n 's/^event error //p' "$D" | cut -c1-100)…" ||
      fail "unexpected error text: $(grep '^event error' "$D")"
    sleep 0.5; shot dialog-de-error
  else
    fail "no inline error for a missing model"
  fi
  xdotool key Escape
  wait $GP
  [ "$(sed -n 's/^DIALOG added //p' "$LOG")" = 0 ] && ok "a failed Generate, then Escape, added nothing" ||
    fail "a failed Generate and Escape changed the image"
  grep -q '^DIALOG status cancel' "$LOG" && ok "status CANCEL" ||
    fail "status: $(grep '^DIALOG status' "$LOG")"
fi
unset LANGUAGE LOCPATH
export LANG=C.UTF-8

# --- the GUI GIMP, Image to Image: transient for the image window, GIMP's (default dark)
# colour scheme, a Turbo model's defaults, one Generate over the layer ---------------------
D=$OUT/dump-gui.txt LOG=$OUT/gimp-gui.log
# the model: the tiny Large, named as SD3.5 Large Turbo; steps and guidance left to the model
TM=$OUT/turbo-model
rm -rf "$TM"; mkdir -p "$TM"
for f in "$SD35_MODEL"/*; do ln -s "$(readlink -f "$f")" "$TM/$(basename "$f")"; done
rm "$TM/sd3.5_large.safetensors"
ln -s "$(readlink -f "$SD35_MODEL/sd3.5_large.safetensors")" "$TM/sd3.5_large_turbo.safetensors"
if SD35_DIALOG_DISPLAY=1 SD35_MODEL=$TM SD35_DIALOG_STEPS=0 SD35_DIALOG_GUIDANCE=-1 \
   SD35_DIALOG_PROC=plug-in-sd35-img2img SD35_DIALOG_PROMPT="a lighthouse at dusk" \
   open_dialog "$LOG" "$D" \
     "timeout 300 gimp-3.0 -d -f -s --no-splash --batch-interpreter=python-fu-eval"; then
  image_win=$(xdotool search --name 'Untitled.*GIMP' 2>/dev/null | head -1)
  parent=$(sed -n 's/^parent x11 \(0x[0-9a-f]*\) (WM_TRANSIENT_FOR now \(0x[0-9a-f]*\))/\1 \2/p' "$D")
  info "image window: $(printf '0x%x' "${image_win:-0}"), dialog: $(grep '^parent' "$D")"
  [ -n "$image_win" ] && [ "$parent" = "$(printf '0x%x 0x%x' "$image_win" "$image_win")" ] &&
    ok "the dialog is transient for GIMP's image window (WM_TRANSIENT_FOR)" ||
    fail "transient parent: '$(grep '^parent' "$D")', image window ${image_win:-none}"
  scheme=$(sed -n 's/^theme gimprc theme-color-scheme=\([a-z]*\) .* -> \(.*\)$/\1 \2/p' "$D")
  case $scheme in
    "dark dark"|"gray dark"|"light light") ok "follows GIMP's colour scheme: $scheme" ;;
    *) fail "theme: $(grep '^theme' "$D")" ;;
  esac
  grep -q '^model (automatic) variant SD3.5 Large Turbo steps 4 (model default) guidance 1 (model default)' "$D" &&
    ok "a Turbo model fills its defaults: $(grep '^model ' "$D" | cut -d' ' -f3-)" ||
    fail "model defaults: $(grep '^model ' "$D")"
  title=$(xdotool getwindowname "$WID")
  [[ "$title" == *"Image to Image"* ]] && ok "img2img dialog: $title" || fail "title: $title"
  shot_drawn dialog-dark
  xdotool key ctrl+Return
  if wait_for "$D" '^event (inserted|error)' 120; then
    grep -q '^event inserted 1 size 128x128' "$D" && ok "img2img: $(grep '^event inserted' "$D")" ||
      fail "img2img: $(grep '^event' "$D" | paste -sd '|')"
  else
    fail "the img2img generation never finished"
  fi
  sleep 0.5
  xdotool key Escape
  wait $GP
  [ "$(sed -n 's/^DIALOG added //p' "$LOG")" = 1 ] && grep -q '^DIALOG status success' "$LOG" &&
    ok "img2img added one layer, status SUCCESS" ||
    fail "img2img: $(grep '^DIALOG' "$LOG" | paste -sd '|')"
fi
exit $fails
