#!/bin/sh
# `sd35 txt2img` progress on stderr: on a terminal (script(1) gives it a pseudo-terminal) one
# line rewritten in place with elapsed time and time left; into a file or pipe, one plain line
# per step.  Runs the random-weight test model (sd35 make-test-model), 64×64, 6 steps, CPU.
set -u
CLI=${SD35_CLI:-}
[ -n "$CLI" ] && [ -x "$CLI" ] || { echo "SKIP: \$SD35_CLI is not set"; exit 77; }
command -v script >/dev/null || { echo "SKIP: script(1) (util-linux) is not installed"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
ok ()   { echo "ok   $*"; }
fail () { echo "FAIL $*"; fails=$((fails + 1)); }

"$CLI" make-test-model --out "$tmp/m" >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; exit 1; }
run="$CLI txt2img --model $tmp/m --prompt fox --steps 6 --width 64 --height 64 --seed 1"

# a terminal: script -e returns the command's status; its typescript is what the user saw
script -qec "$run --out $tmp/tty.png" "$tmp/tty.txt" >/dev/null 2>&1
rc=$?
[ $rc -eq 0 ] && ok "on a terminal: exit 0" || fail "on a terminal: exit $rc"
# the step lines are one line: carriage returns between them, one newline after the last
steps=$(tr '\r' '\n' <"$tmp/tty.txt" | grep -c '^  step [1-6]/6 \[[#.]*\] [0-9]*:[0-9][0-9] elapsed, [0-9]*:[0-9][0-9] left')
[ "$steps" -eq 6 ] && ok "on a terminal: 6 progress updates with elapsed time and time left" ||
  fail "on a terminal: $steps progress updates, expected 6: $(cat -v "$tmp/tty.txt")"
lines=$(grep -c 'step [1-6]/6' "$tmp/tty.txt")
[ "$lines" -eq 1 ] && ok "on a terminal: the progress stays on one line" ||
  fail "on a terminal: progress over $lines lines"
grep -q '^decoding' "$tmp/tty.txt" && ok "the next stage starts on a line of its own" ||
  fail "no 'decoding' at the start of a line: $(cat -v "$tmp/tty.txt")"

# not a terminal: plain lines
$run --out "$tmp/file.png" 2>"$tmp/file.txt"
rc=$?
[ $rc -eq 0 ] && ok "into a file: exit 0" || fail "into a file: exit $rc"
n=$(grep -c '^  step [1-6]/6  sigma [0-9.]*$' "$tmp/file.txt")
[ "$n" -eq 6 ] && ok "into a file: 6 plain step lines" || fail "into a file: $n plain step lines"
grep -q "$(printf '\r')\|$(printf '\033')" "$tmp/file.txt" && fail "control characters in the file" ||
  ok "no carriage returns or escape sequences in the file"

# the notice about a GPU: at most one short line, none in a build without CUDA
# (SD35_HAVE_CUDA=0 from meson), none with --backend cpu
notice=$(grep -i 'GPU' "$tmp/file.txt")
if [ "${SD35_HAVE_CUDA:-0}" = 0 ]; then
  [ -z "$notice" ] && ok "no GPU notice in a build without CUDA" ||
    fail "a GPU notice in a build without CUDA: $notice"
elif [ -n "$notice" ]; then
  [ "$(printf '%s\n' "$notice" | wc -l)" -eq 1 ] && [ "${#notice}" -le 100 ] &&
    ok "GPU notice, one short line: $notice" || fail "GPU notice too long: $notice"
fi
$run --backend cpu --out "$tmp/cpu.png" 2>"$tmp/cpu.txt"
grep -qi 'GPU' "$tmp/cpu.txt" && fail "a GPU notice with --backend cpu: $(grep -i GPU "$tmp/cpu.txt")" ||
  ok "no GPU notice with --backend cpu"
[ $fails -eq 0 ]
