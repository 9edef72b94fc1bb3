# SPDX-License-Identifier: Apache-2.0
"""megaring from Python: a persistent consumer (a CUDA megakernel, or CPU
worker threads) fed 64-byte slots through rings in pinned host memory.

    import megaring
    from megaring import ops

    with megaring.Runtime(backend="cpu", ring_capacity=1024) as rt:
        assert rt.call(ops.nop(7)).result == 7
        buf = rt.alloc_buffer(4096)
        rt.call(ops.fill(buf, 0, 4096, 0xAB))
        assert buf.read(0, 4) == b"\\xab" * 4

Blocking calls (publish waiting for ring space, wait, call, shutdown,
tenant waits) release the GIL while they wait. Every failure raises a
subclass of megaring.Error carrying the result code.
"""
import contextlib

from . import _core
from ._core import (  # noqa: F401
    Buffer,
    Completion,
    Producer,
    Region,
    Runtime,
    Slot,
    StagingDescriptor,
    Tenant,
    TenantRegistry,
    Ticket,
    cuda_device_available,
    ops,
)
from ._core import (  # noqa: F401  opcodes, statuses
    OP_ATOMIC_ADD, OP_AXPY_F32, OP_COPY, OP_DELAY_NS, OP_FENCE, OP_FILL, OP_INVALID, OP_NOP,
    OP_READ_CLOCK, OP_REDUCE_ADD_U32, OP_STORE_U32, OP_USER_BASE, SLOT_ARGS, STATUS_ABORTED,
    STATUS_FAULT, STATUS_OK, STATUS_REVOKED,
    OP_BUFFER_TO_STAGING, OP_STAGE_TO_BUFFER, REGION_APPEND_ONLY, REGION_IMMUTABLE, REGION_MUTABLE,
)
from ._errors import (  # noqa: F401
    Aborted, Backpressure, CudaError, Error, InUse, Internal, InvalidArgument, IoError, NoDevice,
    OpcodeOutOfRange, OutOfMemory, QuiesceTimeout, RegistryFull, ResidentBackpressure,
    ResourceUnderflow, Result, Revoked, RingFull, Shutdown, StagingBackpressure, Timeout,
)

__version__ = _core.VERSION


@contextlib.contextmanager
def _paused(self, timeout=None):
    """Runtime.paused(timeout=None): suspend() on entry, resume() on exit (if
    the runtime still runs), e.g. around torch.cuda.synchronize(),
    torch.cuda.empty_cache() or a torch.cuda.graph() capture. If suspend()
    raises (Timeout: a staged slot still runs), the runtime is resumed before
    the error propagates."""
    try:
        self.suspend(timeout=timeout)
    except BaseException:
        # Not suspended (a staged slot still runs past the timeout, or an
        # interrupt): left suspending, the consumer would stop for good once
        # that slot ends. Take the request back: resume() waits for the exit
        # and starts it again.
        if self.consumer_phase != "live":
            self.resume()
        raise
    try:
        yield self
    finally:
        if self.consumer_phase != "live":  # not if it was shut down meanwhile
            self.resume()


Runtime.paused = _paused

# MR_FAULT_* names by code (slot_abi.h), for Completion.fault.
FAULT_NAMES = (
    "none", "unknown opcode", "bad handle", "out of bounds", "misaligned", "bad argument",
    "reserved flags", "out of window", "bad tenant", "not granted", "bad region",
    "region policy",
)
STATUS_NAMES = ("ok", "fault", "aborted", "revoked")
