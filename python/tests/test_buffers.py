# SPDX-License-Identifier: Apache-2.0
"""Buffers and DLPack: a numpy array registered without a copy (slots land
in it), a megaring buffer exported as a zero-copy view, and what is
refused."""
import gc

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
