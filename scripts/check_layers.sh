#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the layering of src/ (README, "Layout"): each layer includes only
# the layers before it in this order, and itself. Exit 1 listing each
# include that reaches up or sideways.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
layers=(support backends ring runtime tenants capi)
bad=0
for i in "${!layers[@]}"; do
  layer="${layers[$i]}"
  allowed="megaring|${layers[*]:0:$((i + 1))}"
  allowed="${allowed// /|}"
  while IFS= read -r hit; do
    echo "layering: $hit (src/$layer may include only: ${allowed//|/, })"
    bad=1
  done < <(grep -HnoE '#include "[a-z_]+/' "$root/src/$layer"/* 2>/dev/null |
           grep -vE "#include \"($allowed)/" | sed "s#^$root/##" || true)
done
[[ -d "$root/src" ]] || { echo "layering: no src/"; exit 1; }
exit "$bad"
