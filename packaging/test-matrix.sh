#!/usr/bin/env bash
# `make test-matrix`: the unit tests under every framework (ryu, os-ken 4, os-ken 3) on every
# Python from 3.11 to 3.13 that is on this machine (on PATH as python3.X, or a pyenv build).
#
# Each combination gets its own venv, .venv-matrix/<py>-<framework>/, built from
# requirements/<framework>.txt (kept while the requirements are older than it) plus the wheel
# this checkout builds, installed as a user would install it (so the console script, the .pth
# and the os-ken-without-ryu extra are what is tested), and the bench's wheel (bench/setup.py)
# without its dependencies: the unit tests of its feeder and targets need no matplotlib, and
# requirements/bench.txt is not installed. Venvs are built two at a time, the tests
# run one combination at a time. Logs: .venv-matrix/<py>-<framework>.log.
#
#   PYTHONS="3.12" FRAMEWORKS="os-ken" bash packaging/test-matrix.sh   # a subset
# Exits non-zero when a combination fails, or when no interpreter at all is found.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.venv-matrix
PYTHONS=${PYTHONS:-"3.11 3.12 3.13"}
FRAMEWORKS=${FRAMEWORKS:-"ryu os-ken os-ken3"}
export PIP_CONSTRAINT=$ROOT/constraints-build.txt PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$OUT"

interpreter() {     # the python3.X to use, or nothing
    local v=$1 p
    for p in "$(command -v "python$v" 2>/dev/null)" \
             $(ls -d "${PYENV_ROOT:-/root/.pyenv}"/versions/"$v".*/bin/"python$v" 2>/dev/null | sort -V -r); do
        if [ -n "$p" ] && [ -x "$p" ] && "$p" -c "import venv, ssl" 2>/dev/null; then
            echo "$p"; return
        fi
    done
}

start=$(date +%s)
rm -rf "$OUT/dist" build bench/build    # an earlier build's leftovers would be packed in
python3 -m pip wheel -q --no-deps -w "$OUT/dist" . ./bench >"$OUT/wheel.log" 2>&1 \
    || { echo "test-matrix: the wheels do not build:"; tail -20 "$OUT/wheel.log"; exit 1; }
WHEEL=$(ls "$OUT"/dist/ipop_ryu-*.whl)
BENCH_WHEEL=$(ls "$OUT"/dist/ipop_ryu_bench-*.whl)

combos=()
for v in $PYTHONS; do
    py=$(interpreter "$v")
    if [ -z "$py" ]; then echo "test-matrix: no Python $v here: skipped"; continue; fi
    for fw in $FRAMEWORKS; do combos+=("$v $fw $py"); done
done
[ ${#combos[@]} -gt 0 ] || { echo "test-matrix: no Python of $PYTHONS found"; exit 1; }

build() {           # build (or refresh) one combination's venv; output to its log
    local v=$1 fw=$2 py=$3 venv=$OUT/$1-$2
    local reqs=("$ROOT/requirements/base.txt" "$ROOT/requirements/$fw.txt" "$ROOT/constraints-build.txt")
    local stale=0 f
    for f in "${reqs[@]}"; do [ "$f" -nt "$venv/.installed" ] && stale=1; done
    if [ $stale = 1 ]; then
        rm -rf "$venv" && "$py" -m venv "$venv" \
            && "$venv/bin/python" -m pip install -q -r "$ROOT/requirements/$fw.txt" \
            && touch "$venv/.installed" || return 1
    fi
    "$venv/bin/python" -m pip install -q --no-deps --force-reinstall "$WHEEL" "$BENCH_WHEEL"
}

pids=()
for i in "${!combos[@]}"; do
    set -- ${combos[$i]}
    ( build "$1" "$2" "$3" >"$OUT/$1-$2.log" 2>&1; echo $? >"$OUT/$1-$2.built" ) &
    pids+=($!)
    if [ $(( ${#pids[@]} % 2 )) = 0 ]; then wait "${pids[@]}"; pids=(); fi
done
wait

failed=0
summary=()
for combo in "${combos[@]}"; do
    set -- $combo
    name=$1-$2 venv=$OUT/$1-$2
    if [ "$(cat "$OUT/$name.built")" != 0 ]; then
        summary+=("$name: venv FAILED to build (see $OUT/$name.log)"); failed=1; continue
    fi
    t0=$(date +%s)
    (cd "$ROOT" && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit) \
        >>"$OUT/$name.log" 2>&1
    rc=$?
    last=$(grep -E "[0-9]+ (passed|failed|errors?)( |,|$)" "$OUT/$name.log" | tail -1)
    fwv=$("$venv/bin/ipop-ryu" controller --version 2>&1 | tail -1)
    summary+=("$name: ${last:-no result} [$fwv, $(( $(date +%s) - t0 ))s]")
    [ $rc = 0 ] || failed=1
done
echo "test-matrix ($(( $(date +%s) - start ))s):"
printf '  %s\n' "${summary[@]}"
exit $failed
