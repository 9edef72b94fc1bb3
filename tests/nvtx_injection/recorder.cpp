// SPDX-License-Identifier: Apache-2.0
// NVTX injection library that records events in memory (see recorder.h).
//
// How attaching works (nvtx3/nvtxDetail/nvtxInit.h, nvtxImpl.h): on the first
// NVTX call, each NVTX instance (every module that includes the headers)
// dlopen()s $NVTX_INJECTION64_PATH and calls its InitializeInjectionNvtx2
// with a getExportTable function. The NVTX_ETID_CALLBACKS table's
// GetModuleFunctionTable(module) hands back, per callback id (nvtxTypes.h:
// NVTX_CBID_CORE_*, NVTX_CBID_CORE2_*), a pointer to that instance's
// implementation function pointer; the tool stores its own function there.
// Pointers left unassigned become no-ops once initialisation finishes.
// The payload extension attaches separately (payload_ext.cpp).
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "recorder.h"
#include "recorder_state.hpp"

#define MR_RECORDER_API __attribute__((visibility("default")))

namespace {

using mr_nvtx_recorder::Event;
using mr_nvtx_recorder::payloads_of;
using mr_nvtx_recorder::rec;
using mr_nvtx_recorder::Recorder;

uint64_t this_tid() { return static_cast<uint64_t>(::syscall(SYS_gettid)); }

std::string narrow(const wchar_t* w) {
  if (w == nullptr) return "<null>";
  std::string s;
  for (; *w != 0; ++w) s.push_back(*w > 0 && *w < 0x80 ? static_cast<char>(*w) : '?');
  return s;
}

const char* domain_name(Recorder& r, nvtxDomainHandle_t domain) {
  return domain == nullptr ? r.intern("") : domain->name;
}

// Message of an event attribute structure (caller holds the mutex).
std::pair<const char*, int> message_of(Recorder& r, const nvtxEventAttributes_t* a) {
  if (a == nullptr) return {r.intern("<null attributes>"), MR_NVTX_MSG_NONE};
  switch (a->messageType) {
    case NVTX_MESSAGE_TYPE_ASCII:
      return {r.intern(a->message.ascii ? a->message.ascii : "<null>"), MR_NVTX_MSG_ASCII};
    case NVTX_MESSAGE_TYPE_UNICODE:
      return {r.intern(narrow(a->message.unicode)), MR_NVTX_MSG_UNICODE};
    case NVTX_MESSAGE_TYPE_REGISTERED: {
      auto it = r.registered.find(a->message.registered);
      return {it == r.registered.end() ? r.intern("<unknown registered string>")
                                       : it->second->value,
              MR_NVTX_MSG_REGISTERED};
    }
    default:
      return {r.intern(""), MR_NVTX_MSG_NONE};
  }
}

std::pair<const char*, int> message_of_ascii(Recorder& r, const char* m) {
  return {r.intern(m ? m : "<null>"), MR_NVTX_MSG_ASCII};
}
std::pair<const char*, int> message_of_wide(Recorder& r, const wchar_t* m) {
  return {r.intern(narrow(m)), MR_NVTX_MSG_UNICODE};
}

// --- recording primitives (take the lock) ----------------------------------
template <class MessageFn>
int do_push(nvtxDomainHandle_t domain, MessageFn message,
            const nvtxEventAttributes_t* attributes = nullptr) {
  Recorder& r = rec();
  const uint64_t tid = this_tid();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto m = message(r);
  r.events.push_back({domain_name(r, domain), m.first, MR_NVTX_PUSH, m.second, tid,
                      payloads_of(r, domain, attributes)});
  auto& stack = r.stacks[{tid, domain}];
  stack.push_back(m.first);
  return static_cast<int>(stack.size()) - 1;  // 0-based level of the new range
}

int do_pop(nvtxDomainHandle_t domain) {
  Recorder& r = rec();
  const uint64_t tid = this_tid();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto& stack = r.stacks[{tid, domain}];
  const char* message = r.intern(MR_NVTX_UNMATCHED);
  int level = -1;
  if (!stack.empty()) {
    message = stack.back();
    stack.pop_back();
    level = static_cast<int>(stack.size());
  }
  r.events.push_back({domain_name(r, domain), message, MR_NVTX_POP, MR_NVTX_MSG_NONE, tid, {}});
  return level;
}

template <class MessageFn>
nvtxRangeId_t do_start(nvtxDomainHandle_t domain, MessageFn message,
                       const nvtxEventAttributes_t* attributes = nullptr) {
  Recorder& r = rec();
  const uint64_t tid = this_tid();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto m = message(r);
  const char* d = domain_name(r, domain);
  r.events.push_back({d, m.first, MR_NVTX_START, m.second, tid,
                      payloads_of(r, domain, attributes)});
  const nvtxRangeId_t id = r.next_range_id++;
  r.started[id] = {d, m.first};
  return id;
}

void do_end(nvtxDomainHandle_t domain, nvtxRangeId_t id) {
  Recorder& r = rec();
  const uint64_t tid = this_tid();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.started.find(id);
  const char* message = r.intern(MR_NVTX_UNMATCHED);
  // An end names no domain in the core API: report the start's domain.
  const char* d = domain_name(r, domain);
  if (it != r.started.end()) {
    message = it->second.message;
    if (domain == nullptr) d = it->second.domain;
    r.started.erase(it);
  }
  r.events.push_back({d, message, MR_NVTX_END, MR_NVTX_MSG_NONE, tid, {}});
}

template <class MessageFn>
void do_mark(nvtxDomainHandle_t domain, MessageFn message,
             const nvtxEventAttributes_t* attributes = nullptr) {
  Recorder& r = rec();
  const uint64_t tid = this_tid();
  std::lock_guard<std::mutex> lock(r.mutex);
  const auto m = message(r);
  r.events.push_back({domain_name(r, domain), m.first, MR_NVTX_MARK, m.second, tid,
                      payloads_of(r, domain, attributes)});
}

// --- CORE2 (domain) callbacks ----------------------------------------------
nvtxDomainHandle_t cb_domain_create(const std::string& name) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  ++r.domain_creates[name];
  auto& slot = r.domains[name];
  if (!slot) slot.reset(new nvtxDomainRegistration_st{r.intern(name)});
  return slot.get();
}
nvtxDomainHandle_t NVTX_API DomainCreateA(const char* name) {
  return cb_domain_create(name ? name : "<null>");
}
nvtxDomainHandle_t NVTX_API DomainCreateW(const wchar_t* name) {
  return cb_domain_create(narrow(name));
}
void NVTX_API DomainDestroy(nvtxDomainHandle_t) {}  // handles stay valid

nvtxStringHandle_t register_string(const std::string& value) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto owned = std::make_unique<nvtxStringRegistration_st>();
  owned->value = r.intern(value);
  nvtxStringRegistration_st* handle = owned.get();
  r.registered.emplace(handle, std::move(owned));
  return handle;
}
nvtxStringHandle_t NVTX_API DomainRegisterStringA(nvtxDomainHandle_t, const char* s) {
  return register_string(s ? s : "<null>");
}
nvtxStringHandle_t NVTX_API DomainRegisterStringW(nvtxDomainHandle_t, const wchar_t* s) {
  return register_string(narrow(s));
}

int NVTX_API DomainRangePushEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t* a) {
  return do_push(d, [a](Recorder& r) { return message_of(r, a); }, a);
}
int NVTX_API DomainRangePop(nvtxDomainHandle_t d) { return do_pop(d); }
nvtxRangeId_t NVTX_API DomainRangeStartEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t* a) {
  return do_start(d, [a](Recorder& r) { return message_of(r, a); }, a);
}
void NVTX_API DomainRangeEnd(nvtxDomainHandle_t d, nvtxRangeId_t id) { do_end(d, id); }
void NVTX_API DomainMarkEx(nvtxDomainHandle_t d, const nvtxEventAttributes_t* a) {
  do_mark(d, [a](Recorder& r) { return message_of(r, a); }, a);
}

// --- CORE (global domain) callbacks ----------------------------------------
void NVTX_API MarkEx(const nvtxEventAttributes_t* a) { DomainMarkEx(nullptr, a); }
void NVTX_API MarkA(const char* m) {
  do_mark(nullptr, [m](Recorder& r) { return message_of_ascii(r, m); });
}
void NVTX_API MarkW(const wchar_t* m) {
  do_mark(nullptr, [m](Recorder& r) { return message_of_wide(r, m); });
}
nvtxRangeId_t NVTX_API RangeStartEx(const nvtxEventAttributes_t* a) {
  return DomainRangeStartEx(nullptr, a);
}
nvtxRangeId_t NVTX_API RangeStartA(const char* m) {
  return do_start(nullptr, [m](Recorder& r) { return message_of_ascii(r, m); });
}
nvtxRangeId_t NVTX_API RangeStartW(const wchar_t* m) {
  return do_start(nullptr, [m](Recorder& r) { return message_of_wide(r, m); });
}
void NVTX_API RangeEnd(nvtxRangeId_t id) { do_end(nullptr, id); }
int NVTX_API RangePushEx(const nvtxEventAttributes_t* a) { return DomainRangePushEx(nullptr, a); }
int NVTX_API RangePushA(const char* m) {
  return do_push(nullptr, [m](Recorder& r) { return message_of_ascii(r, m); });
}
int NVTX_API RangePushW(const wchar_t* m) {
  return do_push(nullptr, [m](Recorder& r) { return message_of_wide(r, m); });
}
int NVTX_API RangePop() { return do_pop(nullptr); }

// Stores `fn` in slot `id` of a module's function table.
template <class Fn>
bool attach(NvtxFunctionTable table, unsigned int size, unsigned int id, Fn fn) {
  if (table == nullptr || id >= size || table[id] == nullptr) return false;
  *table[id] = reinterpret_cast<NvtxFunctionPointer>(fn);
  return true;
}

}  // namespace

extern "C" {

MR_RECORDER_API int InitializeInjectionNvtx2(NvtxGetExportTableFunc_t getExportTable) {
  if (getExportTable == nullptr) return 0;
  const auto* callbacks =
      static_cast<const NvtxExportTableCallbacks*>(getExportTable(NVTX_ETID_CALLBACKS));
  if (callbacks == nullptr || callbacks->struct_size < sizeof(NvtxExportTableCallbacks) ||
      callbacks->GetModuleFunctionTable == nullptr)
    return 0;
  const auto* version =
      static_cast<const NvtxExportTableVersionInfo*>(getExportTable(NVTX_ETID_VERSIONINFO));
  if (version != nullptr && version->struct_size >= sizeof(NvtxExportTableVersionInfo) &&
      version->SetInjectionNvtxVersion != nullptr)
    version->SetInjectionNvtxVersion(NVTX_VERSION);

  NvtxFunctionTable core = nullptr;
  unsigned int core_size = 0;
  NvtxFunctionTable core2 = nullptr;
  unsigned int core2_size = 0;
  if (!callbacks->GetModuleFunctionTable(NVTX_CB_MODULE_CORE, &core, &core_size) ||
      !callbacks->GetModuleFunctionTable(NVTX_CB_MODULE_CORE2, &core2, &core2_size))
    return 0;

  bool ok = true;
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainCreateA, &DomainCreateA);
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainCreateW, &DomainCreateW);
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainDestroy, &DomainDestroy);
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainRegisterStringA, &DomainRegisterStringA);
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainRegisterStringW, &DomainRegisterStringW);
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainRangePushEx, &DomainRangePushEx);
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainRangePop, &DomainRangePop);
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainRangeStartEx, &DomainRangeStartEx);
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainRangeEnd, &DomainRangeEnd);
  ok &= attach(core2, core2_size, NVTX_CBID_CORE2_DomainMarkEx, &DomainMarkEx);
  ok &= attach(core, core_size, NVTX_CBID_CORE_MarkEx, &MarkEx);
  ok &= attach(core, core_size, NVTX_CBID_CORE_MarkA, &MarkA);
  ok &= attach(core, core_size, NVTX_CBID_CORE_MarkW, &MarkW);
  ok &= attach(core, core_size, NVTX_CBID_CORE_RangeStartEx, &RangeStartEx);
  ok &= attach(core, core_size, NVTX_CBID_CORE_RangeStartA, &RangeStartA);
  ok &= attach(core, core_size, NVTX_CBID_CORE_RangeStartW, &RangeStartW);
  ok &= attach(core, core_size, NVTX_CBID_CORE_RangeEnd, &RangeEnd);
  ok &= attach(core, core_size, NVTX_CBID_CORE_RangePushEx, &RangePushEx);
  ok &= attach(core, core_size, NVTX_CBID_CORE_RangePushA, &RangePushA);
  ok &= attach(core, core_size, NVTX_CBID_CORE_RangePushW, &RangePushW);
  ok &= attach(core, core_size, NVTX_CBID_CORE_RangePop, &RangePop);
  if (!ok) return 0;  // NVTX then unloads us and makes every call a no-op

  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  ++r.init_count;
  return 1;
}

MR_RECORDER_API int mr_nvtx_init_count(void) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.init_count;
}

MR_RECORDER_API void mr_nvtx_reset(void) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.events.clear();
  r.stacks.clear();
  r.started.clear();
}

MR_RECORDER_API size_t mr_nvtx_count(const char* domain, const char* message, int kind) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  size_t n = 0;
  for (const Event& e : r.events) {
    if (domain != nullptr && std::strcmp(domain, e.domain) != 0) continue;
    if (message != nullptr && std::strcmp(message, e.message) != 0) continue;
    if (kind != MR_NVTX_KIND_ANY && kind != e.kind) continue;
    ++n;
  }
  return n;
}

MR_RECORDER_API size_t mr_nvtx_domain_creates(const char* name) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.domain_creates.find(name ? name : "");
  return it == r.domain_creates.end() ? 0 : it->second;
}

MR_RECORDER_API size_t mr_nvtx_open_ranges(void) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  size_t n = r.started.size();
  for (const auto& s : r.stacks) n += s.second.size();
  return n;
}

MR_RECORDER_API size_t mr_nvtx_event_count(void) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.events.size();
}

MR_RECORDER_API int mr_nvtx_event(size_t index, const char** domain, const char** message,
                                  int* kind, int* message_type, uint64_t* thread_id) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (index >= r.events.size()) return 0;
  const Event& e = r.events[index];
  if (domain) *domain = e.domain;
  if (message) *message = e.message;
  if (kind) *kind = e.kind;
  if (message_type) *message_type = e.message_type;
  if (thread_id) *thread_id = e.tid;
  return 1;
}

}  // extern "C"
