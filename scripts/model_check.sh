#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Model-checks one ring (model/ring_v3.pml: ring 0 of ABI v4, and ABI v3)
# and rings per producer (model/rings_v4.pml: ABI v4's design, with the
# completer's count of other rings past a slow slot, -DBEYOND) with spin.
#
#   scripts/model_check.sh          every CI configuration + every mutation
#   scripts/model_check.sh --full   also four larger configurations
#                                   (about two minutes more, ~1.2 GB of memory)
#
# Every configuration is an exhaustive safety search (pan -DSAFETY, with
# -DCOLLAPSE state compression; no bitstate/hash-compact approximation): it
# must finish with 0 errors (assertions, invalid end states) and without
# hitting the depth or memory limit. Every mutation (M1..M10, see
# model/README.md) must make the verifier report an error; a mutation that
# is not caught fails the script. One summary line per run; exit status is
# non-zero on any failure. Installs Debian's `spin` if it is missing.
# Needs a C compiler (gcc). Runs the verifiers MODEL_CHECK_JOBS at a time
# (default: the number of CPUs); about 40 s on 2 idle cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS=("$ROOT/model/ring_v3.pml" "$ROOT/model/rings_v4.pml")
FULL=0
for arg in "$@"; do
  case "$arg" in
    --full) FULL=1 ;;
    -h|--help) sed -n '3,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "model_check: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

apt_install() {
  if [[ "$(id -u)" == 0 ]]; then
    apt-get install -y "$@" || { apt-get update && apt-get install -y "$@"; }
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get install -y "$@" || { sudo apt-get update && sudo apt-get install -y "$@"; }
  else
    echo "model_check: need $* (not root and no sudo)" >&2
    return 1
  fi
}
if ! command -v spin >/dev/null 2>&1; then
  echo "model_check: spin not found, installing it" >&2
  apt_install spin >&2
fi
if ! command -v gcc >/dev/null 2>&1; then
  echo "model_check: gcc not found, installing it" >&2
  apt_install gcc >&2
fi
for model in "${MODELS[@]}"; do
  [[ -f "$model" ]] || { echo "model_check: $model missing" >&2; exit 1; }
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/megaring-model.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

PAN_CFLAGS=(-O2 -w -DSAFETY -DCOLLAPSE -DVECTORSZ=256)
PAN_DEPTH=10000          # deepest run reaches ~520
JOBS="${MODEL_CHECK_JOBS:-$(nproc 2>/dev/null || echo 2)}"

now() { date +%s.%N; }

# check NAME EXPECT MODEL DEFINES...   EXPECT is "pass" or "caught"; MODEL a
# file of model/. Prints the summary; returns non-zero when the run does not
# meet EXPECT.
check() {
  local name="$1" expect="$2" pml="$3"; shift 3
  local defs=("$@") dir="$TMP/$name" memlim=2048 t0 t1
  [[ "$name" == full-* ]] && memlim=4096
  mkdir -p "$dir"
  cp "$ROOT/model/$pml" "$dir/$pml"
  t0="$(now)"
  if ! (cd "$dir" && spin -a "${defs[@]}" "$pml" >spin.log 2>&1); then
    echo "FAIL    $name: spin -a failed:"; sed 's/^/    /' "$dir/spin.log"
    return 1
  fi
  if ! (cd "$dir" && gcc "${PAN_CFLAGS[@]}" -DMEMLIM=$memlim -o pan pan.c >cc.log 2>&1); then
    echo "FAIL    $name: gcc pan.c failed:"; sed 's/^/    /' "$dir/cc.log"
    return 1
  fi
  (cd "$dir" && ./pan -m$PAN_DEPTH >pan.log 2>&1) || true
  t1="$(now)"

  local log="$dir/pan.log" errors states ptime wall first incomplete=""
  errors="$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$log" | tail -n1)"
  states="$(awk '/states, stored/ {print $1; exit}' "$log")"
  ptime="$(sed -n 's/^pan: elapsed time \([^ ]*\) seconds.*/\1/p' "$log" | tail -n1)"
  wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
  first="$(grep -m1 -E '^pan:[0-9]+: ' "$log" || true)"
  grep -q 'max search depth too small' "$log" && incomplete="depth limit -m$PAN_DEPTH hit"
  grep -qiE 'out of memory|MEMLIM' "$log" && incomplete="memory limit ${memlim} MB hit"
  : "${errors:=?}" "${states:=?}" "${ptime:=?}"

  local summary
  summary="$(printf '%-16s %-44s states=%-9s errors=%-2s pan=%ss wall=%ss' \
    "$name" "${pml%.pml} ${defs[*]}" "$states" "$errors" "$ptime" "$wall")"
  if [[ "$expect" == pass ]]; then
    if [[ "$errors" == 0 && -z "$incomplete" ]] && grep -q 'Full statespace search' "$log"; then
      echo "PASS    $summary"
    else
      echo "FAIL    $summary ${incomplete:+($incomplete)}"
      [[ -n "$first" ]] && echo "    $first"
      grep -E '^(pan|Warning|error)' "$log" | grep -vxF -e "$first" | sed 's/^/    | /' | head -n 10
      if [[ -f "$dir/$pml.trail" ]]; then
        echo "    counterexample (last steps of: spin -t -p ${defs[*]} model/$pml):"
        (cd "$dir" && spin -t -p "${defs[@]}" "$pml" 2>&1) | tail -n 40 | sed 's/^/    | /'
      fi
      return 1
    fi
  else
    # a mutation counts as caught only for a property violation found by
    # the search, not for a tool failure
    if [[ "$errors" =~ ^[1-9][0-9]*$ ]] && \
       [[ "$first" =~ assertion\ violated|invalid\ end\ state ]]; then
      echo "CAUGHT  $summary"
      echo "    ${first}"
    else
      echo "MISSED  $summary ${incomplete:+($incomplete)}  <- mutation NOT caught"
      [[ -n "$first" ]] && echo "    $first"
      return 1
    fi
  fi
}

# run NAME EXPECT DEFINES...: queue a check (at most $JOBS at once);
# finish waits for all of them and prints their summaries in queue order.
NRUNS=0
run() {
  local i=$NRUNS
  NRUNS=$((NRUNS + 1))
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done
  { local rc=0; check "$@" || rc=1; echo $rc > "$TMP/rc.$i"; } \
    > "$TMP/out.$i" 2>&1 &
}
finish() {
  wait || true
  local i failed=0
  for (( i = 0; i < NRUNS; i++ )); do
    cat "$TMP/out.$i"
    [[ "$(cat "$TMP/rc.$i" 2>/dev/null)" == 0 ]] || failed=1
  done
  return $failed
}

echo "spin: $(spin -V 2>&1 | head -n1); models: ring_v3.pml rings_v4.pml; jobs: $JOBS"
T0="$(now)"

# -- correct protocol: every configuration must pass ------------------------
# (a) 2 producers x 2 batches of 1-2 slots, C=2: ring wraps up to 4 times
run a        pass ring_v3.pml -DC=2 -DNP=2 -DNB=2 -DMAXN=2
run a-die    pass ring_v3.pml -DC=2 -DNP=2 -DNB=2 -DMAXN=2 -DDIE
# (b) 3 producers, C=2, one may die
run b-die    pass ring_v3.pml -DC=2 -DNP=3 -DNB=1 -DMAXN=2 -DDIE
run b2-die   pass ring_v3.pml -DC=2 -DNP=3 -DNB=2 -DMAXN=2 -DDIE
# (c) C=4 (window of 4 read in any order), batches of 1-3 slots, 6 tickets max
run c        pass ring_v3.pml -DC=4 -DNP=2 -DNB=1 -DMAXN=3
run c-die    pass ring_v3.pml -DC=4 -DNP=2 -DNB=1 -DMAXN=3 -DDIE
# A -DDIE run also contains every run in which nobody dies (the checker then
# asserts no loss), so b2-die covers b2; --full runs b2 on its own as well.
if [[ "$FULL" == 1 ]]; then
  run full-b2     pass ring_v3.pml -DC=2 -DNP=3 -DNB=2 -DMAXN=2
  run full-c3-die pass ring_v3.pml -DC=4 -DNP=3 -DNB=1 -DMAXN=2 -DNE=1 -DDIE
  run full-c4     pass ring_v3.pml -DC=4 -DNP=2 -DNB=2 -DMAXN=2
  run full-v4-beyond-b pass rings_v4.pml -DBEYOND -DC=2 -DS=2 -DNB=2 -DMAXN=1
fi

# -- mutations: the verifier must report an error for each ------------------
run M1-header-first   caught ring_v3.pml -DM1 -DC=2 -DNP=2 -DNB=2 -DMAXN=2
run M2-nonempty-hdr   caught ring_v3.pml -DM2 -DC=2 -DNP=2 -DNB=2 -DMAXN=2
run M3-count-first    caught ring_v3.pml -DM3 -DC=2 -DNP=2 -DNB=2 -DMAXN=2
run M4-no-backpress   caught ring_v3.pml -DM4 -DC=2 -DNP=2 -DNB=2 -DMAXN=2
run M5-racy-claim     caught ring_v3.pml -DM5 -DC=2 -DNP=2 -DNB=2 -DMAXN=2

# -- rings_v4.pml: a ring per producer (ABI v4's design) -------------------
# Two producers, a ring each; S staged entries on the consumer side.
run v4-a          pass   rings_v4.pml -DC=2 -DS=2 -DNB=1 -DMAXN=2
run v4-a-die      pass   rings_v4.pml -DC=2 -DS=2 -DNB=1 -DMAXN=2 -DDIE
# each ring wraps (3 tickets on 2 positions) through a staged queue of 1
run v4-wrap       pass   rings_v4.pml -DC=2 -DS=1 -DNB=3 -DMAXN=1
run v4-b-die      pass   rings_v4.pml -DC=2 -DS=2 -DNB=2 -DMAXN=1 -DDIE
run v4-c4         pass   rings_v4.pml -DC=4 -DS=4 -DNB=1 -DMAXN=2 -DNE=1
run v4-M1-hdr     caught rings_v4.pml -DM1 -DC=2 -DS=2 -DNB=1 -DMAXN=2
run v4-M3-count   caught rings_v4.pml -DM3 -DC=2 -DS=2 -DNB=1 -DMAXN=2
run v4-M4-ring-bp caught rings_v4.pml -DM4 -DC=2 -DS=1 -DNB=3 -DMAXN=1
run v4-M6-stage-bp caught rings_v4.pml -DM6 -DC=2 -DS=2 -DNB=1 -DMAXN=2
run v4-M7-seq     caught rings_v4.pml -DM7 -DC=2 -DS=2 -DNB=1 -DMAXN=2
run v4-M8-hol     caught rings_v4.pml -DM8 -DC=2 -DS=2 -DNB=1 -DMAXN=2
# the completer counts the other ring past a stalled entry (publish_beyond_gap);
# a staged queue of 4, so that two entries can wait behind the gap
run v4-beyond     pass   rings_v4.pml -DBEYOND -DC=2 -DS=4 -DNB=1 -DMAXN=2
run v4-M9-rewrite caught rings_v4.pml -DM9 -DBEYOND -DC=2 -DS=4 -DNB=3 -DMAXN=1
run v4-M10-own-gap caught rings_v4.pml -DM10 -DBEYOND -DC=2 -DS=4 -DNB=1 -DMAXN=2

FAILED=0
finish || FAILED=1
TOTAL="$(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
if [[ "$FAILED" != 0 ]]; then
  echo "model_check: FAILED (${TOTAL}s)"
  exit 1
fi
echo "model_check: all configurations pass, all mutations caught (${TOTAL}s)"
