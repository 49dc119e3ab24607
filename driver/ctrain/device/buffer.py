"""Host-side buffers over device memory, shaped like pynq's PynqBuffer: an
ndarray the host works on, a physical address the accelerator uses, and
explicit sync in each direction (the host's copy is not coherent with DDR)."""
import numpy as np

from ..errors import MemoryFault


class DeviceBuffer(np.ndarray):
    """An ndarray backed by a DDR allocation. Slices are DeviceBuffers too and
    sync only their own bytes, so a runtime can move one region of an arena."""

    def __new__(cls, device, address, shape, dtype):
        obj = np.zeros(shape, dtype).view(cls)
        obj._device = device
        obj._root = obj
        obj._root_address = int(address)
        obj._freed = False
        obj._phys = None
        return obj

    def __array_finalize__(self, obj):
        if obj is None:
            return
        self._device = getattr(obj, "_device", None)
        self._root = getattr(obj, "_root", None)
        self._root_address = getattr(obj, "_root_address", 0)
        self._phys = None

    # -- addresses --
    @property
    def physical_address(self):
        phys = getattr(self, "_phys", None)
        if phys is not None:  # an array's first byte never moves: computed once per view
            return phys
        root = self._root
        if root is None:
            raise MemoryFault("array is not a device buffer")
        delta = self.__array_interface__["data"][0] - root.__array_interface__["data"][0]
        self._phys = self._root_address + delta
        return self._phys

    device_address = physical_address

    def _span(self):
        if self._root is None or self._root._freed:
            raise MemoryFault("buffer was freed or is not a device buffer")
        if not self.flags.c_contiguous:
            raise MemoryFault("only contiguous views of a device buffer can be synced")
        return self.physical_address, self.nbytes

    # -- data movement --
    def sync_to_device(self):
        """Write the host copy to DDR (pynq: flush)."""
        addr, n = self._span()
        self._device.write_ddr(addr, self.view(np.uint8).reshape(-1))

    def sync_from_device(self):
        """Read DDR into the host copy (pynq: invalidate)."""
        addr, n = self._span()
        self.view(np.uint8).reshape(-1)[...] = self._device.read_ddr(addr, n)

    flush = sync_to_device
    invalidate = sync_from_device

    def freebuffer(self):
        if self._root is self and not self._freed:
            self._device.free(self._root_address)
            self._freed = True

    close = freebuffer


class Allocator:
    """First-fit allocator over [base, base + size), 4 KiB aligned like CMA pages."""

    def __init__(self, base, size, align=4096):
        self.base, self.size, self.align = base, size, align
        self.free_list = [(base, size)]
        self.used = {}

    def allocate(self, nbytes):
        need = max(-(-int(nbytes) // self.align) * self.align, self.align)
        for k, (start, length) in enumerate(self.free_list):
            if length >= need:
                if length == need:
                    del self.free_list[k]
                else:
                    self.free_list[k] = (start + need, length - need)
                self.used[start] = need
                return start
        free = sum(l for _, l in self.free_list)
        raise MemoryError(f"device memory exhausted: {nbytes} bytes requested, {free} free "
                          f"of {self.size} (fragmented into {len(self.free_list)} blocks)")

    def free(self, addr):
        need = self.used.pop(addr, None)
        if need is None:
            raise MemoryFault(f"free of 0x{addr:x}, which is not an allocation")
        self.free_list.append((addr, need))
        self.free_list.sort()
        merged = []
        for start, length in self.free_list:
            if merged and merged[-1][0] + merged[-1][1] == start:
                merged[-1] = (merged[-1][0], merged[-1][1] + length)
            else:
                merged.append((start, length))
        self.free_list = merged

    def owner(self, addr, nbytes):
        """The allocation containing [addr, addr + nbytes), or None."""
        for start, need in self.used.items():
            if start <= addr and addr + nbytes <= start + need:
                return start
        return None
