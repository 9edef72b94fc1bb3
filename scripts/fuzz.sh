#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds megaring's libFuzzer targets (fuzz/) with Clang, ASan and UBSan in a
# build folder of their own, then runs each for a while on a scratch copy of
# its seed corpus (the repository's corpus is never written).
#
#   scripts/fuzz.sh [NAME...]    NAME: a target's short name (consumer for
#                                megaring_consumer_fuzz); default: every
#                                megaring_*_fuzz the build produced
#
# Knobs: MEGARING_FUZZ_BUILD_DIR  build folder (default build-fuzz/)
#        MEGARING_FUZZ_SECONDS    seconds per target (default 60)
#        MEGARING_FUZZ_ARGS       extra libFuzzer flags, e.g. "-seed=1"
#        MEGARING_JOBS            build parallelism
#
# Per target, in BUILD/fuzz-run/NAME/: corpus/ (the scratch corpus, grown by
# the run), artifacts/ (crash-*, leak-*, timeout-*, oom-*) and fuzz.log.
# Exits non-zero if any target found anything; prints each finding's input
# and one summary line per target. Reproduce a finding with
#   BUILD/fuzz/megaring_NAME_fuzz ARTIFACT      (or the _replay binary).
#
# Installs clang and the libFuzzer runtime (apt-get) only when clang++ or
# libFuzzer is missing and it runs as root.
set -euo pipefail

# shellcheck source=scripts/env.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

BUILD="${MEGARING_FUZZ_BUILD_DIR:-$MEGARING_ROOT/build-fuzz}"
FUZZ_SECONDS="${MEGARING_FUZZ_SECONDS:-60}"
[[ "$FUZZ_SECONDS" =~ ^[0-9]+$ && "$FUZZ_SECONDS" -gt 0 ]] ||
  mr_die "MEGARING_FUZZ_SECONDS must be a positive number of seconds"
T0=$SECONDS

# --- toolchain: clang++ that links -fsanitize=fuzzer -------------------------
fuzz_toolchain_ok() {
  command -v clang >/dev/null 2>&1 && command -v clang++ >/dev/null 2>&1 || return 1
  local dir ok=0
  dir="$(mktemp -d)"
  printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
    >"$dir/t.cpp"
  if ! clang++ -fsanitize=fuzzer,address,undefined "$dir/t.cpp" -o "$dir/t" >/dev/null 2>&1; then
    ok=1
  fi
  rm -rf "$dir"
  return "$ok"
}

fuzz_install_toolchain() {
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    mr_die "clang++ with the libFuzzer runtime not found: install clang and libclang-rt-<version>-dev (Debian/Ubuntu)"
  fi
  echo "megaring: clang++ or its libFuzzer runtime is missing; installing them" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2 || true
  if ! command -v clang++ >/dev/null 2>&1; then
    apt-get install -y --no-install-recommends clang >&2 || mr_die "could not install clang"
  fi
  local major pkg
  major="$(clang++ --version | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -n 1)"
  for pkg in "libclang-rt-${major}-dev" libclang-rt-dev; do
    if apt-cache show "$pkg" >/dev/null 2>&1; then
      apt-get install -y --no-install-recommends "$pkg" >&2 && break
    fi
  done
  fuzz_toolchain_ok || mr_die "clang++ still cannot link -fsanitize=fuzzer (libclang-rt-${major}-dev missing?)"
}

fuzz_toolchain_ok || fuzz_install_toolchain

# --- configure and build -----------------------------------------------------
CC=clang CXX=clang++ mr_configure "$BUILD" \
  -DCMAKE_CUDA_HOST_COMPILER=clang++ \
  -DMEGARING_FUZZ=ON \
  -DMEGARING_SANITIZE=address \
  -DMEGARING_BUILD_TESTS=OFF \
  -DMEGARING_BUILD_SAMPLES=OFF \
  -DMEGARING_BUILD_BENCH=OFF
grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang' "$BUILD/CMakeCache.txt" ||
  mr_die "$BUILD was configured with another C++ compiler than clang++: remove it or set MEGARING_FUZZ_BUILD_DIR"
cmake --build "$BUILD" --parallel "$MR_JOBS"
BUILD_SECONDS=$((SECONDS - T0))

# Every fuzzer the build made, or the ones named on the command line.
mapfile -t FUZZERS < <(find "$BUILD/fuzz" -maxdepth 1 -type f -perm -u+x -name 'megaring_*_fuzz' | sort)
((${#FUZZERS[@]} > 0)) || mr_die "no megaring_*_fuzz binaries in $BUILD/fuzz"
if (($# > 0)); then
  picked=()
  for name in "$@"; do
    exe="$BUILD/fuzz/megaring_${name}_fuzz"
    [[ -x "$exe" ]] || mr_die "no fuzz target '$name' (built: $(basename -a "${FUZZERS[@]}" | tr '\n' ' '))"
    picked+=("$exe")
  done
  FUZZERS=("${picked[@]}")
fi

# --- run ---------------------------------------------------------------------
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# The API-sequence fuzzer asks for 2^48-byte buffers on purpose and expects
# kOutOfMemory, not a sanitizer stopping the process.
export ASAN_OPTIONS="allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
SUMMARY=()
FOUND=0

# option FILE KEY: a "key = value" line of a target's .options file.
option() {
  if [[ -f "$1" ]]; then sed -n "s/^$2[[:space:]]*=[[:space:]]*//p" "$1" | head -n 1; fi
}

for exe in "${FUZZERS[@]}"; do
  target="$(basename "$exe")"
  name="${target#megaring_}"
  name="${name%_fuzz}"
  max_len="$(option "$exe.options" max_len)"
  dict="$(option "$exe.options" dict)"
  seeds="$(option "$exe.options" seed_corpus)"
  [[ -n "$seeds" ]] || seeds="$MEGARING_ROOT/fuzz/corpus/$name"
  [[ -d "$seeds" ]] || mr_die "$target: seed corpus $seeds is missing"
  work="$BUILD/fuzz-run/$name"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -R "$seeds/." "$work/corpus/"
  seed_count="$(find "$work/corpus" -type f | wc -l)"
  log="$work/fuzz.log"

  echo
  echo "==== fuzz.sh: $target for ${FUZZ_SECONDS} s (max_len ${max_len:-default}, $seed_count seeds)"
  args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$work/artifacts/")
  [[ -n "$max_len" ]] && args+=(-max_len="$max_len")
  [[ -n "$dict" ]] && args+=(-dict="$dict")
  # shellcheck disable=SC2206  # extra flags split on spaces by design
  [[ -n "${MEGARING_FUZZ_ARGS:-}" ]] && args+=(${MEGARING_FUZZ_ARGS})
  rc=0
  "$exe" "${args[@]}" "$work/corpus" >"$log" 2>&1 || rc=$?

  execs="$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -n 1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -n 1)"
  last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corpus_now="$(find "$work/corpus" -type f | wc -l)"
  line="$name: ${execs:-?} execs (${rate:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus $seed_count -> $corpus_now files"

  mapfile -t found < <(find "$work/artifacts" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  if ((rc != 0 || ${#found[@]} > 0)); then
    FOUND=$((FOUND + 1))
    what="$(grep -m 1 -E 'check failed:|^SUMMARY: ' "$log" || echo "libFuzzer exited $rc")"
    echo "---- last lines of $log"
    tail -n 40 "$log"
    echo "----"
    for input in "${found[@]}"; do
      echo "FINDING $name: $input"
      echo "  reproduce: $exe $input"
    done
    ((${#found[@]} > 0)) || echo "FINDING $name: no input saved (see $log)"
    SUMMARY+=("FAIL  $line; $what")
  else
    SUMMARY+=("ok    $line")
  fi
done

echo
echo "==== fuzz.sh summary (build ${BUILD_SECONDS} s, total $((SECONDS - T0)) s)"
printf '  %s\n' "${SUMMARY[@]}"
if ((FOUND > 0)); then
  echo "fuzz.sh: $FOUND target(s) found a failing input" >&2
  exit 1
fi
