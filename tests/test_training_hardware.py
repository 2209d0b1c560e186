"""jmvae_tf.training.hardware: /proc/cpuinfo parsing and the per-machine defaults (no timing); the
start-up line built from them is test_training_runtime.py's."""

from __future__ import annotations

from jmvae_tf.training import hardware

SAPPHIRE_RAPIDS = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8
"""

EPYC_AVX2 = """\
processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma
processor\t: 2
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma
processor\t: 3
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx avx2 fma
"""

COOPER_LAKE_BF16_ONLY = """\
processor\t: 0
model name\t: Intel(R) Xeon(R) Gold 6348H
flags\t\t: avx2 fma avx512f avx512_bf16
"""

ARM = """\
processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes sha1 sha2 crc32 bf16
"""


def test_parse_reads_model_flags_and_counts_processors():
  cpu = hardware.parse_cpuinfo(SAPPHIRE_RAPIDS)
  assert cpu.model == "Intel(R) Xeon(R) Platinum 8480+"
  assert cpu.cores == 2
  assert {"avx512f", "amx_bf16", "amx_tile", "avx512_bf16"} <= cpu.flags
  assert cpu.has_bf16 and cpu.has_amx
  assert cpu.describe() == (
    "Intel(R) Xeon(R) Platinum 8480+, 2 cores, avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile"
  )


def test_parse_avx2_only_has_no_bf16():
  cpu = hardware.parse_cpuinfo(EPYC_AVX2)
  assert cpu.cores == 4
  assert not cpu.has_bf16 and not cpu.has_amx
  assert cpu.describe().endswith("4 cores, avx2 fma")


def test_avx512_bf16_without_amx_counts_as_bf16():
  cpu = hardware.parse_cpuinfo(COOPER_LAKE_BF16_ONLY)
  assert cpu.has_bf16 and not cpu.has_amx


def test_cores_given_override_processor_count_and_empty_text_is_unknown():
  assert hardware.parse_cpuinfo(EPYC_AVX2, cores=2).cores == 2
  cpu = hardware.parse_cpuinfo("")
  assert cpu.model == "unknown CPU" and cpu.cores == 1 and not cpu.flags
  assert "none of" in cpu.describe()


def test_arm_features_line_is_read():
  cpu = hardware.parse_cpuinfo(ARM)
  assert "asimd" in cpu.flags and cpu.cores == 1
  assert not cpu.has_bf16  # ARM's bf16 is not one of the x86 flags TF's CPU kernels use here


def test_describe_cpu_of_missing_file_is_unknown(tmp_path):
  cpu = hardware.describe_cpu(str(tmp_path / "no_cpuinfo"))
  assert cpu.model == "unknown CPU" and cpu.cores >= 1


def test_cpu_defaults_half_the_cores_no_xla_no_strategy():
  decided = hardware.decide(hardware.parse_cpuinfo(SAPPHIRE_RAPIDS), num_gpus=0)
  assert not decided.jit_compile and "XLA off (CPU with AVX-512" in decided.summary()
  decided = hardware.decide(hardware.parse_cpuinfo(EPYC_AVX2), num_gpus=0, jit_compile=False)
  assert decided.intra_op_threads == 2 and decided.input_threads == 2
  assert decided.strategy == "default"
  assert len(decided.reasons) == 4 and "half of 4 cores" in decided.summary()
  assert "tf.data on 2 private thread(s), not autotuned" in decided.summary()
  one_core = hardware.decide(hardware.parse_cpuinfo(COOPER_LAKE_BF16_ONLY), num_gpus=0)
  assert one_core.intra_op_threads == 1 and one_core.input_threads == 1


def test_cpu_xla_keeps_tf_default_threads_for_its_ops():
  # A compiled step runs on the intra-op pool alone: one thread would leave it one core.
  decided = hardware.decide(hardware.parse_cpuinfo(EPYC_AVX2), num_gpus=0, jit_compile=True)
  assert decided.intra_op_threads == 0
  assert decided.input_threads == 2  # the input pipeline's pool is unchanged
  assert "a compiled step runs on them alone" in decided.summary()


def test_xla_is_the_default_on_avx2_cpus_without_avx512_only():
  """Measured faster on the AVX2-only EPYC, slower on the AVX-512/AMX Xeon (issue 21); on
  by default it also takes TF's default threads, as when asked for."""
  epyc = hardware.decide(hardware.parse_cpuinfo(EPYC_AVX2), num_gpus=0)
  assert epyc.jit_compile and epyc.intra_op_threads == 0
  assert "XLA on (CPU with AVX2, no AVX-512: measured faster)" in epyc.summary()
  for text in (SAPPHIRE_RAPIDS, COOPER_LAKE_BF16_ONLY, ARM):
    assert not hardware.decide(hardware.parse_cpuinfo(text), num_gpus=0).jit_compile
  assert not hardware.decide(hardware.parse_cpuinfo(EPYC_AVX2), num_gpus=1).jit_compile
  asked_off = hardware.decide(hardware.parse_cpuinfo(EPYC_AVX2), num_gpus=0, jit_compile=False)
  assert not asked_off.jit_compile and "XLA off (asked for)" in asked_off.summary()
  asked_on = hardware.decide(hardware.parse_cpuinfo(SAPPHIRE_RAPIDS), num_gpus=0, jit_compile=True)
  assert asked_on.jit_compile and asked_on.intra_op_threads == 0


def test_gpu_defaults_keep_tf_threads_and_mirror_only_over_several():
  cpu = hardware.parse_cpuinfo(SAPPHIRE_RAPIDS)
  one = hardware.decide(cpu, num_gpus=1)
  assert one.intra_op_threads == 0 and one.strategy == "default"
  assert one.input_threads == 0 and "tf.data autotuned" in one.summary()
  several = hardware.decide(cpu, num_gpus=4)
  assert several.strategy == "mirrored" and "4 GPUs" in several.summary()


def test_bfloat16_warning_only_without_bf16_instructions_or_gpu():
  epyc = hardware.parse_cpuinfo(EPYC_AVX2)
  warning = hardware.precision_warning(epyc, 0, "mixed_bfloat16")
  assert warning and "slower" in warning and "AMD EPYC 7B13" in warning
  assert hardware.precision_warning(epyc, 0, "float32") is None
  assert hardware.precision_warning(epyc, 1, "mixed_bfloat16") is None
  for text in (SAPPHIRE_RAPIDS, COOPER_LAKE_BF16_ONLY):
    assert hardware.precision_warning(hardware.parse_cpuinfo(text), 0, "mixed_bfloat16") is None
