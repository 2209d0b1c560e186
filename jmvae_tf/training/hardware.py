"""What this process can run on, and the speed defaults chosen from it.

`describe_cpu` reads /proc/cpuinfo (model, the instruction-set flags that matter to
TensorFlow's CPU kernels, the cores this process may use) without importing
TensorFlow; `decide` turns that and the number of GPUs into the defaults of
`runners.train` for the settings left on "auto": threads, XLA and the strategy. Each
rule is one measurement's conclusion (benchmarks/README.md, "Per-machine defaults"):

* threads: with no GPU, intra-op threads = half the usable cores (at least 1). The
  JMVAE family's networks are independent branches; at batch 100 running them side by
  side on the inter-op pool beat splitting each small matmul over every core (measured
  on 2 cores: 1 thread against TF's default of 2; larger machines are not measured).
  Not under XLA: a compiled step runs on the intra-op pool alone (the inter-op pool,
  which gives the uncompiled step its other cores, has nothing to run), so with
  --jit_compile=true the auto setting keeps TF's default (all cores). On the 2-core
  Xeon the runner's XLA step ran 1.47x faster so (5,529 against 3,752 examples/s).
* XLA (`jit_compile`, when --jit_compile is not given): on for an x86 CPU with AVX2 and
  without AVX-512 (no GPU, one device), off elsewhere. On the 2-core AMD EPYC with AVX2
  only (issue 21), `runners.train` with `--jit_compile=true` trained MNIST JMVAE-kl at
  4,705 examples/s against 3,987 without (interleaved rounds), and the CelebA networks'
  bare step at 51-52 against 40-41; an earlier EPYC sitting that found XLA slower ran
  it on one intra-op thread, before the thread rule above. On the AVX-512/AMX Xeon XLA
  is slower: the bare MNIST step at 0.85-0.90 of the uncompiled one, and the CelebA
  networks' step did not finish 8 steps in 400 s (benchmarks/celeba_step.py). CPUs of
  neither kind (ARM, no AVX2) are not measured: off. A run on several replicas (mirrored,
  multi_worker) keeps it off (measured on one device only). Not measured on a GPU:
  `--jit_compile=true` to try there.
* precision: float32 everywhere (the paper's numbers are float32). mixed_bfloat16 is an
  option: faster on the Xeon with AMX, slower on the AVX2-only EPYC (bfloat16 emulated);
  asked for on a CPU without bfloat16 instructions (AMX or AVX512_BF16; the latter alone
  not measured) and without a GPU, `precision_warning` says it will be slower.
* strategy: MirroredStrategy only over several GPUs; no strategy on one device.
* input threads: with no GPU, tf.data runs the input pipeline on a private pool of half
  the usable cores (at least 1) without autotuning. On 2 cores its shared, autotuned pool
  slowed JMVAE-kl's training by about 6% (4 interleaved rounds through the runner); a
  later 2-round sitting did not repeat it, so the gain is within the spread of single
  rounds. With a GPU: tf.data's own autotuned pool (a fast step needs the input to keep
  up; not measured here).
"""

from __future__ import annotations

import dataclasses
import os
from typing import FrozenSet, Optional, Tuple

# The /proc/cpuinfo flags that decide which of TensorFlow's CPU kernels are fast.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclasses.dataclass(frozen=True)
class CpuInfo:
  """The CPU as this process sees it."""

  model: str
  flags: FrozenSet[str]
  cores: int  # logical CPUs this process may run on

  @property
  def has_bf16(self) -> bool:
    """bfloat16 arithmetic in hardware (AMX tiles or AVX512_BF16 dot products)."""
    return any(f in self.flags for f in BF16_FLAGS)

  @property
  def has_amx(self) -> bool:
    return "amx_bf16" in self.flags and "amx_tile" in self.flags

  def describe(self) -> str:
    """One line: model, cores and the speed-relevant flags present."""
    present = [f for f in SPEED_FLAGS if f in self.flags] or ["none of " + "/".join(SPEED_FLAGS)]
    return f"{self.model}, {self.cores} cores, {' '.join(present)}"


def parse_cpuinfo(text: str, cores: Optional[int] = None) -> CpuInfo:
  """CpuInfo from the text of /proc/cpuinfo (x86 "model name"/"flags", or ARM
  "Features"); `cores` defaults to the number of processor entries."""
  model, flags, processors = "", frozenset(), 0
  for line in text.splitlines():
    key, sep, value = line.partition(":")
    if not sep:
      continue
    key, value = key.strip().lower(), value.strip()
    if key == "processor":
      processors += 1
    elif key in ("model name", "cpu model", "hardware") and not model:
      model = value
    elif key in ("flags", "features") and not flags:
      flags = frozenset(value.lower().split())
  return CpuInfo(model or "unknown CPU", flags, cores or processors or 1)


def usable_cores() -> int:
  """The logical CPUs this process may run on (its affinity mask, not the machine's)."""
  try:
    return len(os.sched_getaffinity(0))
  except (AttributeError, OSError):
    return os.cpu_count() or 1


def describe_cpu(path: str = "/proc/cpuinfo") -> CpuInfo:
  """This machine's CpuInfo; an "unknown CPU" without flags where the file is unreadable."""
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      text = f.read()
  except OSError:
    text = ""
  return parse_cpuinfo(text, usable_cores())


@dataclasses.dataclass(frozen=True)
class Defaults:
  """The speed settings for this machine, each with the one-line reason printed at start-up."""

  intra_op_threads: int  # 0: TensorFlow's default
  input_threads: int  # 0: tf.data's own autotuned pool; N: a private pool of N, no autotuning
  jit_compile: bool
  strategy: str
  reasons: Tuple[str, ...]

  def summary(self) -> str:
    return "; ".join(self.reasons)


def xla_by_default(cpu: CpuInfo, num_gpus: int) -> Tuple[bool, str]:
  """(XLA on?, why) for a run that leaves --jit_compile unset (see the module docstring)."""
  if num_gpus:
    return False, "XLA off (not measured on GPU)"
  if "avx2" in cpu.flags and "avx512f" not in cpu.flags:
    return True, "XLA on (CPU with AVX2, no AVX-512: measured faster)"
  if "avx512f" in cpu.flags:
    return False, "XLA off (CPU with AVX-512: measured slower)"
  return False, "XLA off (not measured on this CPU kind)"


def decide(cpu: CpuInfo, num_gpus: int, jit_compile: Optional[bool] = None) -> Defaults:
  """The per-machine defaults (see the module docstring for the measurements behind them);
  `jit_compile`: whether XLA was asked for (None: the machine's choice), which changes the
  best intra-op threads."""
  jit, why_jit = xla_by_default(cpu, num_gpus)
  if jit_compile is not None:
    jit, why_jit = bool(jit_compile), f"XLA {'on' if jit_compile else 'off'} (asked for)"
  if num_gpus:
    threads, why_threads = 0, f"{num_gpus} GPU(s): TF's default CPU threads"
    input_threads, why_input = 0, "tf.data autotuned"
  else:
    half = max(1, cpu.cores // 2)
    if jit:
      threads = 0
      why_threads = (
        "XLA on the CPU: TF's default intra-op threads (a compiled step runs on them alone)"
      )
    else:
      threads = half
      why_threads = f"no GPU: intra-op threads {threads} (half of {cpu.cores} cores)"
    input_threads = half
    why_input = f"tf.data on {input_threads} private thread(s), not autotuned"
  strategy = "mirrored" if num_gpus > 1 else "default"
  why_strategy = (
    f"MirroredStrategy over {num_gpus} GPUs" if num_gpus > 1 else "no distribution strategy"
  )
  return Defaults(
    threads, input_threads, jit, strategy, (why_threads, why_input, why_jit, why_strategy)
  )


def precision_warning(cpu: CpuInfo, num_gpus: int, precision: str) -> Optional[str]:
  """A warning when `precision` will be slower here than float32, else None."""
  if precision != "mixed_bfloat16" or num_gpus or cpu.has_bf16:
    return None
  return (
    f"--precision=mixed_bfloat16 on {cpu.model} without bfloat16 instructions "
    f"({' or '.join(BF16_FLAGS)}): it will train slower than float32 (bfloat16 is emulated)"
  )


def settings_line(
  cpu: CpuInfo,
  num_gpus: int,
  intra_op_threads: int,
  threads_auto: bool,
  input_threads: int,
  input_auto: bool,
  jit_compile: bool,
  strategy: str,
  strategy_auto: bool,
  precision: str,
  jit_auto: bool = False,
) -> str:
  """The one start-up line of runners.train: the machine, then each speed setting in use,
  marked "(auto)" where the machine chose it."""
  auto = " (auto)"
  threads = f"intra-op threads {intra_op_threads or 'TF default'}" + (auto if threads_auto else "")
  strategies = {"default": "no distribution strategy", "mirrored": "MirroredStrategy"}
  inputs = (
    f"tf.data threads {input_threads}, not autotuned" if input_threads else "tf.data autotuned"
  ) + (auto if input_auto else "")
  parts = [
    cpu.describe(),
    f"{num_gpus} GPU(s)" if num_gpus else "no GPU",
    threads,
    inputs,
    ("XLA on" if jit_compile else "XLA off") + (auto if jit_auto else ""),
    strategies.get(strategy, f"{strategy} strategy") + (auto if strategy_auto else ""),
    precision,
  ]
  return "speed settings: " + "; ".join(parts)
