// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the consumer's decode / admit / validate / execute path
// for one slot, on arbitrary slot bytes against arbitrary buffer and tenant
// tables. It runs exactly what a CPU worker runs for a claimed slot
// (detail::cpu_worker in megaring/megakernel.cuh):
//
//   Outcome out;
//   if (admit_slot(p, slot, out)) { HostExec ctx{p, ticket, slot.tenant};
//                                   run_slot<NoUserOps>(ctx, slot, out); }
//
// (megakernel.cuh itself needs nvcc, so this includes builtin_ops.cuh, which
// has admit_slot, HostExec, run_slot and NoUserOps.)
//
// and checks the outcome and every buffer byte against an independent
// reference written below with plain arithmetic in unsigned __int128 (it
// cannot wrap). The consumer headers are the ones the GPU kernel compiles;
// here they are compiled for the host.
//
// Input layout (fixed offsets, little-endian; missing bytes read as 0, bytes
// past kInputBytes are ignored), so that a mutation of one field never moves
// another:
//
//   [  0,  64)  mr_slot, raw: header, opcode, tenant, flags, reserved, args[5]
//   [ 64,  72)  ticket (u64) the slot runs as
//   [ 72]       max_buffers - 1 (mod 8): 1..8 table entries
//   [ 73]       max_tenants - 1 (mod 8): 1..8 table entries
//   [ 74,  80)  unused
//   [ 80, 272)  8 buffer records of 24 bytes (only the first max_buffers used):
//                 +0  u16 size (mod 4097: 0..4096 bytes, allocated exactly)
//                 +2  u8  content seed (initial bytes of the allocation)
//                 +3  u8  mode: bit 0 set: handle is the raw u32 below;
//                             clear: its generation bits [31:16] with this
//                             entry's own index in [15:0].
//                             bit 1 set: owner is the slot's tenant id
//                 +4  u32 handle (0: free entry)
//                 +8  u32 owner tenant id (0: the runtime's), unless mode bit 1
//                 +12 u32 unused
//                 +16 u64 retire_ticket (0 encodes ~0: live)
//   [272, 464)  8 tenant records of 24 bytes (only the first max_tenants used):
//                 +0  u32 tenant id; +4 u32 state; +8 u32 base_opcode;
//                 +12 u32 opcode_cap
//                 +16 u8  mode: bit 0 set: tenant id is the raw u32; clear:
//                             its generation bits with this entry's index.
//                             bit 1 set: base_opcode = slot opcode - the field
//                             (the field is the slot's tenant-local opcode)
//                 +17..23 grants: all zero: every opcode granted; else the
//                             seven bytes seed the eight grant words
//                             (grant_words below)
//   [464]       region-table entries (mod 7): 0 = no region table (every
//               region BAD_REGION, as inputs written before regions mean)
//   [465, 472)  unused
//   [472, 664)  6 staging-region records of 32 bytes, each over its own
//               exact-size host allocation:
//                 +0  u16 size (mod 4097); +2 u8 content seed
//                 +3  u8  mode: bit 0 raw handle / derived index, bit 1
//                             owner is the slot's tenant (as buffers)
//                 +4  u32 handle; +8 u32 owner; +12 u32 policy (raw)
//                 +16 u64 committed (raw: may exceed the size)
//                 +24 u64 retire_ticket (0 encodes ~0: live)
//
// Every table is reachable (the raw modes); the derived modes only spare the
// fuzzer from discovering index-consistent ids and matching windows by luck.
// fuzz/make_consumer_seeds.py writes seeds in this layout; consumer.dict is
// the libFuzzer dictionary (boundary values of the 64-bit arguments).
#include <megaring/consumer/builtin_ops.cuh>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

namespace {

using megaring::ConsumerParams;
using megaring::Outcome;
using u128 = unsigned __int128;

constexpr size_t kSlotOffset = 0;
constexpr size_t kTicketOffset = 64;
constexpr size_t kBufferCountOffset = 72;
constexpr size_t kTenantCountOffset = 73;
constexpr size_t kBufferRecordsOffset = 80;
constexpr size_t kBufferRecordBytes = 24;
constexpr size_t kMaxTableEntries = 8;
constexpr size_t kTenantRecordsOffset = kBufferRecordsOffset + kMaxTableEntries * kBufferRecordBytes;
constexpr size_t kTenantRecordBytes = 24;
constexpr size_t kRegionCountOffset = kTenantRecordsOffset + kMaxTableEntries * kTenantRecordBytes;
constexpr size_t kRegionRecordsOffset = kRegionCountOffset + 8;
constexpr size_t kRegionRecordBytes = 32;
constexpr size_t kMaxRegionEntries = 6;
constexpr size_t kInputBytes = kRegionRecordsOffset + kMaxRegionEntries * kRegionRecordBytes;
static_assert(kInputBytes == 664, "fuzz/make_consumer_seeds.py and fuzz/CMakeLists.txt's MAX_LEN");
constexpr uint64_t kMaxBufferSize = 4096;

// Bounds-checked little-endian reads at fixed offsets; bytes past the input
// read as 0.
struct ByteReader {
  const uint8_t* data;
  size_t size;
  uint8_t u8(size_t at) const { return at < size ? data[at] : 0; }
  uint64_t uint(size_t at, unsigned width) const {
    uint64_t v = 0;
    for (unsigned i = 0; i < width; ++i) v |= static_cast<uint64_t>(u8(at + i)) << (8 * i);
    return v;
  }
  uint16_t u16(size_t at) const { return static_cast<uint16_t>(uint(at, 2)); }
  uint32_t u32(size_t at) const { return static_cast<uint32_t>(uint(at, 4)); }
  uint64_t u64(size_t at) const { return uint(at, 8); }
};

// A tenant record's grant words from its seven grant bytes: all zero grants
// everything (the seeds written before grants existed keep their meaning);
// else each word is a mix of them, so some opcodes are granted, some not.
mr_tenant_grants grant_words(uint64_t seed) {
  mr_tenant_grants g{};
  for (uint32_t w = 0; w < MR_GRANT_WORDS; ++w) {
    if (seed == 0) {
      g.words[w] = ~0ull;
      continue;
    }
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (w + 1);  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    g.words[w] = z ^ (z >> 31);
  }
  return g;
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "megaring consumer fuzz: %s\n", what);
  std::fflush(stderr);
  __builtin_trap();
}

#define FUZZ_CHECK(cond, ...)                                                    \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "megaring consumer fuzz: check failed: %s\n  ", #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                         \
      std::fprintf(stderr, "\n");                                                \
      fail("see above");                                                         \
    }                                                                            \
  } while (0)

uint64_t le_load(const std::vector<uint8_t>& v, uint64_t at, unsigned width) {
  uint64_t x = 0;
  for (unsigned i = 0; i < width; ++i) x |= static_cast<uint64_t>(v[at + i]) << (8 * i);
  return x;
}
void le_store(std::vector<uint8_t>& v, uint64_t at, uint64_t x, unsigned width) {
  for (unsigned i = 0; i < width; ++i) v[at + i] = static_cast<uint8_t>(x >> (8 * i));
}

// What the reference expects of the consumer's outcome.
struct Expected {
  uint16_t status = MR_STATUS_OK;
  uint16_t fault = MR_FAULT_NONE;
  bool check_result = true;
  uint64_t result = 0;
  bool abort_allowed = false;     // DELAY_NS: ABORTED (abandoned) is fine too
  bool clock_result = false;      // READ_CLOCK: result within the call's clock
  uint64_t tenant_index = 0;      // counters: which entry (0: none touched)
  mr_tenant_counters counters{};  // expected counters at tenant_index
  std::vector<std::vector<uint8_t>> contents;  // every buffer's bytes after
  std::vector<std::vector<uint8_t>> region_contents;  // every region's bytes after
};

// The tables as the input described them (the model; the consumer's tables
// are separate copies, and are checked to be left unchanged).
struct Model {
  std::vector<mr_buffer_entry> buffers;
  std::vector<mr_tenant_entry> tenants;
  std::vector<mr_tenant_grants> grants;
  std::vector<std::vector<uint8_t>> contents;  // before the slot ran
  std::vector<mr_region_entry> regions;        // empty: no region table
  std::vector<std::vector<uint8_t>> region_contents;
  uint64_t ticket = 0;
};

const char* status_name(unsigned s) {
  switch (s) {
    case MR_STATUS_OK: return "OK";
    case MR_STATUS_FAULT: return "FAULT";
    case MR_STATUS_ABORTED: return "ABORTED";
    case MR_STATUS_REVOKED: return "REVOKED";
    default: return "?";
  }
}

// The reference: slot_abi.h's semantics, written out independently.
class Reference {
  // mr_tenant_grants: built-ins [1, 64) in word 0, user opcodes [256, 704)
  // in words 1..7, every other local opcode bit 0 of word 0.
  static bool granted(const mr_tenant_grants& g, uint32_t local) {
    uint32_t word = 0, bit = 0;
    if (local >= 1 && local < 64) {
      bit = local;
    } else if (local >= 256 && local < 256 + 7 * 64) {
      word = 1 + (local - 256) / 64;
      bit = (local - 256) % 64;
    }
    return ((g.words[word] >> bit) & 1u) != 0;
  }

 public:
  Reference(const Model& m, const mr_slot& s) : m_(m), s_(s) {
    e_.contents = m.contents;
    e_.region_contents = m.region_contents;
  }

  Expected run() {
    uint32_t op = s_.opcode;
    // C4, admission.
    if (s_.tenant == 0) {
      if (op >= MR_OP_TENANT_BASE) return fault(MR_FAULT_OUT_OF_WINDOW);
    } else {
      const uint64_t index = s_.tenant & 0xFFFFu;
      if (index == 0 || index >= m_.tenants.size()) return fault(MR_FAULT_BAD_TENANT);
      const mr_tenant_entry& t = m_.tenants[index];
      if (t.tenant != s_.tenant) return fault(MR_FAULT_BAD_TENANT);
      e_.tenant_index = index;
      if (t.state != MR_TENANT_ACTIVE) {
        e_.counters.revoked = 1;
        e_.status = MR_STATUS_REVOKED;
        e_.result = 0;
        return e_;
      }
      if (static_cast<u128>(op) < t.base_opcode ||
          static_cast<u128>(op) >= static_cast<u128>(t.base_opcode) + t.opcode_cap) {
        e_.counters.out_of_window = 1;
        return fault(MR_FAULT_OUT_OF_WINDOW);
      }
      if (!granted(m_.grants[index], static_cast<uint32_t>(static_cast<u128>(op) - t.base_opcode))) {
        e_.counters.not_granted = 1;
        return fault(MR_FAULT_NOT_GRANTED);
      }
      e_.counters.admitted = 1;
      op = static_cast<uint32_t>(static_cast<u128>(op) - t.base_opcode);  // tenant-local
    }
    // Fixed fields.
    if ((s_.flags >> 16) != 0 || s_.reserved != 0) return fault(MR_FAULT_RESERVED_FLAGS);
    const uint64_t* a = s_.args;
    switch (op) {
      case MR_OP_NOP: return ok(a[0]);
      case MR_OP_STORE_U32: {
        if (a[2] >= (static_cast<u128>(1) << 32)) return fault(MR_FAULT_BAD_ARGUMENT);
        size_t b = 0;
        if (uint16_t f = resolve(a[0], a[1], 4, 4, &b)) return fault(f);
        le_store(e_.contents[b], a[1], a[2], 4);
        return ok(a[2]);
      }
      case MR_OP_ATOMIC_ADD: {
        size_t b = 0;
        if (uint16_t f = resolve(a[0], a[1], 8, 8, &b)) return fault(f);
        const uint64_t old = le_load(m_.contents[b], a[1], 8);
        le_store(e_.contents[b], a[1], static_cast<uint64_t>((static_cast<u128>(old) + a[2]) % (static_cast<u128>(1) << 64)), 8);
        return ok(old);
      }
      case MR_OP_FILL: {
        if (a[3] > 0xFF) return fault(MR_FAULT_BAD_ARGUMENT);
        size_t b = 0;
        if (uint16_t f = resolve(a[0], a[1], a[2], 1, &b)) return fault(f);
        for (u128 i = 0; i < a[2]; ++i) e_.contents[b][a[1] + static_cast<uint64_t>(i)] = static_cast<uint8_t>(a[3]);
        return ok(a[2]);
      }
      case MR_OP_COPY: {
        size_t d = 0, src = 0;
        if (uint16_t f = resolve(a[0], a[1], a[4], 1, &d)) return fault(f);
        if (uint16_t f = resolve(a[2], a[3], a[4], 1, &src)) return fault(f);
        // Distinct entries are distinct allocations here: ranges overlap only
        // within one buffer.
        if (a[4] != 0 && d == src && static_cast<u128>(a[1]) < static_cast<u128>(a[3]) + a[4] &&
            static_cast<u128>(a[3]) < static_cast<u128>(a[1]) + a[4])
          return fault(MR_FAULT_BAD_ARGUMENT);
        for (u128 i = 0; i < a[4]; ++i)
          e_.contents[d][a[1] + static_cast<uint64_t>(i)] = m_.contents[src][a[3] + static_cast<uint64_t>(i)];
        return ok(a[4]);
      }
      case MR_OP_REDUCE_ADD_U32: {
        const u128 bytes = static_cast<u128>(a[2]) * 4;
        // The handler refuses a count whose byte length does not fit in 64
        // bits before it looks at the handle (OUT_OF_BOUNDS either way when
        // the handle is good).
        if (bytes >= (static_cast<u128>(1) << 64)) return fault(MR_FAULT_OUT_OF_BOUNDS);
        size_t b = 0;
        if (uint16_t f = resolve(a[0], a[1], bytes, 4, &b)) return fault(f);
        u128 sum = 0;
        for (u128 i = 0; i < a[2]; ++i) sum += le_load(m_.contents[b], a[1] + static_cast<uint64_t>(i) * 4, 4);
        FUZZ_CHECK(sum < (static_cast<u128>(1) << 64), "reference sum overflow");
        return ok(static_cast<uint64_t>(sum));
      }
      case MR_OP_FENCE:
        // done_cursor is ~0: every earlier ticket completed. The result is
        // the prefix the fence waited for: its own ticket.
        return ok(m_.ticket);
      case MR_OP_DELAY_NS:
        if (a[0] > MR_DELAY_MAX_NS) return fault(MR_FAULT_BAD_ARGUMENT);
        // The abort flag is set: a non-zero delay may be abandoned at once.
        e_.abort_allowed = a[0] != 0;
        return ok(a[0]);
      case MR_OP_READ_CLOCK:
        e_.clock_result = true;
        e_.check_result = false;
        return ok(0);
      case MR_OP_STAGE_TO_BUFFER:
      case MR_OP_BUFFER_TO_STAGING: {
        // The region (a0, a1, a2) first, then the buffer (a3, a4, a2).
        const bool read = op == MR_OP_STAGE_TO_BUFFER;
        size_t r = 0, b = 0;
        if (uint16_t f = resolve_region(a[0], a[1], a[2], read, &r)) return fault(f);
        if (uint16_t f = resolve(a[3], a[4], a[2], 1, &b)) return fault(f);
        // Regions and buffers are distinct allocations: never overlap.
        for (u128 i = 0; i < a[2]; ++i) {
          const uint64_t ro = a[1] + static_cast<uint64_t>(i), bo = a[4] + static_cast<uint64_t>(i);
          if (read) {
            e_.contents[b][bo] = m_.region_contents[r][ro];
          } else {
            e_.region_contents[r][ro] = m_.contents[b][bo];
          }
        }
        return ok(a[2]);
      }
      case MR_OP_AXPY_F32: {
        const uint64_t count = a[4] & 0xFFFFFFFFull;
        const uint32_t alpha_bits = static_cast<uint32_t>(a[4] >> 32);
        size_t y = 0, x = 0;
        if (uint16_t f = resolve(a[0], a[1], static_cast<u128>(count) * 4, 4, &y)) return fault(f);
        if (uint16_t f = resolve(a[2], a[3], static_cast<u128>(count) * 4, 4, &x)) return fault(f);
        // Distinct entries are distinct allocations: ranges overlap only
        // within one buffer, and the same range is allowed.
        if (count != 0 && y == x && a[1] != a[3] &&
            static_cast<u128>(a[1]) < static_cast<u128>(a[3]) + count * 4 &&
            static_cast<u128>(a[3]) < static_cast<u128>(a[1]) + count * 4)
          return fault(MR_FAULT_BAD_ARGUMENT);
        float alpha;
        std::memcpy(&alpha, &alpha_bits, 4);
        for (uint64_t i = 0; i < count; ++i) {
          const uint32_t xb = static_cast<uint32_t>(le_load(m_.contents[x], a[3] + i * 4, 4));
          const uint32_t yb = static_cast<uint32_t>(le_load(m_.contents[y], a[1] + i * 4, 4));
          float xf, yf;
          std::memcpy(&xf, &xb, 4);
          std::memcpy(&yf, &yb, 4);
          const float r = std::fmaf(alpha, xf, yf);
          uint32_t rb;
          std::memcpy(&rb, &r, 4);
          le_store(e_.contents[y], a[1] + i * 4, rb, 4);
        }
        return ok(count);
      }
      default:
        // Opcode 0, unassigned built-ins and system opcodes, and user opcodes
        // (NoUserOps owns none).
        return fault(MR_FAULT_UNKNOWN_OPCODE);
    }
  }

 private:
  Expected fault(uint16_t code) {
    e_.status = MR_STATUS_FAULT;
    e_.fault = code;
    e_.result = 0;
    e_.contents = m_.contents;  // a refused slot changes nothing
    e_.region_contents = m_.region_contents;
    return e_;
  }
  Expected ok(uint64_t result) {
    e_.status = MR_STATUS_OK;
    e_.fault = MR_FAULT_NONE;
    e_.result = result;
    return e_;
  }
  // A buffer reference of the slot: handle (64-bit slot word), offset and
  // length; 0 with the table index, or the fault code.
  uint16_t resolve(uint64_t handle, uint64_t offset, u128 bytes, uint32_t align, size_t* index) {
    if (handle == 0 || handle > 0xFFFFFFFFull) return MR_FAULT_BAD_HANDLE;
    const uint64_t i = handle & 0xFFFFu;  // [15:0] table index
    if (i >= m_.buffers.size()) return MR_FAULT_BAD_HANDLE;
    const mr_buffer_entry& b = m_.buffers[i];
    if (b.handle != handle) return MR_FAULT_BAD_HANDLE;  // free entry or another generation
    if (m_.ticket >= b.retire_ticket) return MR_FAULT_BAD_HANDLE;  // freed before this slot
    if (s_.tenant != 0 && b.owner != s_.tenant) return MR_FAULT_BAD_HANDLE;  // not its tenant's
    if (static_cast<u128>(offset) + bytes > b.bytes) return MR_FAULT_OUT_OF_BOUNDS;
    if (align > 1 && (static_cast<u128>(b.base) + offset) % align != 0) return MR_FAULT_MISALIGNED;
    *index = i;
    return 0;
  }

  // A descriptor (read: immutable or append-only, within the committed
  // length, never above the size) or a write range (mutable, within the
  // size); 0 with the table index, or the fault code.
  uint16_t resolve_region(uint64_t handle, uint64_t offset, uint64_t bytes, bool read, size_t* index) {
    if (handle == 0 || handle > 0xFFFFFFFFull) return MR_FAULT_BAD_REGION;
    const uint64_t i = handle & 0xFFFFu;
    if (i >= m_.regions.size()) return MR_FAULT_BAD_REGION;
    const mr_region_entry& r = m_.regions[i];
    if (r.handle != handle) return MR_FAULT_BAD_REGION;          // free entry or another generation
    if (m_.ticket >= r.retire_ticket) return MR_FAULT_BAD_REGION;  // freed before this slot
    if (s_.tenant != 0 && r.owner != s_.tenant) return MR_FAULT_BAD_REGION;  // another tenant's
    const bool readable = r.policy == MR_REGION_IMMUTABLE || r.policy == MR_REGION_APPEND_ONLY;
    if (read ? !readable : r.policy != MR_REGION_MUTABLE) return MR_FAULT_REGION_POLICY;
    const uint64_t limit = read ? std::min(r.committed, r.bytes) : r.bytes;
    if (static_cast<u128>(offset) + bytes > limit) return MR_FAULT_OUT_OF_BOUNDS;
    *index = i;
    return 0;
  }

  const Model& m_;
  const mr_slot s_;
  Expected e_;
};

uint8_t content_byte(uint8_t seed, uint64_t i) {
  // Distinct, non-constant bytes so that sums and copies are checked.
  return static_cast<uint8_t>((seed * 0x9Du) ^ (i * 0x3Bu) ^ (i >> 3) ^ 0x5Au);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ByteReader in{data, size};

  mr_slot slot{};
  {
    uint8_t raw[sizeof(mr_slot)];
    for (size_t i = 0; i < sizeof raw; ++i) raw[i] = in.u8(kSlotOffset + i);
    std::memcpy(&slot, raw, sizeof slot);
  }
  Model model;
  model.ticket = in.u64(kTicketOffset);
  const uint32_t max_buffers = 1u + in.u8(kBufferCountOffset) % kMaxTableEntries;
  const uint32_t max_tenants = 1u + in.u8(kTenantCountOffset) % kMaxTableEntries;

  // Buffers: one exact-size heap allocation each, so that ASan sees a
  // one-byte overflow, and a table of exactly max_buffers entries.
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> memory;
  std::unique_ptr<mr_buffer_entry[]> buffers(new mr_buffer_entry[max_buffers]);
  for (uint32_t i = 0; i < max_buffers; ++i) {
    const size_t rec = kBufferRecordsOffset + i * kBufferRecordBytes;
    const uint64_t bytes = in.u16(rec) % (kMaxBufferSize + 1);
    const uint8_t seed = in.u8(rec + 2);
    const uint8_t mode = in.u8(rec + 3);
    auto* mem = static_cast<uint8_t*>(std::malloc(bytes ? bytes : 1));
    if (mem == nullptr) std::abort();
    memory.emplace_back(mem);
    std::vector<uint8_t> init(bytes);
    for (uint64_t k = 0; k < bytes; ++k) init[k] = content_byte(seed, k);
    if (bytes) std::memcpy(mem, init.data(), bytes);
    mr_buffer_entry e{};
    e.base = reinterpret_cast<uint64_t>(mem);
    e.bytes = bytes;
    e.handle = in.u32(rec + 4);
    if ((mode & 1u) == 0) e.handle = (e.handle & ~MR_BUFFER_INDEX_MASK) | i;
    e.owner = (mode & 2u) != 0 ? slot.tenant : in.u32(rec + 8);
    const uint64_t retire = in.u64(rec + 16);
    e.retire_ticket = retire == 0 ? ~0ull : retire;
    buffers[i] = e;
    model.buffers.push_back(e);
    model.contents.push_back(std::move(init));
  }

  std::unique_ptr<mr_tenant_entry[]> tenants(new mr_tenant_entry[max_tenants]);
  std::unique_ptr<mr_tenant_counters[]> counters(new mr_tenant_counters[max_tenants]);
  std::unique_ptr<mr_tenant_grants[]> grants(new mr_tenant_grants[max_tenants]);
  for (uint32_t i = 0; i < max_tenants; ++i) {
    const size_t rec = kTenantRecordsOffset + i * kTenantRecordBytes;
    mr_tenant_entry t{};
    const uint8_t mode = in.u8(rec + 16);
    t.tenant = in.u32(rec);
    if ((mode & 1u) == 0) t.tenant = (t.tenant & ~MR_TENANT_INDEX_MASK) | i;
    t.state = in.u32(rec + 4);
    t.base_opcode = in.u32(rec + 8);
    if ((mode & 2u) != 0) t.base_opcode = slot.opcode - t.base_opcode;  // u32, wraps
    t.opcode_cap = in.u32(rec + 12);
    tenants[i] = t;
    model.tenants.push_back(t);
    counters[i] = mr_tenant_counters{};
    grants[i] = grant_words(in.uint(rec + 17, 7));
    model.grants.push_back(grants[i]);
  }

  // Staging regions: one exact-size allocation each (ASan sees a byte past
  // the committed length read from past the size), and a table of exactly
  // the entries the input asks for (none: no table at all).
  const uint32_t max_regions = in.u8(kRegionCountOffset) % (kMaxRegionEntries + 1);
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> region_memory;
  std::unique_ptr<mr_region_entry[]> regions(max_regions ? new mr_region_entry[max_regions] : nullptr);
  for (uint32_t i = 0; i < max_regions; ++i) {
    const size_t rec = kRegionRecordsOffset + i * kRegionRecordBytes;
    const uint64_t bytes = in.u16(rec) % (kMaxBufferSize + 1);
    const uint8_t seed = in.u8(rec + 2);
    const uint8_t mode = in.u8(rec + 3);
    auto* mem = static_cast<uint8_t*>(std::malloc(bytes ? bytes : 1));
    if (mem == nullptr) std::abort();
    region_memory.emplace_back(mem);
    std::vector<uint8_t> init(bytes);
    for (uint64_t k = 0; k < bytes; ++k) init[k] = content_byte(static_cast<uint8_t>(seed ^ 0xC3), k);
    if (bytes) std::memcpy(mem, init.data(), bytes);
    mr_region_entry e{};
    e.base = reinterpret_cast<uint64_t>(mem);
    e.bytes = bytes;
    e.handle = in.u32(rec + 4);
    if ((mode & 1u) == 0) e.handle = (e.handle & ~MR_BUFFER_INDEX_MASK) | i;
    e.owner = (mode & 2u) != 0 ? slot.tenant : in.u32(rec + 8);
    e.policy = in.u32(rec + 12);
    e.committed = in.u64(rec + 16);
    const uint64_t retire = in.u64(rec + 24);
    e.retire_ticket = retire == 0 ? ~0ull : retire;
    regions[i] = e;
    model.regions.push_back(e);
    model.region_contents.push_back(std::move(init));
  }

  // The rest of the consumer's parameters. done_cursor = ~0: FENCE's
  // wait_for_prefix returns at once; abort_seen = 1 (the fetcher's mirror of
  // abort_flag, which is what handlers read): DELAY_NS returns at once
  // (abandoned) unless its argument is 0.
  auto priv = std::make_unique<megaring::detail::ConsumerPrivate>();
  *priv = megaring::detail::initial_private(0);
  priv->done_cursor = ~0ull;
  priv->abort_seen = 1;
  auto submission = std::make_unique<mr_submission_control>();
  *submission = mr_submission_control{};
  submission->stop_at = ~0ull;
  submission->abort_flag = 1;
  auto completion_control = std::make_unique<mr_completion_control>();
  *completion_control = mr_completion_control{};
  const megaring::detail::ConsumerPrivate priv_before = *priv;
  const mr_submission_control submission_before = *submission;

  ConsumerParams p{};
  p.slots = nullptr;  // the slot body is already copied (C3)
  p.submission = submission.get();
  p.completions = nullptr;
  p.completion_control = completion_control.get();
  p.priv = priv.get();
  p.done_flags = nullptr;
  p.staged = nullptr;
  p.outcomes = nullptr;
  p.buffers = buffers.get();
  p.tenants = tenants.get();
  p.tenant_counters = counters.get();
  p.tenant_grants = grants.get();
  p.regions = regions.get();
  p.max_buffers = max_buffers;
  p.max_tenants = max_tenants;
  p.max_regions = max_regions;
  p.capacity = 1;
  p.mask = 0;
  p.rings = 1;
  p.units = 1;
  p.poll_backoff_min_ns = 0;
  p.poll_backoff_max_ns = 0;
  p.heartbeat_interval_ns = 1000000;
  p.timeline = nullptr;
  p.timeline_mask = 0;

  const mr_slot published = slot;
  Expected want = Reference(model, published).run();

  // --- What a CPU worker runs for a claimed slot (cpu_worker). ---
  const uint64_t clock_before = megaring::detail::now_ns();
  Outcome out;
  mr_slot copy = slot;
  if (megaring::detail::admit_slot(p, copy, out)) {
    megaring::detail::HostExec ctx{p, model.ticket, {model.ticket, 0}, copy.tenant};  // ring 0
    megaring::detail::run_slot<megaring::NoUserOps>(ctx, copy, out);
  }
  const uint64_t clock_after = megaring::detail::now_ns();

  static const bool verbose = std::getenv("MEGARING_FUZZ_VERBOSE") != nullptr;
  if (verbose)
    std::fprintf(stderr, "  opcode 0x%x tenant 0x%x ticket %" PRIu64 " -> %s fault %u result 0x%" PRIx64
                         " (reference %s fault %u)\n",
                 published.opcode, published.tenant, model.ticket, status_name(out.status), out.fault,
                 out.result, status_name(want.status), want.fault);

  // --- Invariants of any outcome. ---
  FUZZ_CHECK(out.status == MR_STATUS_OK || out.status == MR_STATUS_FAULT ||
                 out.status == MR_STATUS_REVOKED || out.status == MR_STATUS_ABORTED,
             "status %u", out.status);
  if (out.status == MR_STATUS_FAULT)
    FUZZ_CHECK(out.fault > MR_FAULT_NONE && out.fault < MR_FAULT_CODE_COUNT, "FAULT with code %u",
               out.fault);
  if (out.status == MR_STATUS_OK || out.status == MR_STATUS_REVOKED)
    FUZZ_CHECK(out.fault == MR_FAULT_NONE, "%s with fault code %u", status_name(out.status),
               out.fault);
  if (out.status == MR_STATUS_ABORTED)
    FUZZ_CHECK(copy.opcode == MR_OP_DELAY_NS && want.abort_allowed,
               "ABORTED for local opcode %u (only a non-zero DELAY_NS may be abandoned)",
               copy.opcode);

  // --- Differential check against the reference. ---
  const bool aborted = out.status == MR_STATUS_ABORTED && want.abort_allowed;
  if (!aborted) {
    FUZZ_CHECK(out.status == want.status && out.fault == want.fault,
               "opcode 0x%x tenant 0x%x: got %s/fault %u, reference %s/fault %u",
               published.opcode, published.tenant, status_name(out.status), out.fault,
               status_name(want.status), want.fault);
    if (want.check_result)
      FUZZ_CHECK(out.result == want.result, "opcode 0x%x: result 0x%" PRIx64 ", reference 0x%" PRIx64,
                 published.opcode, out.result, want.result);
    if (want.clock_result)
      FUZZ_CHECK(out.result >= clock_before && out.result <= clock_after,
                 "READ_CLOCK result %" PRIu64 " outside [%" PRIu64 ", %" PRIu64 "]", out.result,
                 clock_before, clock_after);
  }

  // Every byte of every buffer: the named range changed as the reference
  // says, nothing else changed (an abandoned DELAY_NS touches no buffer).
  for (uint32_t i = 0; i < max_buffers; ++i) {
    const auto& expect = want.contents[i];
    const uint8_t* actual = memory[i].get();
    for (uint64_t k = 0; k < expect.size(); ++k)
      FUZZ_CHECK(actual[k] == expect[k],
                 "opcode 0x%x: buffer %u byte %" PRIu64 " is 0x%02x, reference 0x%02x (before 0x%02x)",
                 published.opcode, i, k, actual[k], expect[k], model.contents[i][k]);
  }

  for (uint32_t i = 0; i < max_regions; ++i) {
    const auto& expect = want.region_contents[i];
    const uint8_t* actual = region_memory[i].get();
    for (uint64_t k = 0; k < expect.size(); ++k)
      FUZZ_CHECK(actual[k] == expect[k],
                 "opcode 0x%x: region %u byte %" PRIu64 " is 0x%02x, reference 0x%02x (before 0x%02x)",
                 published.opcode, i, k, actual[k], expect[k], model.region_contents[i][k]);
    FUZZ_CHECK(std::memcmp(&regions[i], &model.regions[i], sizeof(mr_region_entry)) == 0,
               "region-table entry %u changed", i);
  }

  // The tables are the host's: the consumer only reads them. The counters
  // move exactly as admission says.
  for (uint32_t i = 0; i < max_buffers; ++i)
    FUZZ_CHECK(std::memcmp(&buffers[i], &model.buffers[i], sizeof(mr_buffer_entry)) == 0,
               "buffer-table entry %u changed", i);
  for (uint32_t i = 0; i < max_tenants; ++i) {
    FUZZ_CHECK(std::memcmp(&tenants[i], &model.tenants[i], sizeof(mr_tenant_entry)) == 0,
               "tenant-table entry %u changed", i);
    const mr_tenant_counters want_c =
        (want.tenant_index == i && i != 0) ? want.counters : mr_tenant_counters{};
    FUZZ_CHECK(std::memcmp(&grants[i], &model.grants[i], sizeof(mr_tenant_grants)) == 0,
               "tenant grants %u changed", i);
    FUZZ_CHECK(counters[i].admitted == want_c.admitted &&
                   counters[i].out_of_window == want_c.out_of_window &&
                   counters[i].revoked == want_c.revoked &&
                   counters[i].not_granted == want_c.not_granted,
               "tenant counters %u: admitted %" PRIu64 " out_of_window %" PRIu64 " revoked %" PRIu64
               " not_granted %" PRIu64 ", reference %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64,
               i, counters[i].admitted, counters[i].out_of_window, counters[i].revoked,
               counters[i].not_granted, want_c.admitted, want_c.out_of_window, want_c.revoked,
               want_c.not_granted);
  }
  FUZZ_CHECK(priv->fetched == priv_before.fetched &&
                 priv->claim_cursor == priv_before.claim_cursor &&
                 priv->done_cursor == priv_before.done_cursor &&
                 priv->exited_units == priv_before.exited_units &&
                 priv->stop_seq == priv_before.stop_seq &&
                 priv->abort_seen == priv_before.abort_seen,
             "consumer-private words changed");
  FUZZ_CHECK(submission->stop_at == submission_before.stop_at &&
                 submission->abort_flag == submission_before.abort_flag,
             "submission control changed");
  return 0;
}
