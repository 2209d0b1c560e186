"""Names of the objectives, importable without TensorFlow (the runners' flag
definitions use them, so a bad flag is reported before TensorFlow starts)."""

MODEL_NAMES = ("jmvae", "jmvae_kl", "hierarchical_jmvae", "cvae", "cmma", "jmvae_kl_gan")
