// SPDX-License-Identifier: Apache-2.0
// Internal: write a Timeline as a Chrome trace-event JSON file.
#pragma once

#include <string>

#include "megaring/runtime.hpp"

namespace megaring::detail {

Status write_chrome_trace(const Timeline& timeline, const std::string& path);

}  // namespace megaring::detail
