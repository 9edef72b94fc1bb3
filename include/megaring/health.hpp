// SPDX-License-Identifier: Apache-2.0
// The operator's view of a runtime (Runtime::health, Runtime::dump_state,
// Runtime::metrics_text): is the consumer alive, how long since its last
// heartbeat, what went wrong last, and where every cursor and consumer
// unit stands. All of it is read without publishing a slot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "megaring/status.hpp"

namespace megaring {

enum class RuntimeState {
  kRunning,   // publishing allowed
  kDraining,  // shutdown() (or abort()) in progress
  kStopped,   // shut down; the consumer exited
  kAborted,   // abort(), or a shutdown that timed out and aborted
  kFailed,    // the consumer died (a sticky CUDA error)
  kWedged,    // a stop could not join the consumer: its memory is leaked
};
const char* runtime_state_name(RuntimeState state) noexcept;

// The consumer of a running runtime (Runtime::suspend, Runtime::resume).
enum class ConsumerPhase {
  kLive,        // started or resumed: it serves the rings
  kSuspending,  // suspend() asked it to stop and it has not exited yet
                // (slots it had staged still run)
  kSuspended,   // stopped: nothing of it runs; rings, tables and slots
                // published meanwhile wait for resume()
};
const char* consumer_phase_name(ConsumerPhase phase) noexcept;

// Where an age in host nanoseconds comes from.
enum class AgeSource {
  kNone,        // unknown (nothing to measure, or no look saw it yet)
  kSameClock,   // the consumer's clock is the host's steady clock (CPU
                // backend): host now - the consumer's stamp, exact
  kCalibrated,  // timeline mode: host now - the stamp converted with the
                // measured clock offset (Timeline::clock_offset_ns, within
                // its uncertainty)
  kRecorded,    // timeline mode: host now - the ticket's recorded publish time
  kObserved,    // host now - when one of this runtime's health() /
                // dump_state() / metrics_text() looks first saw the value.
                // A LOWER bound: the value was there before that look.
};
const char* age_source_name(AgeSource source) noexcept;

struct Health {
  RuntimeState state = RuntimeState::kStopped;
  // Running or draining, not every unit exited, and the backend's check
  // (on the GPU a cudaStreamQuery of the kernel) passes.
  bool consumer_alive = false;
  // While state is kRunning: whether the consumer is suspended (then not
  // alive, and its heartbeat ages: that is no failure). kLive otherwise.
  ConsumerPhase consumer_phase = ConsumerPhase::kLive;
  // The consumer's last heartbeat stamp, on its own clock (the fetcher
  // stamps it at most every Config::heartbeat_interval_ns, between rounds).
  uint64_t heartbeat_ns = 0;
  // Host nanoseconds since that stamp, as heartbeat_age_source says; -1
  // when kNone. A live consumer keeps it near heartbeat_interval_ns; one
  // that stopped stamping lets it grow.
  int64_t heartbeat_age_ns = -1;
  AgeSource heartbeat_age_source = AgeSource::kNone;
  // The last error the runtime saw (consumer death, a shutdown or wait
  // that timed out, an abort, a failed backend call), OK if none; and how
  // long ago, in host nanoseconds (-1 if none).
  Status last_error;
  int64_t last_error_age_ns = -1;
};

// One ring: every ticket below published_end is reserved (publishing or
// published), every ticket below done_count completed.
struct RingView {
  uint32_t ring = 0;
  uint64_t published_end = 0;
  uint64_t done_count = 0;
};

// One executor (GPU block or CPU worker), from the store it makes as it
// takes a slot (consumer-private memory; no host traffic). Each field is
// read whole, but a unit that moves on while the host reads may show the
// ticket of one slot with the tenant and opcode of the next.
struct UnitView {
  uint32_t unit = 0;
  bool started = false;  // has taken a slot since create()
  bool busy = false;     // its slot is not yet below its ring's DONE_COUNT
  uint32_t ring = 0;
  uint64_t ticket = 0;   // the ring's ticket
  uint32_t tenant = 0;   // the slot's tenant field (0: none)
  uint32_t opcode = 0;   // the opcode as published (global, for a tenant's slot)
  // A chunk of slots that one thread runs alone (NOP, READ_CLOCK,
  // STORE_U32, ATOMIC_ADD without a tenant: they never wait) is noted once,
  // by its first slot; chunk_slots says how many it holds (1 otherwise).
  uint32_t chunk_slots = 0;
};

struct OldestOutstanding {
  bool any = false;  // some ring has a published ticket not completed
  uint32_t ring = 0;
  uint64_t ticket = 0;  // that ring's DONE_COUNT
  int64_t age_ns = -1;  // host ns since its publish (kRecorded) or a lower bound (kObserved)
  AgeSource age_source = AgeSource::kNone;
};

struct StateDump {
  Health health;
  const char* backend = "";
  std::vector<RingView> rings;  // ring 0, then the producers' rings
  // The consumer's own cursors over its sequence (the order it staged
  // slots in from all rings; with one ring, ring 0's tickets): staged
  // below `fetched`, handed to executors below `claimed`, completed and
  // published in DONE_COUNT below `completed`. Read from consumer memory.
  uint64_t fetched = 0;
  uint64_t claimed = 0;
  uint64_t completed = 0;
  std::vector<UnitView> units;
  OldestOutstanding oldest;
};

// The dump as text, a line each for the state, the heartbeat, the last
// error, every ring, the consumer's cursors, every unit and the oldest
// outstanding ticket (what Runtime::dump_state(std::string*) returns).
std::string format_state_dump(const StateDump& dump);

}  // namespace megaring
