// SPDX-License-Identifier: Apache-2.0
// megaring/version.h: the linked library's version() and version_string()
// agree with the header's macros, and the macros with each other.
#include <gtest/gtest.h>

#include <megaring/version.h>

#include <string>

namespace {

TEST(Version, LibraryMatchesTheHeader) {
  const megaring::Version v = megaring::version();
  EXPECT_EQ(v.major, MEGARING_VERSION_MAJOR);
  EXPECT_EQ(v.minor, MEGARING_VERSION_MINOR);
  EXPECT_EQ(v.patch, MEGARING_VERSION_PATCH);
  EXPECT_STREQ(megaring::version_string(), MEGARING_VERSION_STRING);
}

TEST(Version, MacrosAgree) {
  EXPECT_EQ(MEGARING_VERSION,
            MEGARING_VERSION_MAJOR * 10000 + MEGARING_VERSION_MINOR * 100 + MEGARING_VERSION_PATCH);
  EXPECT_EQ(std::string(MEGARING_VERSION_STRING),
            std::to_string(MEGARING_VERSION_MAJOR) + "." + std::to_string(MEGARING_VERSION_MINOR) +
                "." + std::to_string(MEGARING_VERSION_PATCH));
  // MEGARING_VERSION packs two decimal digits a part.
  EXPECT_LT(MEGARING_VERSION_MINOR, 100);
  EXPECT_LT(MEGARING_VERSION_PATCH, 100);
}

}  // namespace
