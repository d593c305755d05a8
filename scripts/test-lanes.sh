#!/usr/bin/env bash
# The default suite in two lanes at once: the pure tests (tests/unit,
# tests/contract: CPU-bound, no daemon) beside everything that starts
# daemons and waits on the kernel (mostly idle time). Each lane is one
# pytest run; the pure lane's report is printed after the other's so the
# two never interleave. Exit status: non-zero if either lane failed.
# Extra arguments go to both runs (for example -x or -m "").
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PURE=(tests/unit tests/contract)
# Every other folder of tests, the chaos tests last: they time answers under
# load and so run once the pure lane is done.
KERNEL=()
for dir in tests/*/; do
  case "${dir%/}" in
    tests/unit | tests/contract | tests/chaos | tests/__pycache__) ;;
    *) KERNEL+=("${dir%/}") ;;
  esac
done
KERNEL+=(tests/chaos)

report=$(mktemp)
trap 'rm -f "$report"' EXIT
"$PY" -m pytest -p no:cacheprovider "$@" "${PURE[@]}" >"$report" 2>&1 &
pure=$!
"$PY" -m pytest -p no:cacheprovider "$@" "${KERNEL[@]}"
rest=$?
wait "$pure"
pure_rc=$?
echo
echo "==================== the pure lane (${PURE[*]}) ===================="
cat "$report"
echo "lanes: pure exit ${pure_rc}, kernel and daemons exit ${rest}"
[ "$pure_rc" -eq 0 ] && [ "$rest" -eq 0 ]
