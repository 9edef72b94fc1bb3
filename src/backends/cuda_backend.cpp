// SPDX-License-Identifier: Apache-2.0
// CUDA backend: the ring in pinned, host-mapped memory; consumer-private
// state and buffers in device memory; the consumer is one cooperative launch
// of the persistent megakernel on its own non-blocking stream.
//
// While a persistent kernel runs, nothing here may wait on the device as a
// whole: device memory uses the stream-ordered allocator and copies run on
// separate non-blocking streams of their own (cudaFree, cudaDeviceSynchronize or
// legacy default-stream work would wait for the persistent kernel forever).
// That holds before our own launch too, since another kernel may be resident.
// One runtime per device per process: a second persistent kernel could not
// be co-resident with the first's full grid, so create() refuses it.
//
// Who owns what (owned.hpp), and in which order it goes:
//  * CudaResources, one object the backend holds through a unique_ptr: the
//    kernel, control and word streams, the pinned regions (the ring, the
//    completions, the control words, the zero staging) and the device block
//    of consumer-private state. Its members are declared streams first, so
//    the implicit destruction frees the device block (on the kernel stream,
//    after the kernel, and waited for), then the pinned regions, then
//    destroys the streams.
//  * ~CudaBackend frees them only once the kernel has stopped (join() saw it
//    exit, or it died, or never started). A kernel still running keeps them:
//    the object is leaked whole. The runtime itself leaks the whole backend
//    of a wedged consumer (unique_ptr::release), so no destructor runs then.
//  * Buffers from alloc() are the runtime's: handed out as addresses and
//    given back by free(), each on the control stream.
//  * DeviceClaim, this process's claim on the device, goes last.
#include <cuda.h>  // types for a driver entry point only: libcuda is not linked
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.hpp"
#include "backends/cuda_check.hpp"
#include "backends/cuda_table_store.hpp"
#include "backends/owned.hpp"
#include "backends/table_writes.hpp"

namespace megaring::detail {
namespace {

constexpr uint64_t kZeroStagingBytes = 1ull << 20;

// Devices with a live CUDA-backend runtime in this process.
std::mutex g_devices_mutex;
std::set<int> g_devices_in_use;

// A runtime's claim on its device in g_devices_in_use, given back by the
// destructor.
class DeviceClaim {
 public:
  DeviceClaim() = default;
  ~DeviceClaim() {
    if (device_ < 0) return;
    std::lock_guard<std::mutex> lock(g_devices_mutex);
    g_devices_in_use.erase(device_);
  }
  DeviceClaim(const DeviceClaim&) = delete;
  DeviceClaim& operator=(const DeviceClaim&) = delete;

  // False if another runtime of this process holds `device`.
  bool claim(int device) {
    std::lock_guard<std::mutex> lock(g_devices_mutex);
    if (!g_devices_in_use.insert(device).second) return false;
    device_ = device;
    return true;
  }

 private:
  int device_ = -1;
};

// Whether `device`'s primary context exists. Making a device current creates
// its context (hundreds of MB of device memory), so a thread is only switched
// back to a device it has really used. Unknown (no such driver entry point):
// true.
bool primary_context_active(int device) {
  using GetState = CUresult (*)(CUdevice, unsigned int*, int*);
  static const GetState get_state = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuDevicePrimaryCtxGetState", &fn, 12000,
                                         cudaEnableDefault, &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      return GetState{nullptr};
    }
    return reinterpret_cast<GetState>(fn);
  }();
  if (get_state == nullptr) return true;
  unsigned int flags = 0;
  int active = 0;
  return get_state(static_cast<CUdevice>(device), &flags, &active) == CUDA_SUCCESS && active != 0;
}

// Every backend entry point runs its CUDA calls inside one of these, on
// whichever user thread called it:
//  * the runtime's device is current, and the caller's is restored after, so
//    a thread that works on another GPU can call us and keeps its device (a
//    thread that never used its device stays on ours: see
//    primary_context_active). A thread whose current context is not a
//    primary one (cuCtxCreate, green contexts) gets its device's primary
//    context back, not that context: the runtime API has no other way;
//  * the thread's stream-capture mode is relaxed. Our calls touch only our
//    own non-blocking streams, never one being captured, so another thread's
//    capture in cudaStreamCaptureModeGlobal (torch.cuda.graph's default)
//    must neither fail them nor be invalidated by them, as it would be by a
//    cudaStreamQuery or cudaMallocAsync in the default (global) mode.
class CudaCallScope {
 public:
  explicit CudaCallScope(int device) {
    (void)cudaThreadExchangeStreamCaptureMode(&mode_);
    // A failed query or switch shows in the call that needed the device; its
    // error is cleared here so that it is not taken for a later one's.
    int current = 0;
    if (cudaGetDevice(&current) != cudaSuccess)
      (void)cudaGetLastError();
    else if (current != device && cudaSetDevice(device) != cudaSuccess)
      (void)cudaGetLastError();
    else if (current != device)
      restore_device_ = current;
  }
  ~CudaCallScope() {
    if (restore_device_ >= 0 && primary_context_active(restore_device_) &&
        cudaSetDevice(restore_device_) != cudaSuccess)
      (void)cudaGetLastError();  // ours, not the caller's to find
    (void)cudaThreadExchangeStreamCaptureMode(&mode_);
  }
  CudaCallScope(const CudaCallScope&) = delete;
  CudaCallScope& operator=(const CudaCallScope&) = delete;

 private:
  cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;  // the caller's, while in scope
  int restore_device_ = -1;
};

// cudaStreamQuery errors that say nothing about the kernel: a capture-mode
// refusal (not expected inside a CudaCallScope, but never a reason to call a
// live kernel dead and free the ring under it). Every other error from the
// query of a launched kernel is sticky: the context, and the kernel, are gone.
bool query_refused_by_capture(cudaError_t err) {
  switch (err) {
    case cudaErrorStreamCaptureUnsupported:
    case cudaErrorStreamCaptureInvalidated:
    case cudaErrorStreamCaptureImplicit:
    case cudaErrorStreamCaptureWrongThread:
      return true;
    default:
      return false;
  }
}

// Everything the kernel may touch and the streams it and our copies run on,
// in one object so that a kernel that never stopped can be leaked whole.
// Members are destroyed in reverse: the device block (freed on the kernel
// stream, which must still exist), the pinned regions, then the streams.
struct CudaResources {
  OwnedStream kernel_stream;   // the persistent kernel's
  OwnedStream control_stream;  // buffer allocations and the user's data copies while it runs
  // The consumer's words: table entries, control epochs, notes, counters.
  // Small copies, never queued behind a large write_buffer or read_buffer on
  // another thread (a control operation's release would wait for it).
  OwnedStream word_stream;
  PinnedArray<uint8_t> zero_staging;  // pinned zeros: buffers are cleared by the copy engine
  PinnedArray<mr_slot> slots;
  PinnedArray<mr_submission_control> submission;
  PinnedArray<mr_completion> completions;
  PinnedArray<mr_ring_done> ring_done;
  PinnedArray<mr_completion_control> completion_control;
  PinnedArray<uint8_t> staging;  // the staging arena (Config::staging_arena_bytes)
  DeviceBytes private_block;  // ConsumerPrivate, the staged slots, the tables, ...
  DeviceBytes unit_notes;     // UnitNote [units], sized at start()
};

class CudaBackend final : public ConsumerBackend {
 public:
  ~CudaBackend() override {
    if (!resources_) return;  // init() failed before allocating anything
    if (kernel_running_.load()) {
      // Not joined: the kernel may still touch every region, so they are
      // leaked rather than freed under it.
      (void)resources_.release();
      return;
    }
    CudaCallScope scope(device_);  // the frees run on our device
    resources_.reset();             // in CudaResources' member order
  }

  Status init(const Config& config) override {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      (void)cudaGetLastError();
      return Status(Result::kNoDevice, "no CUDA device or driver available");
    }
    if (config.device < 0 || config.device >= count)
      return Status(Result::kInvalidArgument,
                    "device " + std::to_string(config.device) + " out of range (" +
                        std::to_string(count) + " devices)");
    device_ = config.device;
    CudaCallScope scope(device_);
    if (!device_claim_.claim(device_))
      return Status(Result::kInvalidArgument,
                    "device " + std::to_string(device_) +
                        " already runs a megaring runtime in this process; share that one");
    cudaDeviceProp prop{};
    MR_CUDA_TRY(cudaGetDeviceProperties(&prop, device_));
    name_ = prop.name;
    sm_count_ = prop.multiProcessorCount;
    int cooperative = 0, mapped = 0;
    MR_CUDA_TRY(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, device_));
    MR_CUDA_TRY(cudaDeviceGetAttribute(&mapped, cudaDevAttrCanMapHostMemory, device_));
    if (!cooperative || !mapped)
      return Status(Result::kNoDevice, name_ + " lacks cooperative launch or mapped host memory");

    resources_.reset(new (std::nothrow) CudaResources());
    if (!resources_) return Status(Result::kOutOfMemory, "cuda backend: resources");
    CudaResources& r = *resources_;
    const uint32_t cap = config.ring_capacity;
    const uint32_t rings = ring_count(config);
    Status st = create_nonblocking_stream(&r.kernel_stream);
    if (st) st = create_nonblocking_stream(&r.control_stream);
    if (st) st = create_nonblocking_stream(&r.word_stream);
    if (st) st = allocate_pinned(kZeroStagingBytes, &r.zero_staging);
    if (st) st = allocate_pinned(uint64_t{cap} * rings, &r.slots);
    if (st) st = allocate_pinned(1, &r.submission);
    if (st) st = allocate_pinned(uint64_t{cap} * rings, &r.completions);
    if (st) st = allocate_pinned(rings, &r.ring_done);
    if (st) st = allocate_pinned(1, &r.completion_control);
    if (st && config.staging_arena_bytes != 0)
      st = allocate_pinned(config.staging_arena_bytes, &r.staging);
    if (!st) return st;
    if (config.staging_arena_bytes != 0) {
      // Mapped pinned memory (allocate_pinned): the kernel reaches it at its
      // device address; the host writes it where it is.
      void* consumer_address = nullptr;
      MR_CUDA_TRY(cudaHostGetDevicePointer(&consumer_address, r.staging.get(), 0));
      staging_.host = r.staging.get();
      staging_.consumer = reinterpret_cast<uint64_t>(consumer_address);
      staging_.bytes = config.staging_arena_bytes;
    }
    host_.slots = r.slots.get();
    host_.submission = r.submission.get();
    host_.completions = r.completions.get();
    host_.ring_done = r.ring_done.get();
    host_.completion_control = r.completion_control.get();
    MR_CUDA_TRY(cudaHostGetDevicePointer(reinterpret_cast<void**>(&params_.slots), host_.slots, 0));
    MR_CUDA_TRY(cudaHostGetDevicePointer(reinterpret_cast<void**>(&params_.submission),
                                         host_.submission, 0));
    MR_CUDA_TRY(cudaHostGetDevicePointer(reinterpret_cast<void**>(&params_.completions),
                                         host_.completions, 0));
    MR_CUDA_TRY(cudaHostGetDevicePointer(reinterpret_cast<void**>(&params_.ring_done),
                                         host_.ring_done, 0));
    MR_CUDA_TRY(cudaHostGetDevicePointer(reinterpret_cast<void**>(&params_.completion_control),
                                         host_.completion_control, 0));
    params_.rings = rings;

    // Consumer-private region: one device allocation, made before launch,
    // cut into pieces that each start on a 64-byte line (the fetcher and
    // the executors move staged slots in 16-byte pieces, and a slot that
    // straddled two lines would cost two).
    const auto line = [](size_t bytes) { return (bytes + 63) & ~size_t{63}; };
    const size_t priv_bytes = line(sizeof(ConsumerPrivate));
    const size_t flags_bytes = line(sizeof(uint64_t) * cap);
    const size_t staged_bytes = line(sizeof(mr_slot) * cap);
    const size_t outcomes_bytes = line(sizeof(mr_completion) * cap);
    const size_t table_bytes = line(sizeof(mr_buffer_entry) * config.max_buffers);
    const size_t timeline_bytes = line(sizeof(mr_timeline_record) * config.timeline_capacity);
    const size_t counters_bytes = line(sizeof(mr_tenant_counters) * config.max_tenants);
    const size_t tenants_bytes = line(sizeof(mr_tenant_entry) * config.max_tenants);
    const size_t grants_bytes = line(sizeof(mr_tenant_grants) * config.max_tenants);
    const size_t regions_bytes = line(sizeof(mr_region_entry) * config.max_regions);
    const size_t total = priv_bytes + flags_bytes + staged_bytes + outcomes_bytes + table_bytes +
                         timeline_bytes + counters_bytes + tenants_bytes + grants_bytes +
                         regions_bytes;
    // Allocated in the kernel's own stream, so that the allocation is
    // stream-ordered before the kernel that uses it, for tools that check
    // stream order (nothing runs on the device yet, so nothing waits); and
    // freed there too, after the kernel.
    st = allocate_device(total, kernel_stream(), &r.private_block);
    if (!st) return st;
    MR_CUDA_TRY(cudaMemsetAsync(r.private_block.get(), 0, total, kernel_stream()));
    MR_CUDA_TRY(cudaStreamSynchronize(kernel_stream()));
    uint8_t* next = r.private_block.get();  // cudaMallocAsync: 256-byte aligned
    const auto take = [&next](size_t bytes) {
      uint8_t* piece = next;
      next += bytes;
      return piece;
    };
    params_.priv = reinterpret_cast<ConsumerPrivate*>(take(priv_bytes));
    params_.done_flags = reinterpret_cast<uint64_t*>(take(flags_bytes));
    params_.staged = reinterpret_cast<mr_slot*>(take(staged_bytes));
    params_.outcomes = reinterpret_cast<mr_completion*>(take(outcomes_bytes));
    params_.buffers = reinterpret_cast<mr_buffer_entry*>(take(table_bytes));
    uint8_t* timeline = take(timeline_bytes);
    if (config.timeline_capacity != 0) {
      params_.timeline = reinterpret_cast<mr_timeline_record*>(timeline);
      params_.timeline_mask = config.timeline_capacity - 1;
      timeline_bytes_ = sizeof(mr_timeline_record) * config.timeline_capacity;
    }
    params_.tenant_counters = reinterpret_cast<mr_tenant_counters*>(take(counters_bytes));
    params_.tenants = reinterpret_cast<mr_tenant_entry*>(take(tenants_bytes));
    params_.tenant_grants = reinterpret_cast<mr_tenant_grants*>(take(grants_bytes));
    params_.regions = reinterpret_cast<mr_region_entry*>(take(regions_bytes));
    params_.max_regions = config.max_regions;
    requested_units_ = config.workers;
    tenant_table_size_ = config.max_tenants;
    return Status::ok();
  }

  Status set_private_cursors(uint64_t initial_ticket) override {
    const ConsumerPrivate priv = initial_private(initial_ticket);
    return copy_sync(params_.priv, &priv, sizeof(priv), cudaMemcpyHostToDevice);
  }

  Status start(const Consumer& consumer) override {
    CudaCallScope scope(device_);
    auto launch = params_.timeline != nullptr ? consumer.gpu_launch_timeline : consumer.gpu_launch;
    if (launch == nullptr || consumer.gpu_occupancy == nullptr)
      return Status(Result::kInvalidArgument, "consumer has no GPU kernel");
    int per_sm = 0;
    MR_CUDA_TRY(consumer.gpu_occupancy(&per_sm));  // also loads the module eagerly
    if (per_sm < 1)
      return Status(Result::kInvalidArgument, std::string("consumer '") + consumer.name +
                                                  "' cannot fit one block per SM");
    const uint32_t resident = static_cast<uint32_t>(per_sm) * static_cast<uint32_t>(sm_count_);
    // The default: kDefaultGpuWorkers executors, at most one per SM, and
    // never more than fit beside the I/O block.
    const uint32_t executors =
        requested_units_ != 0
            ? requested_units_
            : std::max<uint32_t>(1, std::min({kDefaultGpuWorkers, static_cast<uint32_t>(sm_count_),
                                              resident > 1 ? resident - 1 : 1}));
    // Block 0 is the I/O unit (fetcher and completer), the rest executors.
    const uint64_t grid = uint64_t{executors} + 1;
    if (grid > resident)
      return Status(Result::kInvalidArgument,
                    std::to_string(executors) + " executor blocks requested but only " +
                        std::to_string(resident) + " blocks (the I/O block included) can be co-resident");
    params_.units = executors;
    // The executors' notes (dump_state), allocated as the private block is
    // (kernel stream, before the launch), once the unit count is known.
    const size_t notes_bytes = sizeof(UnitNote) * executors;
    Status st = allocate_device(notes_bytes, kernel_stream(), &resources_->unit_notes);
    if (!st) return st;
    MR_CUDA_TRY(cudaMemsetAsync(resources_->unit_notes.get(), 0, notes_bytes, kernel_stream()));
    MR_CUDA_TRY(cudaStreamSynchronize(kernel_stream()));
    params_.unit_notes = reinterpret_cast<UnitNote*>(resources_->unit_notes.get());
    // Initialisation copies ran on the word stream and were synchronised
    // there; host-mapped words are plain host stores. No device-wide sync.
    MR_CUDA_TRY(launch(params_, static_cast<unsigned>(grid), kernel_stream()));
    kernel_running_ = true;
    return Status::ok();
  }

  Status restart(const Consumer& consumer) override {
    if (kernel_running_.load()) return Status(Result::kInternal, "cuda backend: restart while the kernel runs");
    CudaCallScope scope(device_);
    auto launch = params_.timeline != nullptr ? consumer.gpu_launch_timeline : consumer.gpu_launch;
    if (launch == nullptr || params_.unit_notes == nullptr)
      return Status(Result::kInvalidArgument, "consumer has no GPU kernel, or never started");
    // The words the last run wrote, fresh for the next (backend.hpp). The
    // kernel has returned: copies on the word stream, synchronised, land
    // before the launch below; the notes are read and written back whole.
    const uint32_t no_units = 0;
    const uint64_t no_stop = ~0ull;
    Status st = copy_sync(&params_.priv->exited_units, &no_units, sizeof no_units, cudaMemcpyHostToDevice);
    if (st) st = copy_sync(&params_.priv->stop_seq, &no_stop, sizeof no_stop, cudaMemcpyHostToDevice);
    std::vector<UnitNote> notes(params_.units);
    const size_t notes_bytes = sizeof(UnitNote) * params_.units;
    if (st) st = copy_sync(notes.data(), params_.unit_notes, notes_bytes, cudaMemcpyDeviceToHost);
    for (UnitNote& n : notes) n.control_parked = 0;
    if (st) st = copy_sync(params_.unit_notes, notes.data(), notes_bytes, cudaMemcpyHostToDevice);
    if (!st) return st;
    // Relaxed: a host-mapped word the kernel does not run to read; the
    // launch orders it.
    SysRef<uint32_t>(host_.completion_control->exited_units).store(0, cuda::std::memory_order_relaxed);
    params_.resume = 1;
    // The same grid and stream as start(); gpu_launch checks the launch and
    // the last error after it.
    MR_CUDA_TRY(launch(params_, params_.units + 1, kernel_stream()));
    kernel_running_ = true;
    return Status::ok();
  }

  // cudaStreamQuery on the running kernel. Its cudaErrorNotReady is recorded
  // as the calling thread's last error, like any error: clear it, so that
  // neither our next launch check nor the caller's own cudaGetLastError (we
  // run on the user's publishing and waiting threads) mistakes it for theirs.
  // A capture refusal reads as NotReady: it is no verdict on the kernel.
  cudaError_t query_kernel_stream() {
    CudaCallScope scope(device_);
    const cudaError_t err = cudaStreamQuery(kernel_stream());
    if (err == cudaErrorNotReady || query_refused_by_capture(err)) {
      (void)cudaGetLastError();
      return cudaErrorNotReady;
    }
    return err;
  }

  Status health() override {
    if (!kernel_running_.load()) return Status::ok();
    const cudaError_t err = query_kernel_stream();
    if (err == cudaErrorNotReady || err == cudaSuccess) return Status::ok();
    kernel_running_.store(false);  // dead (sticky error): nothing runs on the device any more
    return cuda_status(err, "persistent kernel", __FILE__, __LINE__);
  }

  Status join(Nanoseconds timeout) override {
    if (!kernel_running_.load()) return Status::ok();
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t err = query_kernel_stream();
      if (err == cudaSuccess) break;
      if (err != cudaErrorNotReady) {
        kernel_running_ = false;  // dead: nothing runs on the device any more
        return cuda_status(err, "persistent kernel", __FILE__, __LINE__);
      }
      if (std::chrono::steady_clock::now() - start > timeout)
        return Status(Result::kTimeout, "persistent kernel did not exit in time");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    kernel_running_ = false;
    return Status::ok();
  }

  // Device (or managed) memory of our device, at both ends of the range: a
  // kernel on it can reach the memory. (Where one allocation ends is the
  // driver's to know: ranges that span two are the caller's to avoid.)
  Status check_external(uint64_t address, uint64_t bytes) override {
    CudaCallScope scope(device_);
    const uint64_t last = bytes == 0 ? address : address + (bytes - 1);
    for (const uint64_t a : {address, last}) {
      cudaPointerAttributes attr{};
      const cudaError_t err = cudaPointerGetAttributes(&attr, reinterpret_cast<const void*>(a));
      if (err != cudaSuccess) {
        (void)cudaGetLastError();  // not sticky: clear it
        return Status(Result::kInvalidArgument, std::string("registered memory: ") +
                                                    cudaGetErrorString(err));
      }
      if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
        return Status(Result::kInvalidArgument,
                      "registered memory must be device or managed memory (a host pointer "
                      "cannot back a buffer on the GPU)");
      if (attr.device != device_)
        return Status(Result::kInvalidArgument,
                      "registered memory is on device " + std::to_string(attr.device) +
                          ", the runtime's is " + std::to_string(device_));
    }
    return Status::ok();
  }

  Status alloc(uint64_t bytes, uint64_t* address) override {
    CudaCallScope scope(device_);
    // The runtime refuses sizes over kMaxBufferBytes; checked here too, so
    // that the loop below cannot wrap whatever the caller.
    if (bytes > kMaxBufferBytes)
      return Status(Result::kInvalidArgument, "buffer size over kMaxBufferBytes");
    // Stream-ordered allocation: no implicit device-wide synchronisation.
    DeviceBytes buffer;
    const Status st = allocate_device(bytes, control_stream(), &buffer);
    if (!st) return st;
    // Zero it with host-to-device copies from pinned zeros: the copy engine
    // needs no SM, whereas a memset kernel might never get one next to a
    // persistent kernel that fills the device.
    cudaError_t err = cudaSuccess;
    for (uint64_t done = 0; done < bytes && err == cudaSuccess; done += kZeroStagingBytes) {
      const uint64_t n = std::min<uint64_t>(kZeroStagingBytes, bytes - done);
      err = cudaMemcpyAsync(buffer.get() + done, resources_->zero_staging.get(), n,
                            cudaMemcpyHostToDevice, control_stream());
    }
    if (err == cudaSuccess) err = cudaStreamSynchronize(control_stream());
    // Not handed out on error: `buffer` gives it back (best effort; the error
    // reported is the first).
    if (err != cudaSuccess) return cuda_status(err, "zeroing a new buffer", __FILE__, __LINE__);
    *address = reinterpret_cast<uint64_t>(buffer.release());  // the runtime's until free()
    return Status::ok();
  }
  Status free(uint64_t address) override {
    CudaCallScope scope(device_);
    // Given back the way alloc()'s owner would have, with the error reported.
    const cudaError_t err =
        StreamOrderedFree(control_stream()).free_now(reinterpret_cast<void*>(address));
    return cuda_status(err, "freeing a buffer", __FILE__, __LINE__);
  }
  Status copy_in(uint64_t address, const void* src, uint64_t bytes) override {
    return copy_bulk(reinterpret_cast<void*>(address), src, bytes, cudaMemcpyHostToDevice);
  }
  Status copy_out(void* dst, uint64_t address, uint64_t bytes) override {
    return copy_bulk(dst, reinterpret_cast<const void*>(address), bytes, cudaMemcpyDeviceToHost);
  }

  // The table writes: their order is table_writes.hpp's; their words go out
  // as copies on the word stream (CopyTableStore).
  Status write_table_entry(uint32_t index, const mr_buffer_entry& entry) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::write_buffer_entry(store, &params_.buffers[index], entry);
  }
  Status retire_table_entry(uint32_t index, uint64_t retire_ticket) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::retire_buffer_entry(store, &params_.buffers[index], retire_ticket);
  }
  Status clear_table_handle(uint32_t index) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::clear_buffer_handle(store, &params_.buffers[index]);
  }
  Status write_region_entry(uint32_t index, const mr_region_entry& entry) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::write_region_entry(store, &params_.regions[index], entry);
  }
  Status set_region_committed(uint32_t index, uint64_t committed) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::set_region_committed(store, &params_.regions[index], committed);
  }
  Status retire_region_entry(uint32_t index, uint64_t retire_ticket) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::retire_region_entry(store, &params_.regions[index], retire_ticket);
  }
  Status clear_region_handle(uint32_t index) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::clear_region_handle(store, &params_.regions[index]);
  }
  Status write_tenant_entry(uint32_t index, const mr_tenant_entry& entry,
                            const mr_tenant_grants& grants) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::write_tenant_entry(store, &params_.tenants[index], entry,
                                            &params_.tenant_grants[index], grants);
  }
  Status set_tenant_state(uint32_t index, uint32_t state) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::set_tenant_state(store, &params_.tenants[index], state);
  }
  Status set_ring_class(uint32_t ring, uint32_t ring_class) override {
    if (ring >= params_.rings) return Status(Result::kInvalidArgument, "no such ring");
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::set_ring_class(store, &params_.priv->ring_class[ring], ring_class);
  }
  Status set_tenant_grants(uint32_t index, const mr_tenant_grants& grants) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    return table_writes::set_tenant_grants(store, &params_.tenant_grants[index], grants);
  }
  Status read_tenant_ids(uint32_t* ids) override {
    std::vector<mr_tenant_entry> entries(tenant_table_size_);
    Status st = copy_sync(entries.data(), params_.tenants, sizeof(mr_tenant_entry) * entries.size(),
                          cudaMemcpyDeviceToHost);
    if (!st) return st;
    for (size_t i = 0; i < entries.size(); ++i) ids[i] = entries[i].tenant;
    return Status::ok();
  }
  Status read_tenant_counters(uint32_t index, mr_tenant_counters* out) override {
    // A copy-engine read of words the kernel increments: each 8-byte word is
    // read whole; the snapshot is statistics, not a consistent cut.
    return copy_sync(out, &params_.tenant_counters[index], sizeof(*out), cudaMemcpyDeviceToHost);
  }

  Status read_consumer_counters(ConsumerCounters* out) override {
    // A copy-engine read of words the kernel increments, each read whole.
    ConsumerPrivate priv;
    const Status st = copy_sync(&priv, params_.priv, sizeof(priv), cudaMemcpyDeviceToHost);
    if (!st) return st;
    out->fetch_rounds = priv.fetch_rounds;
    out->tickets_fetched = priv.tickets_fetched;
    out->header_rounds = priv.header_rounds;
    out->idle_polls = priv.idle_polls;
    out->flushes = priv.flushes;
    out->records_written = priv.records_written;
    return Status::ok();
  }

  Status read_consumer_state(uint64_t cursors[3], std::vector<UnitNote>* notes) override {
    // Copy-engine reads of words the kernel writes, each read whole.
    ConsumerPrivate priv;
    Status st = copy_sync(&priv, params_.priv, sizeof(priv), cudaMemcpyDeviceToHost);
    if (!st) return st;
    cursors[0] = priv.fetched;
    cursors[1] = priv.claim_cursor;
    cursors[2] = priv.done_cursor;
    notes->assign(params_.units, UnitNote{});
    if (params_.unit_notes == nullptr || params_.units == 0) return Status::ok();  // not started
    return copy_sync(notes->data(), params_.unit_notes, sizeof(UnitNote) * params_.units,
                     cudaMemcpyDeviceToHost);
  }

  Status write_control_word(ControlWord which, uint64_t epoch) override {
    CudaCallScope scope(device_);
    CopyTableStore store(word_stream());
    ConsumerPrivate* priv = params_.priv;
    return table_writes::set_control_word(
        store, which == ControlWord::kRequest ? &priv->control_request : &priv->control_release,
        epoch);
  }
  Status read_control_parked(std::vector<uint64_t>* parked) override {
    // A copy-engine read of the notes: each word whole. The copy starts after
    // the executor's release store reached device memory for any word it
    // returns, which orders the executor's earlier table loads before the
    // host's table copies issued after this returns.
    std::vector<UnitNote> notes(params_.units);
    parked->assign(params_.units, 0);
    if (params_.unit_notes == nullptr || params_.units == 0) return Status::ok();  // not started
    const Status st = copy_sync(notes.data(), params_.unit_notes, sizeof(UnitNote) * params_.units,
                                cudaMemcpyDeviceToHost);
    if (!st) return st;
    for (uint32_t u = 0; u < params_.units; ++u) (*parked)[u] = notes[u].control_parked;
    return Status::ok();
  }

  Status read_timeline(mr_timeline_record* dst) override {
    // A copy-engine snapshot while the kernel may write: the caller keeps
    // only records that no running ticket can be overwriting.
    return copy_bulk(dst, params_.timeline, timeline_bytes_, cudaMemcpyDeviceToHost);
  }

  Backend kind() const override { return Backend::kCuda; }
  const char* device_name() const override { return name_.c_str(); }

 private:
  cudaStream_t kernel_stream() const { return resources_->kernel_stream.get(); }
  cudaStream_t control_stream() const { return resources_->control_stream.get(); }
  cudaStream_t word_stream() const { return resources_->word_stream.get(); }

  // One copy on `stream`, waited for: the copy engine needs no SM, and only
  // our own stream is synchronised (never the device). Every copy here is
  // waited for before its call returns, so copies on the two streams need no
  // order between them beyond their callers' (a buffer is zeroed before its
  // table entry names it; a table handle is cleared before its memory goes).
  Status copy_on(cudaStream_t stream, void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    CudaCallScope scope(device_);
    MR_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, kind, stream));
    MR_CUDA_TRY(cudaStreamSynchronize(stream));
    return Status::ok();
  }
  // The consumer's words (word_stream).
  Status copy_sync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    return copy_on(word_stream(), dst, src, bytes, kind);
  }
  // The user's data and the timeline (control_stream): up to a buffer's size.
  Status copy_bulk(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    return copy_on(control_stream(), dst, src, bytes, kind);
  }

  int device_ = 0;
  int sm_count_ = 0;
  uint32_t requested_units_ = 0;
  uint32_t tenant_table_size_ = 0;
  std::string name_;
  size_t timeline_bytes_ = 0;
  std::atomic<bool> kernel_running_{false};  // read by health() from waiter threads
  // Destroyed in reverse: by ~CudaBackend's body the resources are freed (or
  // leaked), then the device claim goes.
  DeviceClaim device_claim_;
  std::unique_ptr<CudaResources> resources_;  // set by init()
};

}  // namespace

std::unique_ptr<ConsumerBackend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace megaring::detail
