// SPDX-License-Identifier: Apache-2.0
// The fetcher's sizing arithmetic (consumer/fetcher.cuh), as plain functions:
// its adaptive window and its crew's share of a round.

#include <cstdint>

#include <gtest/gtest.h>

#include <megaring/consumer/consumer_core.cuh>

namespace megaring_test {
namespace {

// The fetcher's adaptive window (consumer/fetcher.cuh, next_fetch_window): it
// widens (x8) while every header it read was READY, up to the crew's cap;
// after a partial find it stays; after none it is the one-header idle poll.
// So a lone call reads eight header lines after its own, not hundreds
// (about 70 ns a line each on the H200 of 2026-12-04), and a batch is
// fetched within three rounds of an idle poll.
TEST(FetchWindow, WidensWhileFullKeepsItsReachAndIdlesAtOne) {
  using megaring::detail::next_fetch_window;
  constexpr uint32_t kCap = 512;  // a crew of four
  EXPECT_EQ(next_fetch_window(1, 1, kCap), 8u);
  EXPECT_EQ(next_fetch_window(8, 0, kCap), 1u) << "a lone call: back to the idle poll";
  EXPECT_EQ(next_fetch_window(1, 0, kCap), 1u);
  EXPECT_EQ(next_fetch_window(8, 8, kCap), 64u);
  EXPECT_EQ(next_fetch_window(64, 64, kCap), kCap);
  EXPECT_EQ(next_fetch_window(64, 64, 128), 128u) << "a crew of one reads 128 at most";
  EXPECT_EQ(next_fetch_window(kCap, kCap, kCap), kCap);
  EXPECT_EQ(next_fetch_window(kCap, 100, kCap), kCap) << "a stream keeps its reach";
  EXPECT_EQ(next_fetch_window(8, 1, kCap), 8u);
  EXPECT_EQ(next_fetch_window(kCap, 0, kCap), 1u);
  uint32_t w = 1, rounds = 0;
  while (w < kCap) w = next_fetch_window(w, w, kCap), ++rounds;
  EXPECT_EQ(rounds, 3u);
}

// The fetch crew (consumer/fetcher.cuh): a crew of W warps copies at most 64 W
// bodies a round and reads at most 128 W headers (what its threads hold in
// registers), and its busiest warp, warp 0, issues a 1/W share of the
// round's loads plus the control words.
TEST(FetchCrew, ShareARoundsLoadsAndCapItsBodies) {
  using megaring::detail::fetch_body_cap;
  using megaring::detail::fetch_warp_loads;
  using megaring::detail::fetch_window_cap;
  EXPECT_EQ(fetch_body_cap(1), 64u) << "a lane holds 8 body pieces, a slot is 4";
  EXPECT_EQ(fetch_body_cap(4), 256u);
  EXPECT_EQ(fetch_body_cap(megaring::kMaxFetchWarps), 448u);
  for (uint32_t w = 1; w <= megaring::kMaxFetchWarps; ++w)
    EXPECT_EQ(fetch_window_cap(w), 2 * fetch_body_cap(w)) << "two rounds' worth of headers";
  EXPECT_EQ(fetch_warp_loads(64, 0, 1), 8u + 1u);
  EXPECT_EQ(fetch_warp_loads(256, 0, 4), 8u + 1u) << "1024 pieces over 128 threads";
  EXPECT_EQ(fetch_warp_loads(128, 0, 4), 4u + 1u);
  EXPECT_EQ(fetch_warp_loads(128, 0, 7), 3u + 1u);
  EXPECT_EQ(fetch_warp_loads(0, 128, 1), 4u + 1u) << "4 groups of 32 headers, one warp";
  EXPECT_EQ(fetch_warp_loads(0, 512, 4), 4u + 1u);
  EXPECT_EQ(fetch_warp_loads(0, 1, 4), 1u + 1u) << "the idle poll: one header, then the control words";
  EXPECT_EQ(fetch_warp_loads(100, 8, 4), 4u + 1u + 1u);
  EXPECT_EQ(fetch_warp_loads(100, 8, 4, /*check_stop=*/true), 4u + 1u + 2u) << "stop_at, every 8th round";
}

}  // namespace
}  // namespace megaring_test
