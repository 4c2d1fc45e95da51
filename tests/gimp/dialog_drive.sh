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
# find_dialog SECONDS: the dialog's window id, polled while GIMP ($GP) runs.  Not `xdotool
# search --sync`: that search dies at once on an X BadWindow error when some other window
# closes during it (seen on a loaded machine, right after the previous GIMP quit).
find_dialog () {
  local t0=$SECONDS w=
  while [ $((SECONDS - t0)) -lt "$1" ]; do
    w=$(xdotool search --name 'Stable Diffusion 3\.5' 2>/dev/null | head -1)
    [ -n "$w" ] && { echo "$w"; return 0; }
    kill -0 "$GP" 2>/dev/null || return 1
    sleep 0.5
  done
  return 1
}
open_dialog () {  # LOG DUMP [GIMP]: starts GIMP in the background, sets GP, WID, X Y WIDTH HEIGHT
  rm -f "$2"
  SD35_DIALOG_DUMP=$2 ${3:-$G} -b "$BATCH" --quit >"$1" 2>&1 &
  GP=$!
  WID=$(find_dialog 120)
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
# bounds DUMP NAME: "X Y W H" of a field from the dialog's last "bounds" line (pixels in the
# dialog window; add the window's X Y for the screen)
bounds () {
  grep '^bounds ' "$1" | tail -1 | tr ' ' '\n' | grep -A4 -x "$2" | tail -4 | paste -sd ' '
}
# the form's scroll position (pixels) and its maximum
form_scroll () { grep '^bounds ' "$1" | tail -1 | sed -n 's/.* scroll \([0-9]*\)\/\([0-9-]*\).*/\1 \2/p'; }
# click_on DUMP NAME: a left click in the middle of that field
click_on () {
  local bx by bw bh
  read -r bx by bw bh < <(bounds "$1" "$2")
  [ -n "$bh" ] || { fail "no bounds for $2"; return 1; }
  xdotool mousemove $((X + bx + bw / 2)) $((Y + by + bh / 2)) click 1
}
# english words that must not appear in a German error (whole words, any case)
EN_WORDS='the|and|not|could|model|file|found|load|loaded|error|missing|such|folder|with|from|this|choose|try|please|check|set'

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

# --- English, fresh settings: empty prompt refused, wheel over a number, typing, seeds ------
D=$OUT/dump-en.txt LOG=$OUT/gimp-en.log
if [ -z "${SD35_ONLY_DE:-}" ] && open_dialog "$LOG" "$D"; then
  ok "dialog opened: '$(xdotool getwindowname "$WID")' ${WIDTH}x${HEIGHT}"
  grep '^theme\|^parent' "$D" | sed 's/^/info /'
  shot_drawn dialog-before
  # the LoRA in loras/ beside the model is listed, switched off
  grep -q '^loras-found 1 ' "$D" && grep -q '^loras none' "$D" &&
    ok "the LoRA beside the model is listed: $(grep '^loras-found' "$D" | tail -1)" ||
    fail "LoRA list: $(grep '^loras' "$D" | paste -sd '|')"
  # a first use starts with an empty prompt and a hint, not the procedure's example sentence
  [ "$(sed -n 's/^prompt //p' "$D" | head -1)" = "" ] && grep -q '^label Describe the picture' "$D" &&
    ok "fresh settings: the prompt is empty, with the hint '$(sed -n 's/^label \(Describe.*\)/\1/p' "$D")'" ||
    fail "fresh prompt: '$(grep '^prompt' "$D")', hint: $(grep -c '^label Describe' "$D")"
  # Generate with nothing typed: refused with a clear message, nothing starts
  xdotool key ctrl+Return
  if wait_for "$D" '^event refused empty-prompt' 10; then
    ok "empty prompt refused: $(sed -n 's/^event error //p' "$D" | head -1)"
  else
    fail "Generate with an empty prompt was not refused"
  fi
  # a smaller window: the form scrolls; the wheel over a number in it (Guidance, else the
  # first one in sight) scrolls the form and leaves the number alone
  xdotool windowsize "$WID" 900 420; sleep 1.5
  read -r fx fy fw fh < <(bounds "$D" form)
  field=
  for f in guidance steps seed; do
    read -r gx gy gw gh < <(bounds "$D" $f)
    [ -n "${gh:-}" ] && [ $((gy + gh / 2)) -gt "$fy" ] && [ $((gy + gh / 2)) -lt $((fy + fh)) ] &&
      { field=$f; break; }
  done
  read -r s0 smax < <(form_scroll "$D")
  if [ -n "$field" ]; then
    xdotool mousemove $((X + gx + gw / 2)) $((Y + gy + gh / 2)); sleep 0.3
    xdotool click --repeat 4 --delay 150 5; sleep 0.8
    read -r s1 _ < <(form_scroll "$D")
    info "form at 900×420: scroll $s0 → $s1 of $smax after 4 wheel clicks over $field"
    [ "${smax:-0}" -gt 0 ] && [ "${s1:-0}" -gt "${s0:-0}" ] &&
      ok "the wheel over $field scrolled the form ($s0 → $s1 px)" ||
      fail "the form did not scroll (scroll $s0 → $s1, max $smax)"
  else
    fail "no numeric field in sight in the form: $(grep '^bounds' "$D" | tail -1)"
  fi
  xdotool windowsize "$WID" "$WIDTH" "$HEIGHT"; sleep 1
  # type into the empty field (the focus is back in the prompt after the refusal)
  xdotool type --delay 15 "a lighthouse at dusk"
  sleep 0.5
  xdotool key ctrl+Return
  if wait_for "$D" '^event started' 20; then
    started=$(grep '^event started' "$D" | head -1)
    info "$started"
    case $started in
      *" steps 40 guidance 4.5"*) ok "$field is still the model's (40 steps, guidance 4.5) after the wheel" ;;
      *) fail "the wheel changed $field: $started" ;;
    esac
    case $started in
      *" shown Random "*) ok "an unlocked seed shows 'Random', not a number that would not be used" ;;
      *) fail "the seed field showed a number for a random seed: $started" ;;
    esac
  fi
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
  used=$(sed -n 's/^event started [0-9x]* seed \([0-9]*\) .*/\1/p' "$D" | head -1)
  offered=$(sed -n 's/^seed offered \([0-9]*\) .*/\1/p' "$D" | head -1)
  [ -n "$used" ] && [ "$offered" = "$used" ] &&
    ok "after the run the seed used ($used) is offered for reuse" ||
    fail "seed used '$used', offered '$offered'"
  stall=$(sed -n 's/^event done max-stall-ms //p' "$D" | head -1)
  # 1000 ms: a loaded 2-core machine (CI beside other work) delays the main loop by a few
  # hundred ms now and then (229 and 288 ms seen); waiting on the engine instead costs a
  # whole step or model load, seconds.
  [ -n "$stall" ] && [ "$stall" -lt 1000 ] &&
    ok "the dialog stayed responsive: longest main-loop stall ${stall} ms during the run" ||
    fail "the main loop stalled ${stall:-?} ms during the run (limit 1000)"
  # second try: a typed seed and 200 steps, cancelled with Escape within a step
  xdotool key alt+e; sleep 0.2; xdotool key ctrl+a; xdotool type --delay 15 "4242"
  xdotool key alt+s; sleep 0.2; xdotool key ctrl+a; xdotool type --delay 15 "200"
  sleep 0.3
  xdotool key ctrl+Return
  if wait_count "$D" '^event started' 2 20; then
    started=$(grep '^event started' "$D" | sed -n 2p)
    case $started in
      *" seed 4242 shown 4242 steps 200 "*) ok "the seed shown is the seed used: $started" ;;
      *) fail "typed seed 4242 and 200 steps: $started" ;;
    esac
  fi
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
  grep -qx "DIALOG layer a lighthouse at dusk \[seed $used\] 128 128" "$LOG" &&
    ok "the new layer is named after exactly the typed prompt and the seed used ($used), 128×128" ||
    fail "no 128×128 layer 'a lighthouse at dusk [seed $used]': $(grep '^DIALOG layer' "$LOG" | paste -sd '|')"

  # --- a batch of 3 as thumbnails; "Add selected" adds exactly the chosen ones ------------
  D=$OUT/dump-batch.txt LOG=$OUT/gimp-batch.log
  if SD35_DIALOG_PIXELS=1 open_dialog "$LOG" "$D"; then
    [ "$(sed -n 's/^prompt //p' "$D" | head -1)" = "a lighthouse at dusk" ] &&
      ok "the last prompt is remembered" || fail "remembered prompt: '$(grep '^prompt' "$D")'"
    click_on "$D" batch; sleep 0.2; xdotool key ctrl+a; xdotool type --delay 15 "3"
    xdotool key alt+s; sleep 0.2; xdotool key ctrl+a; xdotool type --delay 15 "4"
    sleep 0.3
    xdotool key ctrl+Return
    if wait_for "$D" '^event results 3 to-choose' 120; then
      ok "a batch of 3 is shown as thumbnails, nothing added yet"
      sleep 1.5
      shot dialog-batch
      click_on "$D" thumb0; sleep 0.3; click_on "$D" thumb2; sleep 0.3
      click_on "$D" add-selected
      if wait_for "$D" '^event inserted' 30; then
        ins=$(grep '^event inserted' "$D" | head -1)
        case $ins in
          *"event inserted 2 "*" seeds 4242,4244") ok "Add selected added exactly the chosen two: $ins" ;;
          *) fail "Add selected: $ins (expected seeds 4242,4244)" ;;
        esac
      else
        fail "Add selected added nothing"; grep '^thumb\|^event' "$D" | tail -5
      fi
    else
      fail "no thumbnails for a batch of 3"; grep '^event' "$D" | tail -5
    fi
    # the LoRA beside the model switched on changes the picture: the same batch again, and
    # seed 4242 of it added beside the one made without the LoRA
    read -r fx fy fw fh < <(bounds "$D" form)
    for ((i = 0; i < 6; i++)); do
      read -r lx ly lw lh < <(bounds "$D" lora0)
      [ -n "${lh:-}" ] && [ $((ly + lh)) -le $((fy + fh)) ] && [ "$ly" -ge "$fy" ] && break
      xdotool mousemove $((X + fx + 10)) $((Y + fy + fh / 2)) click --repeat 3 --delay 100 5
      sleep 0.8
    done
    n0=$(grep -c '^event results' "$D")
    if click_on "$D" lora0 && wait_for "$D" '^loras .*kohya\.safetensors:1' 10; then
      ok "the LoRA switched on in the dialog: $(grep '^loras ' "$D" | tail -1)"
      xdotool key ctrl+Return
      if wait_count "$D" '^event results' $((n0 + 1)) 180; then
        sleep 0.5
        click_on "$D" thumb0; sleep 0.3; click_on "$D" add-selected
        wait_count "$D" '^event inserted' 2 30 &&
          ok "with the LoRA: $(grep '^event inserted' "$D" | tail -1)" ||
          fail "the run with the LoRA added nothing"
        # switched off again: the next dialogs (remembered settings) run without it
        nn=$(grep -c '^loras none' "$D")
        sleep 0.3; click_on "$D" lora0 && wait_count "$D" '^loras none' $((nn + 1)) 10 ||
          fail "the LoRA did not switch off again"
      else
        fail "the run with the LoRA gave no results"; grep '^event' "$D" | tail -5
      fi
    else
      fail "no LoRA switch to click: $(grep '^loras\|^bounds' "$D" | tail -2 | paste -sd '|')"
    fi
    sleep 0.5
    xdotool key Escape
    wait $GP
    [ "$(sed -n 's/^DIALOG added //p' "$LOG")" = 3 ] &&
      [ "$(grep -c '^DIALOG layer a lighthouse at dusk \[seed 4242\]' "$LOG")" = 2 ] &&
      grep -q '^DIALOG layer a lighthouse at dusk \[seed 4244\]' "$LOG" &&
      ! grep -q '\[seed 4243\]' "$LOG" &&
      ok "the image gained the layers of seeds 4242 and 4244, not 4243, and 4242 with the LoRA" ||
      fail "batch layers: $(grep '^DIALOG' "$LOG" | paste -sd '|')"
    [ "$(grep '^DIALOG pixels .* \[seed 4242\]' "$LOG" | awk '{print $3}' | sort -u | wc -l)" = 2 ] &&
      ok "the LoRA changed the picture (seed 4242 without and with it differ)" ||
      fail "seed 4242 with the LoRA equals seed 4242 without: $(grep '^DIALOG pixels' "$LOG" | paste -sd '|')"
  fi
fi

# --- one GIMP session, one engine: the dialog, the dialog again, then a script ----------------
# The dialog runs in the resident extension's process (extension-sd35), on the engine a script's
# call uses.  Observed three ways: the dialog's dump says for each Generate whether the engine
# was "loaded" or "reused", with the holder's load count and the process id; the script's call
# logs "engine already loaded, reusing it"; plug-in-sd35-resident-status says loads=1.
D=$OUT/dump-shared.txt LOG=$OUT/gimp-shared.log
# generate_with_prompt DUMP N: Generate in the open dialog; an empty prompt (a fresh profile)
# is refused first, which puts the focus in the prompt, and a prompt is typed
generate_with_prompt () {
  xdotool key ctrl+Return
  if wait_count "$1" '^event refused empty-prompt' "$2" 3; then
    xdotool type --delay 15 "a red fox in the snow"; sleep 0.3
    xdotool key ctrl+Return
  fi
}
if [ -z "${SD35_ONLY_DE:-}" ] &&
   SD35_DIALOG_RUNS=2 SD35_DIALOG_THEN_PDB=1 open_dialog "$LOG" "$D"; then
  generate_with_prompt "$D" 1
  wait_for "$D" '^event engine' 120 || fail "first dialog: the generation never finished"
  sleep 0.5
  xdotool key Escape   # closes the first dialog; dialog_batch.py opens the second
  if wait_count "$D" '^title ' 2 60; then
    WID=$(find_dialog 60)
    sleep 1
    xdotool windowfocus --sync "$WID" 2>/dev/null || xdotool windowfocus "$WID" 2>/dev/null
    generate_with_prompt "$D" "$(( $(grep -c '^event refused empty-prompt' "$D") + 1 ))"
    wait_count "$D" '^event engine' 2 120 || fail "second dialog: the generation never finished"
    sleep 0.5
    xdotool key Escape
  else
    fail "the second dialog never opened"
  fi
  wait $GP
  first=$(grep '^event engine' "$D" | sed -n 1p) second=$(grep '^event engine' "$D" | sed -n 2p)
  pid1=$(echo "$first" | sed -n 's/.* pid \([0-9]*\) .*/\1/p')
  info "first Generate:  $first"
  info "second dialog:   $second"
  info "$(grep '^DIALOG run\|^DIALOG pdb\|^DIALOG resident' "$LOG" | paste -sd '|')"
  [[ "$first" == "event engine loaded loads 1 pid "* ]] &&
    ok "first Generate of the session loaded the model (load count 1)" ||
    fail "first Generate: '$first'"
  [[ "$second" == "event engine reused loads 1 pid $pid1 "* ]] &&
    ok "the dialog opened a second time reused the loaded engine (same process $pid1, no load)" ||
    fail "second dialog: '$second' (first in process $pid1)"
  grep -q '^DIALOG pdb success ' "$LOG" && grep -q 'gimp-sd35: engine already loaded, reusing it (loads=1)' "$LOG" &&
    ok "a script's txt2img after the dialogs reused the engine: $(grep '^DIALOG pdb' "$LOG" | cut -d' ' -f3-)" ||
    fail "script after the dialogs: $(grep '^DIALOG pdb\|engine loaded\|reusing' "$LOG" | paste -sd '|')"
  grep -q "^DIALOG resident loaded=1 loads=1 calls=3 .*pid=$pid1 " "$LOG" &&
    ok "resident status after two dialogs and a script: $(sed -n 's/^DIALOG resident //p' "$LOG")" ||
    fail "resident status: $(grep '^DIALOG resident' "$LOG")"
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
# fresh settings for this part too (its screenshot is the README's): forget the last values
rm -rf "${GIMP3_DIRECTORY:?}/plug-in-settings" "$GIMP3_DIRECTORY/sd35-dialog.ini"
if SD35_MODEL=$OUT/no-such-model open_dialog "$LOG" "$D"; then
  title=$(xdotool getwindowname "$WID")
  [[ "$title" == *"Text zu Bild"* ]] && ok "German window title: $title" ||
    fail "window title not German: $title"
  for l in "Negativer Prompt" "Schritte" "Startwert" "Erweitert" "Bereit"; do
    grep -qx "label $l" "$D" && ok "German label: $l" || fail "no German label '$l'"
  done
  # every word in the form is German: the model finder's English only on hover
  grep -q '^label .*no such file\|^label .*SD35_' "$D" &&
    fail "English or a variable in the form: $(grep '^label .*no such\|^label .*SD35_' "$D")" ||
    ok "no English words in the form: $(grep '^label Noch' "$D" | head -1 | cut -c7-)"
  shot_drawn dialog-de
  # an empty prompt (when this part runs on a fresh profile) is refused in German
  n_err=1
  if [ -z "$(sed -n 's/^prompt //p' "$D" | head -1)" ]; then
    n_err=2
    xdotool key ctrl+Return
    wait_for "$D" '^event error' 10
    msg=$(sed -n 's/^event error //p' "$D" | head -1)
    echo "$msg" | grep -qwiE "$EN_WORDS" && fail "English words in the German refusal: $msg" ||
      ok "empty prompt refused in German: $msg"
    xdotool type --delay 15 "ein Leuchtturm"
  fi
  # an impossible model: the error shows beside the preview, in plain German, the technical
  # detail (the engine's English message, the variable's name) folded away under Details
  xdotool key ctrl+Return
  if wait_count "$D" '^event error ' $n_err 60; then
    msg=$(sed -n 's/^event error //p' "$D" | tail -1)
    detail=$(sed -n 's/^event error-detail //p' "$D" | tail -1)
    case $msg in
      "Das Modell konnte nicht geladen werden."*) ok "German error: $msg" ;;
      *) fail "unexpected error text: $msg" ;;
    esac
    en=$(echo "$msg" | grep -owiE "$EN_WORDS" | paste -sd ',')
    [ -z "$en" ] && ! echo "$msg" | grep -q 'SD35_\|\$' &&
      ok "no English word and no variable name in the German error" ||
      fail "English or a variable in the German error: '${en}' in: $msg"
    [ -n "$detail" ] && ok "the technical detail is folded away under Details: ${detail:0:90}…" ||
      fail "no detail for the error"
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
# colour scheme, a Turbo model's defaults, the steps that run at the strength typed, one
# Generate over the layer -----------------------------------------------------------------
D=$OUT/dump-gui.txt LOG=$OUT/gimp-gui.log
# the model: the tiny Large, named as SD3.5 Large Turbo; steps and guidance left to the model
TM=$OUT/turbo-model
rm -rf "$TM"; mkdir -p "$TM"
for f in "$SD35_MODEL"/*; do ln -s "$(readlink -f "$f")" "$TM/$(basename "$f")"; done
rm "$TM/sd3.5_large.safetensors"
ln -s "$(readlink -f "$SD35_MODEL/sd3.5_large.safetensors")" "$TM/sd3.5_large_turbo.safetensors"
if SD35_DIALOG_DISPLAY=1 SD35_MODEL=$TM SD35_DIALOG_PROC=plug-in-sd35-img2img \
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
  xdotool type --delay 15 "a lighthouse at dusk"
  # strength 0.5 of 4 steps: the schedule starts at int (4 · 0.5) = 2, so 2 steps run
  xdotool key alt+r; sleep 0.2; xdotool key ctrl+a; xdotool type --delay 15 "0.5"; xdotool key Tab
  sleep 0.5
  grep '^steps-run' "$D" | tail -1 | grep -q '^steps-run 2 of 4 strength 0.50' &&
    ok "img2img shows the steps that will run: $(grep '^steps-run' "$D" | tail -1)" ||
    fail "steps that run: $(grep '^steps-run' "$D" | tail -1)"
  xdotool key ctrl+Return
  if wait_for "$D" '^event (inserted|error)' 120; then
    grep -q '^event inserted 1 size 128x128' "$D" && ok "img2img: $(grep '^event inserted' "$D")" ||
      fail "img2img: $(grep '^event' "$D" | paste -sd '|')"
    totals=$(sed -n 's/^step [0-9]*\/\([0-9]*\) .*/\1/p' "$D" | sort -u | paste -sd ',')
    [ "$totals" = 2 ] && ok "the run reported 'step n / 2', as shown beforehand" ||
      fail "the run's step totals: $totals (shown: 2)"
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
