"""The machine a run was made on, for its provenance.

Training on a CPU rounds differently with other kernels: the same spec, seeds and package
versions gave mini ADI 17.12 % total on one x86 machine and 14.13 % on an AMD EPYC with AVX-512.
So a results file records what decides the rounding: the CPU model and the
instruction sets torch's kernels dispatch on (AVX2, AVX-512, AMX), torch's build (version, CUDA,
BLAS / MKL / oneDNN) and its thread counts, and the GPU where there is one. ``summary`` is the
short line the leaderboard prints beside a row.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

# CPU flags that change which float kernels run (and so the rounding): vector widths, FMA, the
# bf16 / fp16 / int8 dot-product and matrix extensions.
ROUNDING_FLAGS = ("sse4_2", "avx", "fma", "f16c", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                  "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16",
                  "asimd", "sve", "sve2")
BUILD_KEYS = ("CUDNN_VERSION", "BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN",
              "USE_OPENMP", "USE_CUDA", "USE_ROCM")


def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """``{"model", "flags"}``: the CPU model and the ``ROUNDING_FLAGS`` it has, from ``/proc/cpuinfo``
    (Linux), else ``lscpu``, else ``platform.processor()``."""
    text = ""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        try:
            text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
    model = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if model is None and key in ("model name", "hardware", "cpu model"):
            model = value.strip() or None
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return {"model": model or platform.processor() or platform.machine() or None,
            "flags": [flag for flag in ROUNDING_FLAGS if flag in flags]}


def torch_build(config_text: str | None = None) -> dict:
    """torch's version and build from ``torch.__config__.show()``: CUDA, BLAS / LAPACK, MKL, oneDNN,
    the CPU capability its kernels use, and its thread counts."""
    import torch

    text = torch.__config__.show() if config_text is None else config_text
    settings = dict(re.findall(r"\b([A-Z_]+)=([^,\n]*)", text))
    build = {key.lower(): settings[key].strip() for key in BUILD_KEYS if key in settings}
    mkl = re.search(r"Math Kernel Library Version ([^\n]+?)(?: for |\n|$)", text)
    onednn = re.search(r"MKL-DNN (v[\w.]+)", text)
    capability = re.search(r"CPU capability usage: (\w+)", text)
    build.update({
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "mkl": mkl.group(1).strip() if mkl else None,
        "onednn": onednn.group(1) if onednn else None,
        "cpu_capability": capability.group(1) if capability else None,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
    })
    return build


def gpu_name() -> str | None:
    """The first CUDA device's name, or None on a machine without one."""
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # a broken driver must not cost the results file
        return None


def machine_description() -> dict:
    """The machine, for ``provenance.machine``: CPU model and rounding-relevant flags, core count,
    torch build and threads, GPU name, OS, and a one-line ``summary``."""
    cpu = cpu_info()
    torch_info = torch_build()
    gpu = gpu_name()
    description = {
        "cpu_model": cpu["model"],
        "cpu_flags": cpu["flags"],
        "cpu_count": os.cpu_count(),
        "architecture": platform.machine(),
        "torch": torch_info,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_math": {key: os.environ.get(key) for key in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")},
        "gpu": gpu,
    }
    description["summary"] = machine_summary(description)
    return description


def machine_summary(machine: dict) -> str:
    """One line: ``AMD EPYC (avx2, no avx512f); torch 2.14.1 mkl, 1 thread`` (+ ``; GPU name``)."""
    flags = machine.get("cpu_flags") or []
    widest = [f for f in ("amx_tile", "avx512f", "avx2", "sve2", "sve", "asimd") if f in flags][:1]
    vector = widest[0] if widest else "no avx2"
    if widest == ["avx2"]:  # the line that split the mini ADI row between two machines
        vector += ", no avx512f"
    torch_info = machine.get("torch") or {}
    threads = torch_info.get("threads")
    text = (f"{machine.get('cpu_model') or machine.get('architecture') or 'unknown CPU'} ({vector}); torch "
            f"{torch_info.get('version', '?')} {torch_info.get('blas_info') or ''}".rstrip()
            + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""))
    if machine.get("gpu"):
        text += f"; {machine['gpu']}"
    return text
