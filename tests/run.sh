#!/usr/bin/env bash
# Runs every test of one build variant and prints, as its very last line, the sum of
# unit and integration tests: "N passed, N failed" (", N skipped" when some were).
# Usage: tests/run.sh build/<variant>
set -u
build=${1:-build/release}
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0 skipped=0
recap=""  # the failures, repeated at the end so that the last lines of a long log name them

# Unit tests: doctest's summary line is "[doctest] test cases: T | P passed | F failed | S skipped".
unit_log=$(mktemp)
"$build/unit_tests" 2>&1 | tee "$unit_log"
unit_rc=${PIPESTATUS[0]}
line=$(grep -E '^\[doctest\] test cases:' "$unit_log" | tail -n 1)
# doctest names each failed case ("TEST CASE:") and each failed check (": ERROR:").
recap+=$(grep -E '^TEST CASE:|: ERROR:|: FATAL ERROR:|^  values:|^WARNING: ThreadSanitizer|^ERROR: AddressSanitizer|runtime error:' \
  "$unit_log" | head -n 40 | sed 's/^/failure: unit: /')
rm -f "$unit_log"
if [[ $line =~ ([0-9]+)\ passed\ \|\ ([0-9]+)\ failed\ \|\ ([0-9]+)\ skipped ]]; then
  passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
  skipped=$((skipped + BASH_REMATCH[3]))
else
  echo "tests/run.sh: unit test binary printed no summary (exit $unit_rc)"; failed=$((failed + 1))
fi
if [[ $unit_rc -ne 0 && $failed -eq 0 ]]; then
  echo "tests/run.sh: unit tests exited $unit_rc with no failed case"; failed=$((failed + 1))
fi

# Integration tests: the real binary on port 0, raw sockets and real clients.
int_log=$(mktemp)
python3 "$here/integration/run.py" --build "$build" 2>&1 | tee "$int_log"
int_rc=${PIPESTATUS[0]}
line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$int_log" | tail -n 1)
[[ -n $recap ]] && recap+=$'\n'
recap+=$(grep -E '^  (FAIL|ERROR) ' "$int_log" | head -n 40 | sed 's/^  /failure: integration: /')
rm -f "$int_log"
if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)? ]]; then
  passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
  skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
else
  echo "tests/run.sh: integration runner printed no summary (exit $int_rc)"; failed=$((failed + 1))
fi

[[ -n ${recap//$'\n'/} ]] && printf '%s\n' "$recap" | grep -v '^$'
if [[ $skipped -gt 0 ]]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[[ $failed -eq 0 ]]
