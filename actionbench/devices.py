"""Checking ``--device`` before anything is loaded: a missing GPU is one clear line, not a driver traceback
after seconds of start-up."""
from __future__ import annotations

from .errors import ActionBenchError


def found_devices() -> str:
    """What this machine offers torch, in words (for error messages)."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append(f"cuda x{torch.cuda.device_count()}")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    build = "with CUDA " + torch.version.cuda if torch.version.cuda else "without CUDA"
    return f"{', '.join(found)} (torch {torch.__version__}, built {build})"


def check_device(device: str) -> str:
    """Return ``device`` if torch can use it here; otherwise raise one line naming what was found."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ActionBenchError(
            f"--device {device!r} is not a device name; use cpu, cuda, cuda:N or mps (found here: {found_devices()})"
        ) from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            have = "no CUDA device" if count == 0 else f"only {count} CUDA device(s) (cuda:0..cuda:{count - 1})"
            raise ActionBenchError(
                f"--device {device}: this machine has {have}; found: {found_devices()}. Use --device cpu, or run "
                "on a machine with an NVIDIA GPU and a driver"
            )
    elif parsed.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ActionBenchError(
                f"--device {device}: no Apple MPS device here; found: {found_devices()}. Use --device cpu"
            )
    elif parsed.type != "cpu":
        raise ActionBenchError(f"--device {device}: not supported; use cpu, cuda, cuda:N or mps "
                               f"(found here: {found_devices()})")
    return device
