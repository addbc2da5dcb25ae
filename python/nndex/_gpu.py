"""The GPU backend as Python sees it: the device list, the ``backend`` argument, and the warnings a
user gets when a GPU index would not run where they expect."""

from __future__ import annotations

import threading
import warnings
from typing import Any

from nndex import _nndex

BACKENDS = ("cpu", "gpu", "auto")

# The original library's gpu_info names (wgpu's enums) for each device type.
_WGPU_TYPES = {"discrete": "DiscreteGpu", "integrated": "IntegratedGpu", "virtual": "VirtualGpu", "cpu": "Cpu"}

_warned: set[str] = set()
_warned_lock = threading.Lock()


def gpu_devices() -> list[dict[str, Any]]:
    """Every Vulkan device of this machine, as dicts: ``index`` (what ``gpu_device_index`` takes),
    ``name``, ``type`` ("discrete", "integrated", "virtual", "cpu" or "other"), ``software`` (a CPU
    implementation such as lavapipe or SwiftShader, which ``backend="auto"`` never picks),
    ``memory_bytes`` (device-local memory), ``driver`` and ``api_version``. Empty without a Vulkan
    loader or device, or in a build without the GPU backend (:func:`gpu_unavailable_reason` says which).
    """
    return _nndex.gpu_devices()


def gpu_unavailable_reason() -> str:
    """Why ``backend="gpu"`` cannot run here, or "" when it can."""
    return _nndex.gpu_unavailable_reason()


def check_backend(backend: Any, gpu_device_index: Any) -> tuple[str, int]:
    """The backend's name and the device index the native side takes (-1: the best device)."""
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        raise ValueError(f"unsupported backend {backend!r}, expected one of: {', '.join(BACKENDS)}")
    if gpu_device_index is not None and (
        isinstance(gpu_device_index, bool) or not isinstance(gpu_device_index, int) or gpu_device_index < 0
    ):
        raise ValueError(f"gpu_device_index must be None or a non-negative int, got {gpu_device_index!r}")
    return backend.lower(), -1 if gpu_device_index is None else gpu_device_index


def _warn_once(key: str, message: str) -> None:
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def warn_about_placement(native: Any, backend: str) -> None:
    """backend="gpu" that searches on a software device, or on the CPU (approximate and compressed
    indexes): said once per process, so that nobody gets a silent slowdown."""
    if backend != "gpu":
        return
    device = native.gpu_device
    if native.backend == "cpu":
        _warn_once(
            "cpu-only",
            f"backend='gpu' applies to exact float32 indexes; this {native.method} index with storage "
            f"{native.storage!r} searches on the CPU (index.backend == 'cpu')",
        )
    elif device is not None and device["software"]:
        _warn_once(
            f"software:{device['name']}",
            f"backend='gpu' runs on {device['name']!r}, a software Vulkan device (a CPU implementation), which "
            "is much slower than backend='cpu'",
        )


def gpu_info(native: Any) -> dict[str, Any] | None:
    """The device an index searches on: the original library's keys (``index``, ``name``, ``driver``,
    ``driver_info``, ``backend``, ``device_type``) plus ``type``, ``software``, ``memory_bytes`` and
    ``api_version``; None on the CPU."""
    device = native.gpu_device
    if device is None or native.backend != "gpu":
        return None
    info = dict(device)
    info.update(
        driver_info=device["driver"],
        backend="Vulkan",
        device_type=_WGPU_TYPES.get(device["type"], "Other"),
    )
    return info
