# SPDX-License-Identifier: Apache-2.0
# Sourced after scripts/env.sh by scripts/bench.sh and .ci/run: the optional
# packages of the benchmark harness. Each installs only what is missing.
# shellcheck shell=bash

# moodycamel ConcurrentQueue (Debian: libconcurrentqueue-dev), the host-cost
# arm's comparison. Without it the bench still builds and skips that arm.
mr_have_concurrentqueue() {
  local d
  for d in /usr/include /usr/local/include; do
    [[ -f "$d/concurrentqueue/concurrentqueue.h" || -f "$d/concurrentqueue/moodycamel/concurrentqueue.h" ||
       -f "$d/moodycamel/concurrentqueue.h" ]] && return 0
  done
  return 1
}
mr_ensure_concurrentqueue() {
  mr_have_concurrentqueue && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "megaring: moodycamel ConcurrentQueue is missing; installing libconcurrentqueue-dev" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libconcurrentqueue-dev >&2 ||
      { apt-get update >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libconcurrentqueue-dev >&2; } ||
      { echo "megaring: could not install libconcurrentqueue-dev; the bench skips its moodycamel arm" >&2; return 0; }
  else
    echo "megaring: libconcurrentqueue-dev not installed (not root or no apt-get); the bench skips its moodycamel arm" >&2
  fi
  return 0
}

# matplotlib for bench/plot.py (pip, only if `import matplotlib` fails).
mr_have_matplotlib() { python3 -c 'import matplotlib' >/dev/null 2>&1; }
mr_ensure_matplotlib() {
  mr_have_matplotlib && return 0
  command -v python3 >/dev/null 2>&1 || { echo "megaring: python3 not found (bench/plot.py needs it)" >&2; return 1; }
  echo "megaring: matplotlib is missing; installing it with pip" >&2
  python3 -m pip install --quiet matplotlib >&2 || { echo "megaring: pip install matplotlib failed" >&2; return 1; }
  mr_have_matplotlib
}
