"""jmvae-tf: Joint Multimodal VAEs (JMVAE, JMVAE-kl, hierarchical JMVAE) and the
paper's baselines (CVAE, CMMA) in TensorFlow 2 / tf-keras with TFP decoders.

Layout:
  modalities   what a modality is (name, kind, shape)
  gaussian     diagonal-Gaussian helpers (sampling, KL, log-density)
  networks     architectures: encoders and TFP decoder networks
  models       the objectives: one base model, one subclass per objective
  config       typed configs and the model registry
  training     the training loop driver (strategy, checkpoints, summaries)
"""

__version__ = "0.1.0"
