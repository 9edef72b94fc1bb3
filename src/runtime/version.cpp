// SPDX-License-Identifier: Apache-2.0
// The library's version (megaring/version.h): compiled into the library, so
// a program learns which build it runs against, not which headers it saw.
#include "megaring/version.h"

namespace megaring {

Version version() noexcept {
  return Version{MEGARING_VERSION_MAJOR, MEGARING_VERSION_MINOR, MEGARING_VERSION_PATCH};
}

const char* version_string() noexcept { return MEGARING_VERSION_STRING; }

}  // namespace megaring
