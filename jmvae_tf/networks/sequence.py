"""Networks for the sequence family: text as a modality (a caption, tokens [T, V]).

A caption is T positions, each a one-hot row over a vocabulary of V tokens up to and including
end-of-sentence, all-zero rows after it (padding; `jmvae_tf.core.likelihoods`' tokens kind).
Every architecture (mnist_mlp, celeba_conv, generic, a plug-in's) reads and generates such a
modality with these networks, next to its own for images and vectors
(`architecture.FAMILY_NETWORKS`).

Reading (the encoder's branch): the one-hot rows go through an embedding, a bias-free dense
layer of E = 64 units per position, so a padding row embeds to exactly zeros (nothing is
learnt for "no token here", and after the caption a convolution sees what it sees beyond the
sequence's edge: zeros); then
  conv (the default): two 1-D convolutions (kernel 3, 'same', ReLU, 128 channels), flattened,
    then D512R;
  GRU: a GRU of 256 units over the positions, the padding masked out (a position is padding
    where its row is all zeros), its last state then D512R.

Generating (the decoder): z -> features per position -> a dense layer of V logits per position
(float32 under any mixed-precision policy, as every head), flattened to [B, T*V] for the
likelihood's distribution layer: a categorical per position given z.
  conv: D512R, D(T*E)R reshaped to (T, E), a 1-D convolution (kernel 3, 'same', ReLU, 128);
  GRU: D256R repeated over the T positions, a GRU of 256 units returning every position.

Both decoders are non-autoregressive: given z, the positions are independent and the log-
likelihood is one pass. So the paper's estimators of log p(w|x) (eq 11) and iterative sampling
(eq 6) apply to a caption unchanged, with no sampling loop over tokens.
"""

from __future__ import annotations

import tf_keras as keras

from jmvae_tf.core.likelihoods import FIXED_VARIANCE, HEAD_DTYPE
from jmvae_tf.core.modalities import Modality
from jmvae_tf.networks.architecture import FamilyNetworks
from jmvae_tf.networks.blocks import ChannelGroupsToFlat, Decoder

EMBEDDING = 64  # E: the embedding's width per position
CHANNELS = 128  # the 1-D convolutions'
KERNEL = 3
FEATURES = 512  # a branch's output, as the paper's D512R
GRU_UNITS = 256


def embedding(name: str = "embedding") -> keras.layers.Layer:
  """One-hot rows [B, T, V] -> [B, T, E]: a dense layer without bias, so that an all-zero
  (padding) row embeds to zeros."""
  return keras.layers.Dense(EMBEDDING, use_bias=False, name=name)


def positions_and_vocabulary(modality: Modality):
  """(T, V) of a sequence modality (its family checked that shape when it was made)."""
  positions, vocabulary = modality.shape
  return int(positions), int(vocabulary)


def sequence_head(modality: Modality, variance: float = FIXED_VARIANCE) -> keras.Sequential:
  """Features per position [B, T, F] -> the likelihood's parameters, by a dense layer per
  position -> flat [B, groups*T*V] (group by group: e.g. loc then scale) -> its distribution.

  The tokens kind has one parameter (a logit) per (position, token); a plug-in kind with
  `conv_groups` parameters per element works too. Float32 under any policy."""
  length, vocabulary = positions_and_vocabulary(modality)
  likelihood = modality.likelihood
  groups = likelihood.conv_groups or 1
  if likelihood.params_size(modality.shape) != groups * length * vocabulary:
    raise ValueError(
      f"modality {modality.name!r} ({modality.kind}): the sequence networks give "
      f"{groups} parameter(s) per element of {modality.shape}, its likelihood takes "
      f"{likelihood.params_size(modality.shape)}"
    )
  return keras.Sequential(
    [
      keras.layers.Dense(groups * vocabulary, name="params", dtype=HEAD_DTYPE),
      ChannelGroupsToFlat(groups, name="flat_params", dtype=HEAD_DTYPE),
      likelihood.distribution_layer(modality.shape, variance),
    ],
    name="head",
  )


# --- 1-D convolutions (the default) ------------------------------------------------------------


def sequence_branch(modality: Modality, name: str) -> keras.layers.Layer:
  """[B, T, V] -> embedding -> 2 x Conv1D(128, 3, same, ReLU) -> flatten -> D512R: [B, 512]."""
  positions_and_vocabulary(modality)
  return keras.Sequential(
    [
      embedding(),
      keras.layers.Conv1D(CHANNELS, KERNEL, padding="same", activation="relu", name="conv_0"),
      keras.layers.Conv1D(CHANNELS, KERNEL, padding="same", activation="relu", name="conv_1"),
      keras.layers.Flatten(name="flatten"),
      keras.layers.Dense(FEATURES, activation="relu", name="dense"),
    ],
    name=name,
  )


def sequence_decoder(modality: Modality, name: str, variance: float = FIXED_VARIANCE) -> Decoder:
  """p(w|z): D512R -> D(T*E)R -> (T, E) -> Conv1D(128, 3, same, ReLU) -> V logits per
  position -> the likelihood's distribution (batch shape [B], event shape [T, V])."""
  length, _ = positions_and_vocabulary(modality)
  body = keras.Sequential(
    [
      keras.layers.Dense(FEATURES, activation="relu", name="dense_0"),
      keras.layers.Dense(length * EMBEDDING, activation="relu", name="dense_1"),
      keras.layers.Reshape((length, EMBEDDING), name="positions"),
      keras.layers.Conv1D(CHANNELS, KERNEL, padding="same", activation="relu", name="conv"),
    ],
    name=f"{name}_body",
  )
  return Decoder(body, modality, head=sequence_head(modality, variance), name=name)


# --- a GRU over the positions ------------------------------------------------------------------


def gru(return_sequences: bool = False) -> keras.layers.Layer:
  """A GRU of GRU_UNITS over the positions: the last state [B, units], or every position's
  [B, T, units]. A plain RNN of GRU cells, not `keras.layers.GRU`: under XLA (jit_compile,
  the default on some CPUs) the latter made every input of the step a compile-time constant,
  so the step compiled again at every call (~10 s a step, measured); the plain RNN compiles
  once and runs as fast without XLA on CPU (it forgoes the GRU layer's cuDNN kernel on GPU)."""
  return keras.layers.RNN(
    keras.layers.GRUCell(GRU_UNITS, name="gru_cell"), return_sequences=return_sequences, name="gru"
  )


def gru_branch(modality: Modality, name: str) -> keras.layers.Layer:
  """[B, T, V] -> embedding -> GRU(256) over the non-padding positions -> D512R: [B, 512]."""
  positions_and_vocabulary(modality)
  return keras.Sequential(
    [
      # Masks a position whose row is all zeros (padding); the embedding passes the mask on
      # and the GRU skips those steps, so its last state is that of end-of-sentence.
      keras.layers.Masking(0.0, name="padding"),
      embedding(),
      gru(),
      keras.layers.Dense(FEATURES, activation="relu", name="dense"),
    ],
    name=name,
  )


def gru_decoder(modality: Modality, name: str, variance: float = FIXED_VARIANCE) -> Decoder:
  """p(w|z): D256R repeated over the T positions -> GRU(256) returning every position -> V
  logits per position -> the likelihood's distribution. The GRU reads z at every step, never
  a token: non-autoregressive, as the conv decoder."""
  length, _ = positions_and_vocabulary(modality)
  body = keras.Sequential(
    [
      keras.layers.Dense(GRU_UNITS, activation="relu", name="dense"),
      keras.layers.RepeatVector(length, name="positions"),
      gru(return_sequences=True),
    ],
    name=f"{name}_body",
  )
  return Decoder(body, modality, head=sequence_head(modality, variance), name=name)


CONV_NETWORKS = FamilyNetworks(sequence_branch, sequence_decoder)
GRU_NETWORKS = FamilyNetworks(gru_branch, gru_decoder)
# The sequence family's networks in every architecture without its own: the convolutions,
# until measurements (benchmarks/sequence_networks.py, captions learnt) say the GRU is better.
SEQUENCE_NETWORKS = CONV_NETWORKS
