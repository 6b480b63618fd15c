#!/usr/bin/env bash
# scripts/fuzz.sh — runs native Go fuzz targets one after another (`make fuzz`).
#
# Usage: scripts/fuzz.sh FUZZTIME FUZZMINIMIZETIME package:FuzzName...
#
# A target fails when `go test -fuzz` finds an input that fails: it writes
# that input to <package>/testdata/fuzz/<FuzzName>/, where plain `go test`
# runs it from then on as a regression test. Go 1.26's fuzz coordinator can
# also report a bare "context deadline exceeded" at the -fuzztime boundary on
# a loaded machine, without any failing input (golang/go#75804, fixed in Go
# 1.27): such a run is reported as a warning, not a failure, because no input
# failed; every other non-zero exit, and every run that wrote an input, fails.
set -uo pipefail
GO=${GO:-go}
fuzztime=$1 minimize=$2
shift 2
failed=()
for t in "$@"; do
  pkg=${t%%:*} name=${t#*:}
  dir=$pkg/testdata/fuzz/$name
  before=$(ls "$dir" 2>/dev/null | sort)
  echo "$GO test -run '^\$' -fuzz '^$name\$' -fuzztime $fuzztime -fuzzminimizetime $minimize $pkg"
  out=$(mktemp)
  "$GO" test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg" 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  after=$(ls "$dir" 2>/dev/null | sort)
  if ((status != 0)); then
    if [[ $before == "$after" ]] && grep -q '^    context deadline exceeded$' "$out" && ! grep -q 'Failing input written to' "$out"; then
      echo "fuzz.sh: $pkg:$name stopped with Go's fuzztime-deadline race (golang/go#75804) and no failing input; not a failure"
    else
      failed+=("$pkg:$name")
    fi
  fi
  rm -f "$out"
done
if ((${#failed[@]})); then
  echo "fuzz targets failed: ${failed[*]}"
  exit 1
fi
