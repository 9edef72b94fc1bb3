// SPDX-License-Identifier: Apache-2.0
// megaring.Buffer: memory a runtime's slots name by handle. alloc_buffer
// makes it (zero-filled host memory on the CPU backend, device memory on a
// GPU), register_buffer takes a caller's DLPack tensor without a copy;
// both are registered with Runtime::register_buffer (a Tenant's, with
// TenantHandle::register_buffer). Read, write, free, and export as DLPack
// (a zero-copy view that keeps the memory alive).
#include <cuda_runtime_api.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime_core.hpp"

namespace megaring::python {

namespace {

// The device calls below run on the runtime's device and in the relaxed
// stream-capture mode (another thread's torch.cuda.graph capture, in global
// mode, must neither fail them nor be broken by them); both are put back.
class DeviceCallScope {
 public:
  explicit DeviceCallScope(int device) {
    (void)cudaThreadExchangeStreamCaptureMode(&mode_);
    ok_ = cudaGetDevice(&previous_) == cudaSuccess && cudaSetDevice(device) == cudaSuccess;
    if (!ok_) (void)cudaGetLastError();
  }
  ~DeviceCallScope() {
    if (ok_) (void)cudaSetDevice(previous_);
    (void)cudaThreadExchangeStreamCaptureMode(&mode_);
  }
  DeviceCallScope(const DeviceCallScope&) = delete;
  DeviceCallScope& operator=(const DeviceCallScope&) = delete;
  bool ok() const noexcept { return ok_; }

 private:
  cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;
  int previous_ = 0;
  bool ok_ = false;
};

}  // namespace

Status OwnedMemory::allocate(bool device, int device_id, uint64_t bytes,
                             std::shared_ptr<OwnedMemory>* out) {
  if (bytes > kMaxBufferBytes)
    return Status(Result::kInvalidArgument, "buffer of " + std::to_string(bytes) +
                                                " bytes exceeds kMaxBufferBytes (2^48)");
  // At least one 64-byte line, so that even an empty buffer has an address
  // (register_buffer refuses null); bytes <= 2^48 cannot overflow here.
  const uint64_t rounded = std::max<uint64_t>(64, (bytes + 63) / 64 * 64);
  if (!device) {
    void* data = std::aligned_alloc(64, rounded);
    if (data == nullptr) return Status(Result::kOutOfMemory, "host allocation failed");
    std::memset(data, 0, rounded);
    out->reset(new OwnedMemory(data, false, device_id, nullptr));
    return Status::ok();
  }
  DeviceCallScope scope(device_id);
  if (!scope.ok()) return Status(Result::kCudaError, "cudaSetDevice failed");
  cudaStream_t stream = nullptr;
  void* data = nullptr;
  cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (err == cudaSuccess) err = cudaMallocAsync(&data, rounded, stream);
  if (err == cudaSuccess) err = cudaMemsetAsync(data, 0, rounded, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);  // zeroed before anyone sees it
  if (err != cudaSuccess) {
    const cudaError_t first = err;
    (void)cudaGetLastError();
    if (data != nullptr) (void)cudaFreeAsync(data, stream);
    if (stream != nullptr) {
      (void)cudaStreamSynchronize(stream);
      (void)cudaStreamDestroy(stream);
    }
    (void)cudaGetLastError();
    return Status(first == cudaErrorMemoryAllocation ? Result::kOutOfMemory : Result::kCudaError,
                  std::string("device allocation failed: ") + cudaGetErrorString(first));
  }
  out->reset(new OwnedMemory(data, true, device_id, stream));
  return Status::ok();
}

OwnedMemory::~OwnedMemory() {
  if (!device_) {
    std::free(data_);
    return;
  }
  DeviceCallScope scope(device_id_);
  if (!scope.ok()) return;  // leaked rather than freed on the wrong device
  (void)cudaFreeAsync(data_, stream_);
  (void)cudaStreamSynchronize(stream_);
  (void)cudaStreamDestroy(stream_);
  (void)cudaGetLastError();
}

namespace {

PyBuffer& live_buffer(PyBuffer& b) {
  if (!b.live()) raise_invalid("buffer " + std::to_string(b.handle()) + " was freed");
  return b;
}

// Host copies go through the buffer's tenant when it has one (which checks
// that the handle is still the tenant's: kRevoked once it was unregistered).
Status copy_bytes(PyBuffer& b, uint64_t offset, void* host, uint64_t n, bool to_buffer) {
  const std::optional<TenantHandle>& t = b.tenant();
  Runtime& rt = b.owner().runtime();
  if (to_buffer)
    return t ? t->write_buffer(b.handle(), offset, host, n) : rt.write_buffer(b.handle(), offset, host, n);
  return t ? t->read_buffer(b.handle(), offset, host, n) : rt.read_buffer(b.handle(), offset, host, n);
}

// Unregisters the buffer (its tenant's call for a tenant's buffer). A
// revoked tenant already retired its buffers without waiting (tenant.hpp):
// the runtime's unregister then waits for the slots published before, and
// answers kInvalidArgument once none is left (the handle is gone); either
// way the memory is the caller's again.
Status unregister(PyBuffer& b, Nanoseconds timeout, WhileInUse mode) {
  Runtime& rt = b.owner().runtime();
  if (!b.tenant()) return rt.unregister_buffer(b.handle(), timeout, mode);
  Status st = b.tenant()->unregister_buffer(b.handle(), timeout, mode);
  if (st.code() != Result::kRevoked) return st;
  Status waited = rt.unregister_buffer(b.handle(), timeout, WhileInUse::kWait);
  return waited.code() == Result::kInvalidArgument ? Status::ok() : waited;
}

// [offset, offset + nbytes) within the buffer, checked without overflow
// before anything is allocated for it.
uint64_t checked_length(const PyBuffer& b, uint64_t offset, nb::handle nbytes) {
  if (offset > b.nbytes()) raise_invalid("offset past the end of the buffer");
  if (nbytes.is_none()) return b.nbytes() - offset;
  const uint64_t n = to_int<uint64_t>(nbytes, "nbytes");
  if (n > b.nbytes() - offset) raise_invalid("range past the end of the buffer");
  return n;
}

// A contiguous Py_buffer of `obj` (writable if asked), released on scope exit.
class BufferView {
 public:
  BufferView(nb::handle obj, bool writable) {
    const int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj.ptr(), &view_, flags) != 0) {
      PyErr_Clear();
      raise_invalid(writable ? "expected a writable, contiguous buffer-protocol object"
                             : "expected a contiguous buffer-protocol object (bytes, numpy array...)");
    }
  }
  ~BufferView() { PyBuffer_Release(&view_); }
  void* data() const { return view_.buf; }
  uint64_t size() const { return static_cast<uint64_t>(view_.len); }

 private:
  Py_buffer view_{};
};

bool c_contiguous(const nb::ndarray<>& a) {
  int64_t expected = 1;  // strides are in elements
  for (size_t i = a.ndim(); i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expected) return false;
    expected *= static_cast<int64_t>(a.shape(i));
  }
  return true;
}

// A one-dimensional uint8 view of the buffer's memory whose owner holds it.
nb::object view_of(PyBuffer& b) {
  live_buffer(b);
  if (b.external()) raise_invalid("a registered tensor is exported by the tensor itself");
  if (!b.memory()) raise_invalid("buffer " + std::to_string(b.handle()) + " has no memory to export");
  auto* hold = new std::shared_ptr<OwnedMemory>(b.memory());
  nb::capsule owner(hold, [](void* p) noexcept { delete static_cast<std::shared_ptr<OwnedMemory>*>(p); });
  const size_t shape[1] = {static_cast<size_t>(b.nbytes())};
  nb::ndarray<nb::array_api, uint8_t, nb::ndim<1>> array(b.memory()->data(), 1, shape, owner, nullptr,
                                          nb::dtype<uint8_t>(), b.dl_device_type(),
                                          b.dl_device_id());
  return nb::cast(array);
}

}  // namespace

// Registers [data, data + nbytes) with the runtime, or with the tenant
// (charged to its resident-handle quota).
static BufferHandle register_memory(PyRuntime& self, const TenantHandle* tenant, void* data,
                                    uint64_t nbytes) {
  BufferHandle handle = 0;
  Status st;
  {
    nb::gil_scoped_release release;  // a tenant's registration takes its mutex
    st = tenant != nullptr ? tenant->register_buffer(data, nbytes, &handle)
                           : self.runtime().register_buffer(data, nbytes, &handle);
  }
  check(st);
  return handle;
}

// Records what keeps a just registered handle's memory alive. Should that
// fail (an allocation), the registration is undone before the error
// propagates: a handle nobody holds the memory of never stays registered.
static void record_registration(PyRuntime& self, const TenantHandle* tenant, BufferHandle handle,
                                PyRuntime::Registration registration) {
  try {
    self.registrations()[handle] = std::move(registration);
  } catch (...) {
    nb::gil_scoped_release release;  // waits for any slot that named it meanwhile
    (void)(tenant != nullptr ? tenant->unregister_buffer(handle)
                             : self.runtime().unregister_buffer(handle));
    throw;
  }
}

static std::optional<TenantHandle> owner_of(const TenantHandle* tenant) {
  if (tenant == nullptr) return std::nullopt;
  return *tenant;
}

PyBuffer alloc_buffer(PyRuntime& self, uint64_t nbytes, const TenantHandle* tenant) {
  std::shared_ptr<OwnedMemory> memory;
  check(OwnedMemory::allocate(self.cuda(), self.device(), nbytes, &memory));
  const BufferHandle handle = register_memory(self, tenant, memory->data(), nbytes);
  record_registration(self, tenant, handle, PyRuntime::Registration{memory, nb::object()});
  return PyBuffer(&self, handle, nbytes, memory, nb::object(), self.cuda() ? kDlCuda : kDlCpu,
                  owner_of(tenant));
}

// What keeps an imported tensor's memory alive: the nb::ndarray itself, in
// a capsule. Its import holds the producer's DLPack tensor (whose deleter
// lets the memory go), whether it came from an object with __dlpack__,
// the buffer protocol, or a bare DLPack capsule, which has no Python object
// of its own to hold and which nb::cast cannot turn into one.
static nb::object hold_import(const nb::ndarray<>& array) {
  auto* held = new nb::ndarray<>(array);
  try {
    return nb::capsule(held, [](void* p) noexcept { delete static_cast<nb::ndarray<>*>(p); });
  } catch (...) {
    delete held;
    throw;
  }
}

PyBuffer register_buffer(PyRuntime& self, nb::handle tensor, const TenantHandle* tenant) {
  nb::ndarray<> array;
  if (!nb::try_cast(tensor, array, false))
    raise_invalid("register_buffer needs a writable tensor with __dlpack__ or the buffer protocol "
                  "(a DLPack capsule is imported once: not one already used)");
  const int type = array.device_type();
  if (self.cuda()) {
    if ((type != kDlCuda && type != kDlCudaManaged) || array.device_id() != self.device())
      raise_invalid("the CUDA backend registers memory of its own GPU (device " +
                    std::to_string(self.device()) + ") only");
  } else if (type != kDlCpu && type != kDlCudaHost) {
    raise_invalid("the CPU backend registers host memory only");
  }
  // A zero-element tensor is contiguous whatever its strides (an empty
  // buffer, as alloc_buffer(0) makes); it still needs an address.
  if (array.size() != 0 && !c_contiguous(array))
    raise_invalid("register_buffer needs C-contiguous memory (strides of a row-major layout)");
  if (array.data() == nullptr)
    raise_invalid("register_buffer: the tensor has no address (an empty one may have none: "
                  "use alloc_buffer(0))");
  const uint64_t nbytes = array.nbytes();
  // Everything that can fail happens before the registration: the tensor
  // and its DLPack import stay referenced until the memory is the caller's
  // again.
  nb::object keep = nb::make_tuple(nb::borrow(tensor), hold_import(array));
  const BufferHandle handle = register_memory(self, tenant, array.data(), nbytes);
  record_registration(self, tenant, handle, PyRuntime::Registration{nullptr, keep});
  return PyBuffer(&self, handle, nbytes, nullptr, keep, type, owner_of(tenant));
}

void bind_buffer(nb::module_& m) {
  nb::class_<PyBuffer>(m, "Buffer", "Memory that slots name by handle.")
      .def_prop_ro("handle", &PyBuffer::handle)
      .def_prop_ro("nbytes", &PyBuffer::nbytes)
      .def_prop_ro("live", &PyBuffer::live)
      .def_prop_ro("external", &PyBuffer::external)
      .def_prop_ro("tenant_owned", [](const PyBuffer& b) { return b.tenant().has_value(); },
                   "True for a Tenant's buffer (Tenant.alloc_buffer / register_buffer).")
      .def("__len__", [](const PyBuffer& b) { return b.nbytes(); })
      .def("__index__", &PyBuffer::handle)
      .def("read", [](PyBuffer& b, uint64_t offset, nb::handle nbytes) {
        const uint64_t n = checked_length(live_buffer(b), offset, nbytes);
        nb::bytes out(nullptr, n);
        Status st;
        {
          nb::gil_scoped_release release;
          st = copy_bytes(b, offset, const_cast<char*>(out.c_str()), n, false);
        }
        check(st);
        return out;
      }, nb::arg("offset") = 0, nb::arg("nbytes").none() = nb::none(),
         "Copies bytes out of the buffer (wait for the slots that write them first).")
      .def("read_into", [](PyBuffer& b, nb::handle out, uint64_t offset) {
        BufferView view(out, true);
        checked_length(live_buffer(b), offset, nb::int_(view.size()));
        Status st;
        {
          nb::gil_scoped_release release;
          st = copy_bytes(b, offset, view.data(), view.size(), false);
        }
        check(st);
      }, nb::arg("out"), nb::arg("offset") = 0,
         "Fills a writable buffer-protocol object (numpy array, bytearray) from the buffer.")
      .def("write", [](PyBuffer& b, nb::handle data, uint64_t offset) {
        BufferView view(data, false);
        checked_length(live_buffer(b), offset, nb::int_(view.size()));
        Status st;
        {
          nb::gil_scoped_release release;
          st = copy_bytes(b, offset, view.data(), view.size(), true);
        }
        check(st);
      }, nb::arg("data"), nb::arg("offset") = 0)
      .def("free", [](PyBuffer& b, nb::handle timeout, const std::string& while_in_use) {
        if (!b.live()) return;
        PyRuntime& rt = b.owner();
        const Nanoseconds t = to_timeout(timeout);
        WhileInUse mode = WhileInUse::kWait;
        if (while_in_use == "fail") mode = WhileInUse::kFail;
        else if (while_in_use != "wait") raise_invalid("while_in_use must be 'wait' or 'fail'");
        if (!rt.stopped()) {
          // Sliced (waits for the slots that may touch it): a slice that
          // runs out leaves the handle retired, and the next one waits on
          // (runtime.hpp); the first slice alone applies while_in_use, as
          // Runtime::unregister_buffer's own slices do.
          // kTimeout: the memory stays held (retired); free() again waits on.
          // kInUse: nothing changed; the buffer stays live.
          check(call_sliced(t, [&](Nanoseconds slice) {
            const Status st = unregister(b, slice, mode);
            mode = WhileInUse::kWait;
            return st;
          }));
        }
        rt.registrations().erase(b.handle());
        b.retire();
      }, nb::arg("timeout").none() = nb::none(), nb::kw_only(), nb::arg("while_in_use") = "wait",
         "Unregisters the buffer once no slot can touch it; exported views keep the memory. "
         "while_in_use='fail' raises megaring.InUse instead of waiting while slots are outstanding.")
      .def("__dlpack__", [](PyBuffer& b, nb::kwargs kwargs) {
        return view_of(b).attr("__dlpack__")(**kwargs);
      }, nb::arg("kwargs"))
      .def("__dlpack_device__", [](PyBuffer& b) {
        return nb::make_tuple(b.dl_device_type(), b.dl_device_id());
      })
      .def("__repr__", [](const PyBuffer& b) {
        return "Buffer(handle=" + std::to_string(b.handle()) + ", nbytes=" +
               std::to_string(b.nbytes()) + (b.live() ? ")" : ", freed)");
      });
}

}  // namespace megaring::python
