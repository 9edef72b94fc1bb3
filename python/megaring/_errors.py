# SPDX-License-Identifier: Apache-2.0
"""megaring's exceptions: one class per result code, all under megaring.Error.

Every failed call raises the class of its code (megaring/status.hpp lists
which calls return which codes). ``err.code`` is a :class:`Result`,
``err.message`` the library's message, and ``err.value`` / ``err.limit``
the amount and the quota a quota refusal hit (0 otherwise).
"""
import enum


class Result(enum.IntEnum):
    """megaring::Result; the numbers never change (new codes go at the end)."""
    SUCCESS = 0
    INVALID_ARGUMENT = 1
    RING_FULL = 2
    TIMEOUT = 3
    NO_DEVICE = 4
    CUDA_ERROR = 5
    SHUTDOWN = 6
    ABORTED = 7
    OUT_OF_MEMORY = 8
    INTERNAL = 9
    IO_ERROR = 10
    REVOKED = 11
    OPCODE_OUT_OF_RANGE = 12
    BACKPRESSURE = 13
    STAGING_BACKPRESSURE = 14
    RESIDENT_BACKPRESSURE = 15
    RESOURCE_UNDERFLOW = 16
    QUIESCE_TIMEOUT = 17
    REGISTRY_FULL = 18
    IN_USE = 19


class Error(Exception):
    """A megaring call failed: ``code`` (a Result, or the raw int for a code
    this package does not know), ``message``, ``value`` and ``limit``."""

    def __init__(self, code, message="", value=0, limit=0):
        try:
            code = Result(code)
        except ValueError:
            pass
        self.code = code
        self.message = message
        self.value = value
        self.limit = limit
        from ._core import result_string  # the library's name of the code
        name = result_string(int(code))
        super().__init__(f"{name}: {message}" if message else name)


class InvalidArgument(Error, ValueError):
    """A bad argument, handle, ticket or range."""


class RingFull(Error):
    """No free ring position and the call was told not to wait."""


class Timeout(Error, TimeoutError):
    """A bounded wait ran out."""


class NoDevice(Error):
    """The CUDA backend was asked for without a usable GPU."""


class CudaError(Error):
    """A CUDA call failed, or the consumer died."""


class Shutdown(Error):
    """The runtime is draining or stopped: no new work."""


class Aborted(Error):
    """The runtime was aborted."""


class OutOfMemory(Error, MemoryError):
    """A host or device allocation failed, or a table is full."""


class Internal(Error):
    """A broken invariant: a bug in megaring."""


class IoError(Error, OSError):
    """A file could not be written."""


class Revoked(Error):
    """The tenant was unregistered, or its registry or runtime is gone."""


class OpcodeOutOfRange(Error, ValueError):
    """A tenant-local opcode outside the tenant's window."""


class Backpressure(Error):
    """A tenant quota refused the request (``value`` in use, ``limit`` the quota)."""


class StagingBackpressure(Backpressure):
    """Staging bytes over the tenant's quota."""


class ResidentBackpressure(Backpressure):
    """Resident handles over the tenant's quota."""


class ResourceUnderflow(Error):
    """Released or drained more than was reserved or published."""


class QuiesceTimeout(Timeout):
    """quiesce() ran out with slots outstanding (``value``)."""


class RegistryFull(Error):
    """No tenant id or opcode window left."""


class InUse(Error):
    """unregister_buffer refused: slots published before may still use the buffer."""


_CLASSES = {
    Result.INVALID_ARGUMENT: InvalidArgument,
    Result.RING_FULL: RingFull,
    Result.TIMEOUT: Timeout,
    Result.NO_DEVICE: NoDevice,
    Result.CUDA_ERROR: CudaError,
    Result.SHUTDOWN: Shutdown,
    Result.ABORTED: Aborted,
    Result.OUT_OF_MEMORY: OutOfMemory,
    Result.INTERNAL: Internal,
    Result.IO_ERROR: IoError,
    Result.REVOKED: Revoked,
    Result.OPCODE_OUT_OF_RANGE: OpcodeOutOfRange,
    Result.BACKPRESSURE: Backpressure,
    Result.STAGING_BACKPRESSURE: StagingBackpressure,
    Result.RESIDENT_BACKPRESSURE: ResidentBackpressure,
    Result.RESOURCE_UNDERFLOW: ResourceUnderflow,
    Result.QUIESCE_TIMEOUT: QuiesceTimeout,
    Result.REGISTRY_FULL: RegistryFull,
    Result.IN_USE: InUse,
}


def _from_status(code, message, value, limit):
    """The exception for a failed Status (called by the extension)."""
    cls = _CLASSES.get(code, Error)
    return cls(code, message, value, limit)
