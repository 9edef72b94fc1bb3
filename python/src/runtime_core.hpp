// SPDX-License-Identifier: Apache-2.0
// The binding's stateful objects: a Runtime, the memory behind Python-made
// buffers, and a Buffer. Every buffer the binding hands out is registered
// memory (Runtime::register_buffer), either the binding's own allocation or
// a caller's tensor, so its lifetime is the binding's to decide: memory is
// freed only once megaring no longer reaches it (unregister returned OK, or
// the runtime is gone) and no exported DLPack view holds it.
#pragma once

#include <cuda_runtime_api.h>
#include <nanobind/nanobind.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.hpp"
#include "megaring/tenant.hpp"

namespace megaring::python {

// DLPack device types (dlpack.h's DLDeviceType).
inline constexpr int kDlCpu = 1;
inline constexpr int kDlCuda = 2;
inline constexpr int kDlCudaHost = 3;
inline constexpr int kDlCudaManaged = 13;

// Zero-filled memory the binding allocated: host memory (CPU backend) or
// device memory of the runtime's GPU. Freed by the last owner. Device
// memory is stream-ordered on a non-blocking stream of its own (allocated,
// zeroed and freed there, each waited for on that stream alone): the
// persistent kernel runs the whole time, and cudaMalloc, cudaMemset on the
// legacy stream, cudaDeviceSynchronize or cudaFree would wait for it.
class OwnedMemory {
 public:
  static Status allocate(bool device, int device_id, uint64_t bytes,
                         std::shared_ptr<OwnedMemory>* out);
  ~OwnedMemory();
  OwnedMemory(const OwnedMemory&) = delete;
  OwnedMemory& operator=(const OwnedMemory&) = delete;
  void* data() const noexcept { return data_; }

 private:
  OwnedMemory(void* data, bool device, int device_id, cudaStream_t stream)
      : data_(data), device_(device), device_id_(device_id), stream_(stream) {}
  void* data_;
  bool device_;
  int device_id_;
  cudaStream_t stream_;  // device memory's stream; null for host memory
};

class PyRuntime {
 public:
  // What keeps a registered buffer's memory alive while megaring may touch
  // it. Read and written only with the GIL held (the GIL is its lock).
  struct Registration {
    std::shared_ptr<OwnedMemory> memory;  // the binding's allocation, or
    nb::object keep;                      // the caller's tensor (and its DLPack import)
  };

  explicit PyRuntime(std::unique_ptr<Runtime> runtime, int device)
      : runtime_(std::move(runtime)), device_(device) {}
  // Stops the consumer (the runtime's destructor aborts it) with the GIL
  // released, so a tenant callback waiting for the GIL can finish, and only
  // then lets the registered memory go.
  ~PyRuntime();

  Runtime& runtime() { return *runtime_; }
  int device() const { return device_; }
  bool cuda() const { return runtime_->backend() == Backend::kCuda; }
  // True once shutdown() or abort() returned OK: the consumer has stopped
  // and no slot can touch any buffer any more.
  bool stopped() const { return stopped_; }
  void set_stopped() { stopped_ = true; }
  std::unordered_map<BufferHandle, Registration>& registrations() { return registrations_; }

 private:
  std::unordered_map<BufferHandle, Registration> registrations_;
  std::unique_ptr<Runtime> runtime_;  // declared last: destroyed first
  int device_;
  bool stopped_ = false;
};

// A Tenant of the binding: the C++ handle and the Python Runtime it serves,
// held so that a tenant's buffers can keep their memory registered with it
// (PyRuntime::registrations) for as long as a slot may touch it.
struct PyTenant : TenantHandle {
  PyTenant(const TenantHandle& handle, nb::object runtime_object)
      : TenantHandle(handle), runtime(std::move(runtime_object)) {}
  PyRuntime& py_runtime() const { return *nb::inst_ptr<PyRuntime>(runtime); }
  nb::object runtime;  // the megaring.Runtime
};

// A buffer of the runtime's, or of a tenant's (tenant() set: its calls go
// through the TenantHandle, which checks ownership and counts the quota).
class PyBuffer {
 public:
  PyBuffer(PyRuntime* owner, BufferHandle handle, uint64_t nbytes,
           std::shared_ptr<OwnedMemory> memory, nb::object external, int dl_device_type,
           std::optional<TenantHandle> tenant = std::nullopt)
      : owner_(owner), handle_(handle), nbytes_(nbytes), memory_(std::move(memory)),
        external_(std::move(external)), dl_device_type_(dl_device_type),
        tenant_(std::move(tenant)) {}

  BufferHandle handle() const { return handle_; }
  uint64_t nbytes() const { return nbytes_; }
  bool live() const { return live_; }
  bool external() const { return external_.is_valid(); }
  int dl_device_type() const { return dl_device_type_; }
  int dl_device_id() const { return owner_->device(); }
  PyRuntime& owner() { return *owner_; }
  const std::optional<TenantHandle>& tenant() const { return tenant_; }
  const std::shared_ptr<OwnedMemory>& memory() const { return memory_; }
  // After a successful unregister (or once the runtime stopped): the
  // buffer no longer names memory; exported views keep theirs.
  void retire() {
    live_ = false;
    memory_.reset();
    external_ = nb::object();
  }

 private:
  PyRuntime* owner_;  // kept alive by the Python Buffer (keep_alive)
  BufferHandle handle_;
  uint64_t nbytes_;
  std::shared_ptr<OwnedMemory> memory_;
  nb::object external_;
  int dl_device_type_;
  std::optional<TenantHandle> tenant_;
  bool live_ = true;
};

void bind_buffer(nb::module_& m);
// Runtime.create_region (region_bindings.cpp): a megaring.Region.
nb::object runtime_create_region(PyRuntime& runtime, nb::handle policy, uint64_t nbytes);
// The runtime's buffers (tenant null) or a tenant's, charged to its
// resident-handle quota; both are registered memory the binding holds.
PyBuffer alloc_buffer(PyRuntime& self, uint64_t nbytes, const TenantHandle* tenant = nullptr);
PyBuffer register_buffer(PyRuntime& self, nb::handle tensor, const TenantHandle* tenant = nullptr);
// Runtime.open_producer (producer_bindings.cpp).
void bind_producer(nb::module_& m);
nb::object open_producer(PyRuntime& runtime, const std::string& priority);
// publish()'s keyword arguments as the C++ options.
PublishOptions publish_options(bool keep, bool block, nb::handle timeout);
// A sequence of megaring.Slot (publish_batch), and the tickets a batch got.
std::vector<SlotRequest> slot_batch(nb::handle slots);
std::vector<Ticket> batch_tickets(const Ticket& first, size_t count);
// A publish through call_sliced: publish_once(options) with options.timeout
// a slice of the caller's (Runtime and Producer publish, publish_batch).
Status publish_sliced(const PublishOptions& options,
                      const std::function<Status(const PublishOptions&)>& publish_once);

}  // namespace megaring::python
