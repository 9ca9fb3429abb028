"""Device and mixed-precision selection (CUDA when present, CPU otherwise).

``amp`` (config key) -> autocast dtype, by ``resolve_amp``:

| amp | CUDA | CPU with native bf16 (AMX or AVX512-BF16) | other CPU |
|---|---|---|---|
| auto (default), off | fp32 | fp32 | fp32 |
| bf16 | bf16 (fp16 if the GPU has no bf16) | bf16 | bf16 (emulated: slower than fp32) |
| fp16 | fp16 + GradScaler | fp32 (fp16 autocast is CUDA only here) | fp32 |

``auto`` is fp32 on every device: DNA-Det trained under bf16 autocast scored 8 points more
cross-dataset accuracy than in fp32 on the toy zoo, beyond the seed spread
(docs/results/seeds_precision.md), so the default is the precision whose results do not depend
on the machine. bf16 is asked for by name (``amp=bf16``: 1.5x faster steps on an H200, 1.9x
with one thread on a Xeon with AMX; docs/speed.md). Bit-identical runs and resumes are promised in fp32 only. Under
autocast, weights, optimiser state and losses stay fp32; results differ from fp32 by bf16
rounding.
"""
import contextlib
from dataclasses import dataclass
from typing import Optional

import torch

NATIVE_BF16_FEATURES = ("amx_bf16", "avx512_bf16")   # x86 instruction sets that compute in bf16


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cpu``, ``cuda``, ``cuda:N`` are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def cpu_native_bf16() -> list:
    """The instruction sets of this CPU that execute bf16 natively (``NATIVE_BF16_FEATURES``), [] if none.

    Uses ``torch.cpu.get_capabilities()`` (cpuinfo; torch >= 2.9) or the older private
    ``torch.cpu._is_*_supported`` queries; bf16 convolutions also need oneDNN (mkldnn).
    """
    if not torch.backends.mkldnn.is_available():
        return []
    if hasattr(torch.cpu, "get_capabilities"):
        capabilities = torch.cpu.get_capabilities()
        return [name for name in NATIVE_BF16_FEATURES if capabilities.get(name, False)]
    found = []
    if getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)():
        found.append("amx_bf16")
    if getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)():
        found.append("avx512_bf16")
    return found


@dataclass(frozen=True)
class AmpChoice:
    """The precision a run uses and why: ``dtype`` None means fp32 (no autocast)."""
    dtype: Optional[torch.dtype]
    reason: str

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def describe(self) -> str:
        return f"precision {self.name}: {self.reason}"


def resolve_amp(amp: str, device: torch.device) -> AmpChoice:
    """The autocast dtype for config ``amp`` on ``device`` (table in the module docstring)."""
    if amp not in ("auto", "off", "bf16", "fp16"):
        raise ValueError(f"amp={amp!r}: use auto, off, bf16 or fp16")
    if amp == "off":
        return AmpChoice(None, "amp=off")
    if amp == "auto":
        return AmpChoice(None, "amp=auto is fp32 on every device (bf16 moves the toy results beyond their seed "
                               "spread; amp=bf16 asks for it)")
    if device.type == "cuda":
        if amp == "fp16":
            return AmpChoice(torch.float16, "amp=fp16 on CUDA, with a GradScaler")
        if torch.cuda.is_bf16_supported():
            return AmpChoice(torch.bfloat16, "amp=bf16 on CUDA")
        return AmpChoice(torch.float16, "amp=bf16 on CUDA without bf16 support: fp16 with a GradScaler")
    if device.type != "cpu":
        return AmpChoice(None, f"amp={amp}: autocast is used on CUDA and CPU only, not {device.type}")
    if amp == "fp16":
        return AmpChoice(None, "amp=fp16 ignored on CPU (fp16 autocast is CUDA only here); use bf16")
    native = cpu_native_bf16()
    if native:
        return AmpChoice(torch.bfloat16, f"amp=bf16 on a CPU with native bf16 ({', '.join(native)})")
    return AmpChoice(torch.bfloat16, "amp=bf16 on a CPU without native bf16: emulated, slower than fp32")


def amp_dtype(amp: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for config ``amp`` on ``device``, or None (full precision)."""
    return resolve_amp(amp, device).dtype


def autocast(device: torch.device, dtype):
    """Autocast context for ``dtype``, or a no-op when dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
