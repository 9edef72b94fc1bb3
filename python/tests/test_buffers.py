# SPDX-License-Identifier: Apache-2.0
"""Buffers and DLPack: a numpy array registered without a copy (slots land
in it), a megaring buffer exported as a zero-copy view, and what is
refused."""
import gc
import weakref

import pytest

import megaring
from megaring import ops
from gpu_torch import gpu_torch, within

np = pytest.importorskip("numpy")


def test_registered_numpy_array_receives_store_u32(rt):
    arr = np.zeros(16, dtype=np.uint32)
    buf = rt.register_buffer(arr)
    assert buf.nbytes == 64 and buf.external
    c = rt.call(ops.store_u32(buf, 8, 0xDEADBEEF))
    assert c.ok and c.result == 0xDEADBEEF
    assert arr[2] == 0xDEADBEEF  # the slot wrote the array itself: no copy
    assert arr.sum() == 0xDEADBEEF
    assert rt.call(megaring.OP_STORE_U32, buf, 4, 7).ok  # a Buffer as a slot word: its handle
    assert arr[1] == 7
    arr[1] = 0
    arr[5] = 41  # and host writes are what slots read
    assert rt.call(ops.reduce_add_u32(buf, 0, 16)).result == 0xDEADBEEF + 41
    assert buf.read(20, 4) == np.uint32(41).tobytes()
    buf.free()
    assert not buf.live
    c = rt.call(ops.store_u32(buf.handle, 0, 1))
    assert megaring.FAULT_NAMES[c.fault] == "bad handle"
    assert arr[0] == 0  # unregistered: never touched again


def test_registration_keeps_the_array_alive(rt):
    buf = rt.register_buffer(np.zeros(1024, dtype=np.uint8))  # no other reference
    gc.collect()
    assert rt.call(ops.fill(buf, 0, 1024, 3)).ok
    assert buf.read(1000, 4) == b"\x03" * 4


def test_registration_holds_the_array_until_free_and_not_after(rt):
    # A weak reference says whether the binding holds the array (a read
    # through a freed array would most likely still see the bytes).
    arr = np.zeros(1024, dtype=np.uint8)
    alive = weakref.ref(arr)
    buf = rt.register_buffer(arr)
    del arr
    gc.collect()
    assert alive() is not None, "the registration does not hold the array"
    assert rt.call(ops.fill(buf, 0, 1024, 3)).ok
    assert alive()[1000] == 3
    buf.free()
    gc.collect()
    assert alive() is None, "free() returned but the array is still held"


MAX_BUFFERS = 4


def _free_table_entries(rt):
    """How many more buffers the runtime's table takes (each made, then freed)."""
    made = []
    try:
        while len(made) <= MAX_BUFFERS:
            made.append(rt.alloc_buffer(8))
    except megaring.OutOfMemory:
        pass
    for b in made:
        b.free()
    return len(made)


def _small_runtime():
    return megaring.Runtime(backend="cpu", ring_capacity=64, workers=1, max_buffers=MAX_BUFFERS)


@pytest.mark.parametrize("owner", ["runtime", "tenant"])
def test_a_bare_dlpack_capsule_registers_with_its_producer_held(owner):
    # A capsule has no Python object of its own to hold: the registration
    # keeps its import, which holds the array that made it, until free().
    with _small_runtime() as rt, megaring.TenantRegistry(rt, pump="manual") as registry:
        tenant = registry.register("t", resident_handles=MAX_BUFFERS)
        target = rt if owner == "runtime" else tenant
        tensor = np.arange(64, dtype=np.uint8)
        alive = weakref.ref(tensor)
        buf = target.register_buffer(tensor.__dlpack__())
        del tensor
        gc.collect()
        assert alive() is not None, "nothing holds the capsule's memory"
        assert buf.read(0, 4) == bytes([0, 1, 2, 3]) and buf.nbytes == 64
        assert rt.call(ops.store_u32(buf, 0, 0x41414141)).ok
        assert alive()[:4].tolist() == [0x41] * 4  # the slot wrote the array itself
        assert _free_table_entries(rt) == MAX_BUFFERS - 1
        buf.free()
        gc.collect()
        assert alive() is None, "free() returned but the capsule's memory is still held"
        assert _free_table_entries(rt) == MAX_BUFFERS


@pytest.mark.parametrize("owner", ["runtime", "tenant"])
def test_a_refused_registration_leaves_nothing_registered_or_held(owner):
    with _small_runtime() as rt, megaring.TenantRegistry(rt, pump="manual") as registry:
        tenant = registry.register("t", resident_handles=1)
        target = rt if owner == "runtime" else tenant
        tensor = np.arange(64, dtype=np.uint8)
        capsule = tensor.__dlpack__()
        first = target.register_buffer(capsule)
        with pytest.raises(megaring.InvalidArgument, match="capsule"):
            target.register_buffer(capsule)  # a capsule is imported once
        refused = np.zeros(64, dtype=np.uint8)
        alive = weakref.ref(refused)
        if owner == "tenant":  # refused by the quota, after the import
            with pytest.raises(megaring.ResidentBackpressure):
                tenant.register_buffer(refused)
        else:
            with pytest.raises(megaring.InvalidArgument, match="contiguous"):
                rt.register_buffer(refused[::2])
        del refused
        gc.collect()
        assert alive() is None, "a refused registration still holds the tensor"
        assert _free_table_entries(rt) == MAX_BUFFERS - 1  # only `first` is registered
        if owner == "tenant":
            assert tenant.quota_counters()["resident_buffers"] == 1
        first.free()
        assert _free_table_entries(rt) == MAX_BUFFERS


def test_zero_element_tensors_register_as_empty_buffers(rt):
    # As alloc_buffer(0): an empty buffer, whatever the empty tensor's strides.
    for arr in (np.zeros(0, dtype=np.uint8), np.zeros((3, 0), dtype=np.float32),
                np.zeros((0, 4), dtype=np.uint32)[:, ::2]):
        buf = rt.register_buffer(arr)
        assert buf.nbytes == 0 and buf.external
        c = rt.call(ops.store_u32(buf, 0, 1))
        assert c.status == megaring.STATUS_FAULT
        assert megaring.FAULT_NAMES[c.fault] == "out of bounds"
        buf.free()
    assert rt.alloc_buffer(0).nbytes == 0


def test_register_refuses_what_it_cannot_use(rt):
    with pytest.raises(megaring.InvalidArgument, match="contiguous"):
        rt.register_buffer(np.zeros(64, dtype=np.uint32)[::2])
    ro = np.zeros(64, dtype=np.uint8)
    ro.flags.writeable = False
    with pytest.raises(megaring.InvalidArgument):
        rt.register_buffer(ro)
    with pytest.raises(megaring.InvalidArgument):
        rt.register_buffer([1, 2, 3])
    # A column-major 2-D array is contiguous, but not in C order.
    with pytest.raises(megaring.InvalidArgument, match="contiguous"):
        rt.register_buffer(np.zeros((4, 4), dtype=np.float32, order="F"))
    # C-order 2-D arrays are fine.
    assert rt.register_buffer(np.zeros((4, 4), dtype=np.float32)).nbytes == 64


def test_dlpack_export_is_a_zero_copy_view(rt):
    buf = rt.alloc_buffer(256)
    assert buf.__dlpack_device__() == (1, 0)  # kDLCPU
    assert rt.call(ops.fill(buf, 0, 256, 7)).ok
    view = np.from_dlpack(buf)
    assert view.dtype == np.uint8 and view.shape == (256,)
    assert (view == 7).all()
    view[:4] = [1, 2, 3, 4]  # host writes through the view ...
    assert buf.read(0, 4) == b"\x01\x02\x03\x04"
    assert rt.call(ops.reduce_add_u32(buf, 0, 1)).result == 0x04030201  # ... reach slots
    assert rt.call(ops.fill(buf, 8, 8, 9)).ok  # and slot writes the view
    assert view[8:16].tolist() == [9] * 8
    as_u32 = np.from_dlpack(buf).view(np.uint32)
    assert as_u32[0] == 0x04030201
    buf.free()
    # The views keep the memory: reading them after free() is safe.
    assert view[8] == 9 and as_u32[0] == 0x04030201
    with pytest.raises(megaring.InvalidArgument):
        np.from_dlpack(buf)  # a freed buffer exports nothing


def test_views_outlive_the_runtime():
    with megaring.Runtime(backend="cpu") as rt:
        buf = rt.alloc_buffer(64)
        rt.call(ops.fill(buf, 0, 64, 5))
        view = np.from_dlpack(buf)
    del rt, buf
    gc.collect()
    assert (view == 5).all()


def test_write_from_buffer_protocol_objects(rt):
    buf = rt.alloc_buffer(32)
    buf.write(np.arange(4, dtype=np.uint32))
    buf.write(bytearray(b"\xff\xff"), offset=16)
    buf.write(memoryview(b"\x01"), offset=31)
    assert rt.call(ops.reduce_add_u32(buf, 0, 4)).result == 6
    data = buf.read()
    assert data[16:18] == b"\xff\xff" and data[31] == 1
    with pytest.raises(megaring.InvalidArgument):
        buf.write(b"x" * 33)
    with pytest.raises(megaring.InvalidArgument):
        buf.write(b"x", offset=2**64 - 1)
    with pytest.raises(megaring.InvalidArgument):
        buf.write(np.zeros(8, dtype=np.uint8)[::2])  # not contiguous


@pytest.mark.gpu
def test_gpu_tensor_registration():
    torch = gpu_torch()  # skips without a GPU and torch; loads torch's kernels first

    def body():
        with megaring.Runtime(backend="cuda") as rt:
            t = torch.zeros(16, dtype=torch.int32, device="cuda")
            buf = rt.register_buffer(t)
            assert rt.call(ops.store_u32(buf, 4, 77)).ok
            assert t[1].item() == 77
            with pytest.raises(megaring.InvalidArgument):
                rt.register_buffer(torch.zeros(4))  # host memory on the CUDA backend
            # The binding's own device memory, beside the running megakernel
            # (stream-ordered on a stream of its own), exported to torch.
            dev = rt.alloc_buffer(64)
            assert rt.call(ops.fill(dev, 0, 64, 2)).ok
            assert (torch.from_dlpack(dev) == 2).all().item()
            dev.free()
            buf.free()

    within(90, body)


@pytest.mark.gpu
def test_gpu_cupy_array_registration():
    """Any DLPack tensor, not only torch's: a CuPy array, written in place."""
    if not megaring.cuda_device_available():
        pytest.skip("no CUDA GPU")
    cupy = pytest.importorskip("cupy")
    # Allocated, zeroed and read back once before the megakernel runs (no
    # CuPy kernel is launched beside it: zeros is a memset, reads are copies).
    a = cupy.zeros(16, dtype=cupy.int32)
    assert int(a[1]) == 0
    cupy.cuda.runtime.deviceSynchronize()

    def body():
        with megaring.Runtime(backend="cuda") as rt:
            buf = rt.register_buffer(a)
            assert rt.call(ops.store_u32(buf, 4, 77), timeout=30).ok
            assert rt.call(ops.reduce_add_u32(buf, 0, 16), timeout=30).result == 77
            assert int(a[1]) == 77  # a copy on CuPy's stream, not a device-wide wait
            buf.free()

    within(60, body)
