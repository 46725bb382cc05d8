"""Pick the compute device at run time and detect the fastest numerics that keep accuracy."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager

import torch
from torch import nn

from paintseg.errors import PaintsegError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")

# Other numerics are used on a CPU only when at least this much faster than fp32 ...
_MIN_SPEEDUP = 1.1
# ... and, for bf16, when its outputs stay this close to fp32 (relative L2 error).
_MAX_RELATIVE_ERROR = 0.05
# ... and, for inference, when at least this share of the predicted classes agrees.
_MIN_ARGMAX_AGREEMENT = 0.99
_BENCH_SECONDS = 0.3
_BENCH_ROUNDS = 6
_BENCH_BATCH = 2
_INFERENCE_SIZE = 256  # side of the tile timed for inference
_numerics_cache: dict[str, Numerics] = {}
# PAINTSEG_NUMERICS=fp32|bf16 skips the detection (auto, the default, detects).
NUMERICS_ENV = "PAINTSEG_NUMERICS"


@dataclass(frozen=True)
class Numerics:
    """How the network runs: autocast dtype (``None`` = fp32) and memory layout."""

    autocast_dtype: torch.dtype | None = None
    channels_last: bool = False

    def autocast(self, device: torch.device) -> ContextManager:
        """Context manager that runs the forward pass with these numerics on ``device``."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.autocast_dtype)

    def describe(self) -> str:
        """Short text such as ``"bfloat16 autocast, channels_last"``."""
        if self.autocast_dtype is None:
            parts = ["float32"]
        else:
            parts = [f"{str(self.autocast_dtype).removeprefix('torch.')} autocast"]
        if self.channels_last:
            parts.append("channels_last")
        return ", ".join(parts)


FP32 = Numerics()

THREADS_ENV = "PAINTSEG_THREADS"  # PAINTSEG_THREADS=N: that many torch threads, always


def choose_threads() -> int:
    """Torch threads for work on the CPU: the usable cores but one, fewer when other programs
    already keep more than one core busy (the 1-minute load average), at least one.

    Threads that outnumber the free cores wait for one another at every operation: with one
    busy program beside it, training with 2 threads on 2 cores ran 3x slower than with 1.
    ``PAINTSEG_THREADS`` overrides the choice.
    """
    chosen = os.environ.get(THREADS_ENV, "").strip()
    if chosen:
        if not chosen.isdigit() or int(chosen) < 1:
            raise PaintsegError(f"{THREADS_ENV}={chosen!r}: give a whole number of threads.")
        return int(chosen)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        (os.cpu_count() or 1)
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, cores - max(1, busy))


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """The device to compute on.

    Parameters
    ----------
    preference : str or torch.device
        ``"auto"`` (CUDA, else MPS, else CPU), ``"cpu"``, ``"cuda"`` (or ``"cuda:1"``) or
        ``"mps"``.

    Returns
    -------
    torch.device

    Raises
    ------
    PaintsegError
        If the requested device is unknown or not available on this machine.
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    choice = str(preference).strip().lower()
    kind = choice.split(":")[0]
    if kind not in DEVICE_CHOICES:
        choices = ", ".join(DEVICE_CHOICES)
        raise PaintsegError(f"Unknown device {preference!r}; use one of {choices}.")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise PaintsegError("A CUDA GPU was requested but none is available; use device 'cpu'.")
    if kind == "mps" and not _mps_available():
        raise PaintsegError("An Apple MPS GPU was requested but none is available; use 'cpu'.")
    return torch.device(choice)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe_device(device: torch.device) -> str:
    """One line for the GUI, e.g. ``"GPU: NVIDIA H200 (139 GiB)"``, ``"CPU (2 threads, bf16)"``."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "GPU: Apple (MPS)"
    bf16 = ", bf16" if cpu_has_bf16() else ""
    return f"CPU ({torch.get_num_threads()} threads{bf16})"


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bfloat16 instructions (AVX-512-BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    if any(getattr(torch.cpu, name, lambda: False)() for name in checks):
        return True
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = cpuinfo.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_numerics(
    device: torch.device,
    net: nn.Module,
    sample_shape: tuple[int, ...],
    purpose: str = "train",
) -> Numerics:
    """The fastest numerics for ``net`` on ``device`` whose outputs stay close to fp32.

    On CUDA: bf16 (or fp16 where bf16 is missing) autocast and channels_last. On a CPU, a
    short timed run of the real network picks among fp32, fp32 channels_last and, where the
    CPU has native bf16, bf16 autocast + channels_last; a candidate must beat plain fp32
    clearly and, for bf16, match its outputs. For ``purpose="train"`` a forward and backward
    pass of a batch of ``sample_shape`` is timed; for ``"inference"`` a forward pass of a
    256 px tile without gradients (bf16 may pay off there only). MPS uses fp32.

    The verdict is cached in memory and on disk (``numerics.json`` in the user cache folder,
    ``$XDG_CACHE_HOME/paintseg`` or ``~/.cache/paintseg``), keyed by CPU model, torch
    version, threads, architecture, shape and purpose, so it is timed once per machine.
    The environment variable ``PAINTSEG_NUMERICS=fp32|bf16`` overrides the detection.

    Parameters
    ----------
    device : torch.device
    net : torch.nn.Module
        The network; it is not modified (the timing runs on copies).
    sample_shape : tuple of int
        ``(batch, channels, height, width)`` of a typical training batch.
    purpose : str
        ``"train"`` or ``"inference"``.

    Returns
    -------
    Numerics
    """
    forced = os.environ.get(NUMERICS_ENV, "auto").strip().lower()
    if forced not in ("auto", "", "fp32", "bf16"):
        raise PaintsegError(f"{NUMERICS_ENV} must be fp32, bf16 or auto, not {forced!r}.")
    if forced == "fp32":
        return FP32
    if forced == "bf16":
        return Numerics(torch.bfloat16, channels_last=True)
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return Numerics(dtype, channels_last=True)
    if device.type != "cpu":
        return FP32
    if purpose == "inference":
        sample_shape = (1, sample_shape[1], _INFERENCE_SIZE, _INFERENCE_SIZE)
    key = _cache_key(device, net, sample_shape, purpose)
    if key not in _numerics_cache:
        cached = _read_disk_cache().get(key)
        if cached is None:
            cached = _fastest_cpu_numerics(net, device, sample_shape, purpose == "train")
            _write_disk_cache(key, cached)
        _numerics_cache[key] = cached
    return _numerics_cache[key]


def _cache_key(device: torch.device, net: nn.Module, shape: tuple[int, ...], purpose: str) -> str:
    architecture = repr(tuple((name, tuple(p.shape)) for name, p in net.state_dict().items()))
    parts = [str(device), _cpu_model(), platform.machine(), torch.__version__,
             str(torch.get_num_threads()), str(cpu_has_bf16()), type(net).__name__,
             hashlib.sha1(architecture.encode()).hexdigest()[:12], "x".join(map(str, shape)),
             purpose]
    return "|".join(parts)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def numerics_cache_file() -> Path:
    """Where numerics verdicts are cached: ``numerics.json`` in the user cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "paintseg" / "numerics.json"


def _read_disk_cache() -> dict[str, Numerics]:
    try:
        entries = json.loads(numerics_cache_file().read_text(encoding="utf-8"))
        return {key: Numerics(getattr(torch, dtype) if dtype else None, bool(last))
                for key, (dtype, last) in entries.items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}  # missing or unreadable: detect again


def _write_disk_cache(key: str, numerics: Numerics) -> None:
    """Add one verdict, atomically; a cache that cannot be written is skipped."""
    path = numerics_cache_file()
    entries = {k: [str(v.autocast_dtype).removeprefix("torch.") if v.autocast_dtype else None,
                   v.channels_last] for k, v in _read_disk_cache().items()}
    entries[key] = [str(numerics.autocast_dtype).removeprefix("torch.")
                    if numerics.autocast_dtype else None, numerics.channels_last]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(entries, indent=1), encoding="utf-8")
        os.replace(temp, path)
    except OSError:
        pass


def _fastest_cpu_numerics(
    net: nn.Module, device: torch.device, shape: tuple[int, ...], training: bool
) -> Numerics:
    """Time the candidates on copies of ``net``; keep the fastest that is clearly faster."""
    shape = (min(shape[0], _BENCH_BATCH), *shape[1:])
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
    candidates = [FP32, Numerics(None, channels_last=True)]
    bf16 = Numerics(torch.bfloat16, channels_last=True)
    if cpu_has_bf16():
        candidates.append(bf16)
    nets = {numerics: copy.deepcopy(net).to(device) for numerics in candidates}
    for numerics, copy_ in nets.items():
        if numerics.channels_last:
            copy_.to(memory_format=torch.channels_last)
    if bf16 in nets and not _outputs_agree(nets[FP32], nets[bf16], x, bf16, device):
        del nets[bf16]
    best = {numerics: float("inf") for numerics in nets}
    start = time.perf_counter()
    for round_ in range(_BENCH_ROUNDS):
        for numerics, copy_ in nets.items():
            seconds = _time_step(copy_, x, numerics, device, training)
            if round_ > 0:  # the first round primes kernels and caches
                best[numerics] = min(best[numerics], seconds)
        if round_ >= 2 and time.perf_counter() - start > _BENCH_SECONDS:
            break
    fastest = min(best, key=best.get)
    return fastest if best[FP32] > _MIN_SPEEDUP * best[fastest] else FP32


def _outputs_agree(
    reference: nn.Module, other: nn.Module, x: torch.Tensor, numerics: Numerics, device
) -> bool:
    """Relative L2 error within bounds and (almost) the same predicted classes."""
    reference.eval()
    other.eval()
    with torch.no_grad():
        expected = reference(x).float()
        with numerics.autocast(device):
            got = other(x.contiguous(memory_format=torch.channels_last)).float()
    norm = torch.linalg.vector_norm
    error = norm(got - expected) / norm(expected).clamp_min(1e-6)
    agreement = (got.argmax(1) == expected.argmax(1)).float().mean()
    return bool(torch.isfinite(error) and error < _MAX_RELATIVE_ERROR
                and agreement >= _MIN_ARGMAX_AGREEMENT)


def _time_step(net: nn.Module, x: torch.Tensor, numerics: Numerics, device,
               training: bool) -> float:
    """Seconds for a forward and backward pass (training) or a forward pass (inference)."""
    net.train(training)
    if numerics.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    start = time.perf_counter()
    with torch.set_grad_enabled(training), numerics.autocast(device):
        out = net(x)
    if training:
        out.float().square().mean().backward()
        net.zero_grad(set_to_none=True)
    return time.perf_counter() - start
