// CUDA backend: the ring in pinned, host-mapped memory; consumer-private
// state and buffers in device memory; the consumer is one cooperative launch
// of the persistent megakernel on its own non-blocking stream.
//
// While a persistent kernel runs, nothing here may wait on the device as a
// whole: device memory uses the stream-ordered allocator and copies run on a
// separate non-blocking control stream (cudaFree, cudaDeviceSynchronize or
// legacy default-stream work would wait for the persistent kernel forever).
// That holds before our own launch too, since another kernel may be resident.
// One runtime per device per process: a second persistent kernel could not
// be co-resident with the first's full grid, so create() refuses it.
#include <cuda.h>  // types for a driver entry point only: libcuda is not linked
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.hpp"
#include "backends/cuda_check.hpp"

namespace megaring::detail {
namespace {

constexpr uint64_t kZeroStagingBytes = 1ull << 20;

// Devices with a live CUDA-backend runtime in this process.
std::mutex g_devices_mutex;
std::set<int> g_devices_in_use;

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

class CudaBackend final : public ConsumerBackend {
 public:
  ~CudaBackend() override {
    // Only reached after join() succeeded or when the kernel never started;
    // a wedged kernel is leaked by the runtime rather than freed under it.
    if (!kernel_running_.load()) {
      CudaCallScope scope(device_);
      release_all();
    }
    if (owns_device_) {
      std::lock_guard<std::mutex> lock(g_devices_mutex);
      g_devices_in_use.erase(device_);
    }
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
    {
      std::lock_guard<std::mutex> lock(g_devices_mutex);
      if (!g_devices_in_use.insert(device_).second)
        return Status(Result::kInvalidArgument,
                      "device " + std::to_string(device_) +
                          " already runs a megaring runtime in this process; share that one");
      owns_device_ = true;
    }
    cudaDeviceProp prop{};
    MR_CUDA_TRY(cudaGetDeviceProperties(&prop, device_));
    name_ = prop.name;
    sm_count_ = prop.multiProcessorCount;
    int cooperative = 0, mapped = 0;
    MR_CUDA_TRY(cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, device_));
    MR_CUDA_TRY(cudaDeviceGetAttribute(&mapped, cudaDevAttrCanMapHostMemory, device_));
    if (!cooperative || !mapped)
      return Status(Result::kNoDevice, name_ + " lacks cooperative launch or mapped host memory");

    MR_CUDA_TRY(cudaStreamCreateWithFlags(&kernel_stream_, cudaStreamNonBlocking));
    MR_CUDA_TRY(cudaStreamCreateWithFlags(&control_stream_, cudaStreamNonBlocking));

    const uint32_t cap = config.ring_capacity;
    const uint32_t rings = ring_count(config);
    Status st = host_alloc(&zero_staging_, kZeroStagingBytes);
    if (st) st = host_alloc(&host_.slots, sizeof(mr_slot) * cap * rings);
    if (st) st = host_alloc(&host_.submission, sizeof(mr_submission_control));
    if (st) st = host_alloc(&host_.completions, sizeof(mr_completion) * cap * rings);
    if (st) st = host_alloc(&host_.ring_done, sizeof(mr_ring_done) * rings);
    if (st) st = host_alloc(&host_.completion_control, sizeof(mr_completion_control));
    if (!st) return st;
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
    const size_t total = priv_bytes + flags_bytes + staged_bytes + outcomes_bytes + table_bytes +
                         timeline_bytes + counters_bytes + tenants_bytes;
    // Allocated in the kernel's own stream, so that the allocation is
    // stream-ordered before the kernel that uses it, for tools that check
    // stream order (nothing runs on the device yet, so nothing waits).
    MR_CUDA_TRY(cudaMallocAsync(&private_block_, total, kernel_stream_));
    MR_CUDA_TRY(cudaMemsetAsync(private_block_, 0, total, kernel_stream_));
    MR_CUDA_TRY(cudaStreamSynchronize(kernel_stream_));
    uint8_t* next = static_cast<uint8_t*>(private_block_);  // cudaMallocAsync: 256-byte aligned
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
    // Initialisation copies ran on the control stream and were synchronised
    // there; host-mapped words are plain host stores. No device-wide sync.
    MR_CUDA_TRY(launch(params_, static_cast<unsigned>(grid), kernel_stream_));
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
    const cudaError_t err = cudaStreamQuery(kernel_stream_);
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

  Status alloc(uint64_t bytes, uint64_t* address) override {
    CudaCallScope scope(device_);
    void* p = nullptr;
    // The runtime refuses sizes over kMaxBufferBytes; checked here too, so
    // that the loop below cannot wrap whatever the caller.
    if (bytes > kMaxBufferBytes)
      return Status(Result::kInvalidArgument, "buffer size over kMaxBufferBytes");
    // Stream-ordered allocation: no implicit device-wide synchronisation.
    MR_CUDA_TRY(cudaMallocAsync(&p, bytes == 0 ? 1 : bytes, control_stream_));
    // Zero it with host-to-device copies from pinned zeros: the copy engine
    // needs no SM, whereas a memset kernel might never get one next to a
    // persistent kernel that fills the device.
    cudaError_t err = cudaSuccess;
    for (uint64_t done = 0; done < bytes && err == cudaSuccess; done += kZeroStagingBytes) {
      const uint64_t n = std::min<uint64_t>(kZeroStagingBytes, bytes - done);
      err = cudaMemcpyAsync(static_cast<uint8_t*>(p) + done, zero_staging_, n,
                            cudaMemcpyHostToDevice, control_stream_);
    }
    if (err == cudaSuccess) err = cudaStreamSynchronize(control_stream_);
    if (err != cudaSuccess) {
      // Not handed out: give it back (best effort; the error reported is the first).
      (void)cudaFreeAsync(p, control_stream_);
      (void)cudaStreamSynchronize(control_stream_);
      return cuda_status(err, "zeroing a new buffer", __FILE__, __LINE__);
    }
    *address = reinterpret_cast<uint64_t>(p);
    return Status::ok();
  }
  Status free(uint64_t address) override {
    CudaCallScope scope(device_);
    MR_CUDA_TRY(cudaFreeAsync(reinterpret_cast<void*>(address), control_stream_));
    MR_CUDA_TRY(cudaStreamSynchronize(control_stream_));
    return Status::ok();
  }
  Status copy_in(uint64_t address, const void* src, uint64_t bytes) override {
    return copy_sync(reinterpret_cast<void*>(address), src, bytes, cudaMemcpyHostToDevice);
  }
  Status copy_out(void* dst, uint64_t address, uint64_t bytes) override {
    return copy_sync(dst, reinterpret_cast<const void*>(address), bytes, cudaMemcpyDeviceToHost);
  }
  Status write_table_entry(uint32_t index, const mr_buffer_entry& entry) override {
    // No slot naming this handle is in flight until the caller returns and
    // publishes one; the synchronised copy lands in device memory first.
    return copy_sync(&params_.buffers[index], &entry, sizeof(entry), cudaMemcpyHostToDevice);
  }
  Status retire_table_entry(uint32_t index, uint64_t retire_ticket) override {
    // One aligned 8-byte word: the kernel reads the old or the new value,
    // never a mix; slots published after this call see the new one.
    return copy_sync(&params_.buffers[index].retire_ticket, &retire_ticket, sizeof(retire_ticket),
                     cudaMemcpyHostToDevice);
  }
  Status clear_table_handle(uint32_t index) override {
    const uint32_t zero = 0;
    return copy_sync(&params_.buffers[index].handle, &zero, sizeof(zero), cudaMemcpyHostToDevice);
  }

  Status write_tenant_entry(uint32_t index, const mr_tenant_entry& entry) override {
    // Two synchronised copies: the tenant word, then the rest. The first has
    // completed before the second starts, which is the seqlock order
    // admit_slot relies on (a slot of the index's previous tenant never pairs
    // its old id with the new window or state).
    mr_tenant_entry* dst = &params_.tenants[index];
    Status st = copy_sync(&dst->tenant, &entry.tenant, sizeof(entry.tenant), cudaMemcpyHostToDevice);
    if (!st) return st;
    static_assert(offsetof(mr_tenant_entry, state) == sizeof(uint32_t), "tenant word first");
    return copy_sync(&dst->state, &entry.state, sizeof(entry) - sizeof(entry.tenant),
                     cudaMemcpyHostToDevice);
  }
  Status read_tenant_ids(uint32_t* ids) override {
    std::vector<mr_tenant_entry> entries(tenant_table_size_);
    Status st = copy_sync(entries.data(), params_.tenants, sizeof(mr_tenant_entry) * entries.size(),
                          cudaMemcpyDeviceToHost);
    if (!st) return st;
    for (size_t i = 0; i < entries.size(); ++i) ids[i] = entries[i].tenant;
    return Status::ok();
  }
  Status set_tenant_state(uint32_t index, uint32_t state) override {
    // One aligned 4-byte word: units read the old or the new state; slots
    // admitted after the synchronised copy see the new one.
    return copy_sync(&params_.tenants[index].state, &state, sizeof(state), cudaMemcpyHostToDevice);
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

  Status read_timeline(mr_timeline_record* dst) override {
    // A copy-engine snapshot while the kernel may write: the caller keeps
    // only records that no running ticket can be overwriting.
    return copy_sync(dst, params_.timeline, timeline_bytes_, cudaMemcpyDeviceToHost);
  }

  Backend kind() const override { return Backend::kCuda; }
  const char* device_name() const override { return name_.c_str(); }

 private:
  template <class T>
  Status host_alloc(T** out, size_t bytes) {
    void* p = nullptr;
    // Mapped: the kernel reads/writes it over PCIe. Portable: usable from any
    // context. Cached (not write-combined): the host also reads it.
    MR_CUDA_TRY(cudaHostAlloc(&p, bytes, cudaHostAllocMapped | cudaHostAllocPortable));
    std::memset(p, 0, bytes);
    *out = static_cast<T*>(p);
    return Status::ok();
  }

  // One copy on the control stream, waited for: the copy engine needs no SM,
  // and only our own stream is synchronised (never the device).
  Status copy_sync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    CudaCallScope scope(device_);
    MR_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, kind, control_stream_));
    MR_CUDA_TRY(cudaStreamSynchronize(control_stream_));
    return Status::ok();
  }

  void release_all() {
    // Errors are ignored: this runs at teardown and has no one to report to.
    for (void* p : {static_cast<void*>(host_.slots), static_cast<void*>(host_.submission),
                    static_cast<void*>(host_.completions), static_cast<void*>(host_.ring_done),
                    static_cast<void*>(host_.completion_control), zero_staging_})
      if (p != nullptr) (void)cudaFreeHost(p);
    if (private_block_ != nullptr && kernel_stream_ != nullptr) {
      (void)cudaFreeAsync(private_block_, kernel_stream_);  // after the kernel, in its stream
      (void)cudaStreamSynchronize(kernel_stream_);
    }
    if (kernel_stream_ != nullptr) (void)cudaStreamDestroy(kernel_stream_);
    if (control_stream_ != nullptr) (void)cudaStreamDestroy(control_stream_);
    (void)cudaGetLastError();
  }

  int device_ = 0;
  int sm_count_ = 0;
  uint32_t requested_units_ = 0;
  uint32_t tenant_table_size_ = 0;
  std::string name_;
  cudaStream_t kernel_stream_ = nullptr;
  cudaStream_t control_stream_ = nullptr;
  void* private_block_ = nullptr;
  size_t timeline_bytes_ = 0;
  std::atomic<bool> kernel_running_{false};  // read by health() from waiter threads
  bool owns_device_ = false;
  void* zero_staging_ = nullptr;  // pinned zeros: buffers are cleared by the copy engine
};

}  // namespace

std::unique_ptr<ConsumerBackend> make_cuda_backend() { return std::make_unique<CudaBackend>(); }

}  // namespace megaring::detail
