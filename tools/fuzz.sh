#!/usr/bin/env bash
# Builds and runs each libFuzzer target for a bounded time (make fuzz). Prints one line
# per target and, last, "fuzz: N passed, N failed". A crash or a trapped invariant leaves
# its input in build/fuzz/<target>/ and fails the target.
# Usage: tools/fuzz.sh CXX FLAGS SECONDS "SOURCES" TARGET...
set -u
cxx=$1 flags=$2 seconds=$3 sources=$4
shift 4
out=build/fuzz
mkdir -p "$out"
passed=0 failed=0
for target in "$@"; do
  dir=$out/$target
  rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/findings"
  cp tests/fuzz/corpus/* "$dir/corpus/"  # libFuzzer adds to this copy, never to the tree
  # shellcheck disable=SC2086
  if ! $cxx $flags "tests/fuzz/$target.cpp" $sources -o "$dir/$target" 2>"$dir/build.log"; then
    echo "fuzz: $target: build failed:"; tail -n 20 "$dir/build.log"
    echo "failure: fuzz: $target: build failed"
    failed=$((failed + 1)); continue
  fi
  echo "fuzz: $target: running for ${seconds}s"
  if "$dir/$target" "$dir/corpus" -max_total_time="$seconds" -print_final_stats=1 \
       -artifact_prefix="$dir/findings/" -max_len=4096 >"$dir/run.log" 2>&1; then
    stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$dir/run.log" | tr '\n' ' ')
    cov=$(grep -oE 'cov: [0-9]+' "$dir/run.log" | tail -n 1)
    echo "fuzz: $target: ok ($cov; $stats)"
    passed=$((passed + 1))
  else
    echo "fuzz: $target: FAILED; the input is in $dir/findings/:"
    ls "$dir/findings/"; tail -n 40 "$dir/run.log"
    echo "failure: fuzz: $target: $(grep -m1 -E '^==[0-9]+==ERROR|^SUMMARY:|deadly signal|runtime error' "$dir/run.log")"
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
