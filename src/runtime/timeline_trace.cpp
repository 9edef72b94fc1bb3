// SPDX-License-Identifier: Apache-2.0
// Chrome trace-event JSON (opens in Perfetto and chrome://tracing):
//   pid 1 "megaring consumer": one thread (track) per unit, one complete
//         event ("X") per slot from claim to completion;
//   pid 2 "megaring host": track 0 holds publish instants, track 1 the reap
//         passes; a flow arrow links each publish to the slot that ran it.
// Times are microseconds on the host steady clock, relative to the earliest
// event so the numbers stay readable.
#include "runtime/timeline_trace.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <memory>

namespace megaring::detail {
namespace {

const char* opcode_name(uint32_t opcode) {
  switch (opcode) {
    case MR_OP_NOP: return "NOP";
    case MR_OP_STORE_U32: return "STORE_U32";
    case MR_OP_ATOMIC_ADD: return "ATOMIC_ADD";
    case MR_OP_FILL: return "FILL";
    case MR_OP_COPY: return "COPY";
    case MR_OP_REDUCE_ADD_U32: return "REDUCE_ADD_U32";
    case MR_OP_FENCE: return "FENCE";
    case MR_OP_DELAY_NS: return "DELAY_NS";
    case MR_OP_READ_CLOCK: return "READ_CLOCK";
    case MR_OP_STAGE_TO_BUFFER: return "STAGE_TO_BUFFER";
    case MR_OP_BUFFER_TO_STAGING: return "BUFFER_TO_STAGING";
    case MR_OP_AXPY_F32: return "AXPY_F32";
    default: return opcode >= MR_OP_USER_BASE ? "user" : "system";
  }
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

Status write_chrome_trace(const Timeline& t, const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "w"));
  if (!file) return Status(Result::kInvalidArgument, "cannot open " + path + " for writing");
  std::FILE* f = file.get();

  int64_t origin = std::numeric_limits<int64_t>::max();
  for (const TimelineSlot& s : t.slots) origin = std::min({origin, s.publish_ns, s.claim_ns});
  for (const TimelineReap& r : t.reaps) origin = std::min(origin, r.start_ns);
  if (origin == std::numeric_limits<int64_t>::max()) origin = 0;
  auto us = [origin](int64_t ns) { return static_cast<double>(ns - origin) / 1000.0; };

  std::fprintf(f, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"backend\":\"%s\","
               "\"clock_offset_ns\":%" PRId64 ",\"clock_uncertainty_ns\":%" PRId64 "},\n"
               "\"traceEvents\":[\n",
               t.backend, t.clock_offset_ns, t.clock_uncertainty_ns);
  std::fprintf(f, "{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"megaring consumer (%s)\"}},\n", t.backend);
  std::fprintf(f, "{\"ph\":\"M\",\"pid\":2,\"name\":\"process_name\",\"args\":{\"name\":\"megaring host\"}},\n");
  for (uint32_t u = 0; u < t.units; ++u)
    std::fprintf(f, "{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":\"thread_name\",\"args\":{\"name\":\"unit %u\"}},\n", u, u);
  std::fprintf(f, "{\"ph\":\"M\",\"pid\":2,\"tid\":0,\"name\":\"thread_name\",\"args\":{\"name\":\"publish\"}},\n");
  std::fprintf(f, "{\"ph\":\"M\",\"pid\":2,\"tid\":1,\"name\":\"thread_name\",\"args\":{\"name\":\"reap\"}}");

  for (const TimelineSlot& s : t.slots) {
    const char* name = opcode_name(s.opcode);
    std::fprintf(f,
                 ",\n{\"ph\":\"X\",\"pid\":1,\"tid\":%u,\"name\":\"%s\",\"ts\":%.3f,\"dur\":%.3f,"
                 "\"args\":{\"ticket\":%" PRIu64 ",\"opcode\":%u,\"queue_us\":%.3f}}",
                 s.unit, name, us(s.claim_ns), std::max(0.0, (s.complete_ns - s.claim_ns) / 1000.0),
                 s.ticket, s.opcode, (s.claim_ns - s.publish_ns) / 1000.0);
    if (s.publish_ns != 0) {
      std::fprintf(f,
                   ",\n{\"ph\":\"i\",\"s\":\"t\",\"pid\":2,\"tid\":0,\"name\":\"publish %s\",\"ts\":%.3f,"
                   "\"args\":{\"ticket\":%" PRIu64 "}}",
                   name, us(s.publish_ns), s.ticket);
      // Flow arrow publish -> slot (binds to the enclosing slices).
      std::fprintf(f,
                   ",\n{\"ph\":\"s\",\"pid\":2,\"tid\":0,\"name\":\"slot\",\"cat\":\"slot\",\"id\":%" PRIu64
                   ",\"ts\":%.3f}"
                   ",\n{\"ph\":\"f\",\"bp\":\"e\",\"pid\":1,\"tid\":%u,\"name\":\"slot\",\"cat\":\"slot\",\"id\":%" PRIu64
                   ",\"ts\":%.3f}",
                   s.ticket, us(s.publish_ns), s.unit, s.ticket, us(s.claim_ns));
    }
  }
  for (const TimelineReap& r : t.reaps) {
    std::fprintf(f,
                 ",\n{\"ph\":\"X\",\"pid\":2,\"tid\":1,\"name\":\"reap\",\"ts\":%.3f,\"dur\":%.3f,"
                 "\"args\":{\"first_ticket\":%" PRIu64 ",\"count\":%" PRIu64 "}}",
                 us(r.start_ns), (r.end_ns - r.start_ns) / 1000.0, r.first_ticket, r.count);
  }
  std::fprintf(f, "\n]}\n");
  // Buffered output may fail only at the flush or the close (a full disk).
  const bool write_failed = std::fflush(f) != 0 || std::ferror(f) != 0;
  if (std::fclose(file.release()) != 0 || write_failed)
    return Status(Result::kIoError, "cannot write the trace to " + path);
  return Status::ok();
}

}  // namespace megaring::detail
