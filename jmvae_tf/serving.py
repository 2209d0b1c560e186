"""SavedModel export for TF Serving: named signatures over plain tensors.

A trained model becomes a `tf.Module` whose methods are `tf.function`s with fixed
input signatures; `export` writes it in TF Serving's layout BASE/NAME/VERSION/.
The SavedModel holds only the graph and the variables (no Python objects of this
project), so anything with TensorFlow alone (TF Serving, `tf.saved_model.load`,
`saved_model_cli`) can load it.

How "any available modalities" is expressed: one signature per set of inputs,
because a SavedModel signature has a fixed set of inputs. With the paper's MNIST
pair (x = image, the first modality of the config; w = label, the second):

  encode              (image, label)                -> q(z|x,w) params (hierarchical: every layer)
  encode_image        (image[, seed, num_steps])    -> q(z|x): JMVAE-kl's unimodal encoder;
                                                       JMVAE / hierarchical: the label is imputed by
                                                       iterative sampling, then q(z|x,w_imputed)
  encode_label        (label[, seed, num_steps])    -> likewise q(z|w)
  generate_x_from_w   (label, seed[, num_steps])    -> image probabilities and a sample
  generate_w_from_x   (image, seed[, num_steps])    -> label probabilities and a sample
  reconstruct         (image, label, seed)          -> z ~ q(z|x,w), then every modality's p(.|z)
  sample              (num_samples, seed)           -> z from the prior, then every modality's p(.|z)
  serving_default     = generate_x_from_w           (digits from labels)

`num_steps` (iterative-sampling rounds) is an input only of JMVAE and hierarchical
JMVAE. CVAE/CMMA (one direction, target | condition) export `encode` (q(z|t,c)),
`reconstruct`, their one `generate_<target>_from_<condition>` (the default) and, for
CMMA, `encode_<condition>` (its conditional prior p(z|c)); they have no `sample`
(their prior needs the condition, which is what generate does).

Seeds are int64 [2] stateless seeds: the same inputs and seed give the same outputs.
Outputs are named after the modality: `<name>_probs` (Bernoulli / categorical) or
`<name>_mean` and `<name>_stddev` (Gaussian), and `<name>_sample`; latents `z`,
`mean`, `variance`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from jmvae_tf import gaussian
from jmvae_tf.evaluation import iterative
from jmvae_tf.modalities import BERNOULLI, CATEGORICAL, Modality
from jmvae_tf.models import CMMA, JMVAE, JMVAEKL, ConditionalModel, HierarchicalJMVAE, MultimodalVAE
from jmvae_tf.models.base import split_seed

Batch = Dict[str, tf.Tensor]
SEED_SPEC = tf.TensorSpec([2], tf.int64, name="seed")
NUM_STEPS_SPEC = tf.TensorSpec([], tf.int32, name="num_steps")
NUM_SAMPLES_SPEC = tf.TensorSpec([], tf.int32, name="num_samples")
DEFAULT_SIGNATURE = "serving_default"


class ExportError(ValueError):
  """The export cannot be written (e.g. the version already exists)."""


# --- plain functions over the model's public methods -------------------------------------

def distribution_outputs(dist, modality: Modality, seed: tf.Tensor) -> Dict[str, tf.Tensor]:
  """The parameters of p(modality|z) and one stateless sample, as float32 tensors.

  Samples are drawn here with tf.random.stateless_* (int64 seeds) rather than with
  TFP's `sample`, whose stateless seeds must be int32.
  """
  if modality.kind == BERNOULLI:
    probs = dist.mean()
    sample = tf.cast(tf.random.stateless_uniform(tf.shape(probs), seed, dtype=probs.dtype) < probs, tf.float32)
    return {"probs": probs, "sample": sample}
  if modality.kind == CATEGORICAL:
    logits = dist.logits_parameter()
    classes = tf.random.stateless_categorical(logits, 1, seed)[:, 0]
    return {"probs": tf.nn.softmax(logits), "sample": tf.one_hot(classes, modality.shape[0], dtype=tf.float32)}
  mean, stddev = dist.mean(), dist.stddev()  # GAUSSIAN, GAUSSIAN_FIXED
  return {"mean": mean, "stddev": stddev,
          "sample": mean + stddev * tf.random.stateless_normal(tf.shape(mean), seed, dtype=mean.dtype)}


def empty_outputs(modality: Modality, batch_size: tf.Tensor) -> Dict[str, tf.Tensor]:
  """Zeros shaped like `distribution_outputs` (the state before any sampling round)."""
  zeros = tf.zeros(tf.concat([[batch_size], modality.shape], 0))
  if modality.kind in (BERNOULLI, CATEGORICAL):
    return {"probs": zeros, "sample": zeros}
  return {"mean": zeros, "stddev": zeros, "sample": zeros}


def iterative_sampling(model: MultimodalVAE, given: Batch, missing: Modality, num_steps: tf.Tensor,
                       seed: tf.Tensor) -> Tuple[Batch, Dict[str, tf.Tensor], tf.Tensor]:
  """Fills a missing modality by iterative sampling (paper eq 6), the evaluation's
  `iterative_impute`, and adds what a client wants back from the last round.

  Returns (the batch with the missing modality imputed, `distribution_outputs` of
  the last round's p(missing|z), whose "sample" is the imputed value, the last z);
  with num_steps = 0 the modality stays 0 and the outputs are zeros.
  """
  num_steps = tf.convert_to_tensor(num_steps, tf.int32)
  batch_size = tf.shape(next(iter(given.values())))[0]
  imputed, z = iterative.iterative_impute_with_latent(model, given, missing.name, num_steps, seed)
  last_round = distribution_outputs(model.decoders[missing.name](z, training=False), missing, seed)
  last_round["sample"] = imputed[missing.name]
  outputs = tf.cond(num_steps > 0, lambda: last_round, lambda: empty_outputs(missing, batch_size))
  return imputed, outputs, z


def prefixed(name: str, outputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
  return {f"{name}_{key}": value for key, value in outputs.items()}


def decode_all(model: MultimodalVAE, z: tf.Tensor, seed: tf.Tensor) -> Dict[str, tf.Tensor]:
  """Every modality's p(.|z) parameters and sample (joint models)."""
  seeds = split_seed(seed, len(model.modality_specs))
  outputs = {"z": z}
  for modality, s in zip(model.modality_specs, seeds):
    outputs.update(prefixed(modality.name, distribution_outputs(
        model.decoders[modality.name](z, training=False), modality, s)))
  return outputs


def check_same_batch(*tensors: tf.Tensor) -> Tuple[tf.Tensor, ...]:
  """The inputs, passed through an InvalidArgumentError that says what is wrong when
  their batch sizes differ (instead of a shape error inside the encoder's concatenation).
  Callers must use the returned tensors, which wait for the check.
  """
  first = tensors[0]
  checks = [tf.debugging.assert_equal(tf.shape(first)[0], tf.shape(t)[0],
                                      message="every input must have the same batch size (dimension 0)")
            for t in tensors[1:]]
  return tuple(checked(t, *checks) for t in tensors)


def checked(tensor: tf.Tensor, *checks) -> tf.Tensor:
  """`tensor`, made to wait for `checks` (assert ops): a bare assert in a graph is not
  ordered before the stateless ops that read the same input, whose own, less clear
  error could come first."""
  with tf.control_dependencies(checks):
    return tf.identity(tensor)


# --- the exported module ---------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SignatureSpec:
  """One exported method: its Python body, input signature and a line of documentation."""

  name: str
  fn: Callable
  input_signature: List[tf.TensorSpec]
  doc: str


def modality_spec(modality: Modality) -> tf.TensorSpec:
  return tf.TensorSpec((None,) + modality.shape, tf.float32, name=modality.name)


def one_modality_signatures(model: JMVAE, given: Modality, missing: Modality, direction: str,
                            iterative: bool) -> List[SignatureSpec]:
  """encode_<given> and generate_<direction>: from `given` alone (a function, so the
  closures bind this pair; default arguments would become tf.function arguments)."""
  if iterative:
    def encode_one(value, seed, num_steps):
      num_steps = checked(num_steps, tf.debugging.assert_non_negative(num_steps, message="num_steps must be >= 0"))
      batch, _, _ = iterative_sampling(model, {given.name: value}, missing, num_steps, seed)
      mean, variance = model.encode(batch, training=False)
      return {"mean": mean, "variance": variance}

    def generate(value, seed, num_steps):
      num_steps = checked(num_steps, tf.debugging.assert_positive(num_steps, message="num_steps must be >= 1"))
      _, outputs, z = iterative_sampling(model, {given.name: value}, missing, num_steps, seed)
      return dict(prefixed(missing.name, outputs), z=z)

    extra = [SEED_SPEC, NUM_STEPS_SPEC]
    how = f"{missing.name} imputed by num_steps rounds of iterative sampling"
    encode_doc = f"q(z|{given.name}, {missing.name}): {how}"
  else:
    def encode_one(value):
      mean, variance = model.encode_subset({given.name: value}, [given.name], training=False)
      return {"mean": mean, "variance": variance}

    def generate(value, seed):
      z_seed, x_seed = split_seed(seed, 2)
      mean, variance = model.encode_subset({given.name: value}, [given.name], training=False)
      z = gaussian.sample(mean, variance, z_seed)
      outputs = distribution_outputs(model.decoders[missing.name](z, training=False), missing, x_seed)
      return dict(prefixed(missing.name, outputs), z=z)

    extra = [SEED_SPEC]
    how = f"z ~ q(z|{given.name}) (unimodal encoder)"
    encode_doc = f"q(z|{given.name}): the unimodal encoder"
  encode_inputs = [modality_spec(given)] + (extra if iterative else [])
  return [SignatureSpec(f"encode_{given.name}", encode_one, encode_inputs, encode_doc),
          SignatureSpec(f"generate_{direction}", generate, [modality_spec(given)] + extra,
                        f"p({missing.name}|z), {how}: parameters and a sample")]


def joint_model_signatures(model: JMVAE, x: Modality, w: Modality) -> List[SignatureSpec]:
  """Signatures of JMVAE, JMVAE-kl and hierarchical JMVAE (two modalities x, w)."""
  iterative = not isinstance(model, JMVAEKL)
  specs = []

  def encode(x_value, w_value):
    x_value, w_value = check_same_batch(x_value, w_value)
    batch = {x.name: x_value, w.name: w_value}
    if isinstance(model, HierarchicalJMVAE):
      layers = model.encode_all(batch, training=False)
      outputs = {"mean": layers[0][0], "variance": layers[0][1]}
      for l, (mean, variance) in enumerate(layers[1:], start=2):
        outputs[f"mean_z{l}"], outputs[f"variance_z{l}"] = mean, variance
      return outputs
    mean, variance = model.encode(batch, training=False)
    return {"mean": mean, "variance": variance}

  specs.append(SignatureSpec("encode", encode, [modality_spec(x), modality_spec(w)],
                             "q(z|x,w): mean and variance" +
                             (" of every layer" if isinstance(model, HierarchicalJMVAE) else "")))

  for given, missing in ((x, w), (w, x)):
    direction = "x_from_w" if given is w else "w_from_x"
    specs.extend(one_modality_signatures(model, given, missing, direction, iterative))

  def reconstruct(x_value, w_value, seed):
    x_value, w_value = check_same_batch(x_value, w_value)
    z_seed, x_seed = split_seed(seed, 2)
    mean, variance = model.encode({x.name: x_value, w.name: w_value}, training=False)
    return decode_all(model, gaussian.sample(mean, variance, z_seed), x_seed)

  specs.append(SignatureSpec("reconstruct", reconstruct, [modality_spec(x), modality_spec(w), SEED_SPEC],
                             "z ~ q(z|x,w), then every modality's p(.|z)"))

  def sample(num_samples, seed):
    num_samples = checked(num_samples,
                          tf.debugging.assert_non_negative(num_samples, message="num_samples must be >= 0"))
    z_seed, x_seed = split_seed(seed, 2)
    if isinstance(model, HierarchicalJMVAE):
      z = model.sample_prior(num_samples, z_seed, training=False)
    else:
      z = tf.random.stateless_normal(tf.stack([num_samples, model.latent_dim]), z_seed)
    return decode_all(model, z, x_seed)

  prior = "p(z_L)...p(z_1|z_2)" if isinstance(model, HierarchicalJMVAE) else "p(z) = N(0, I)"
  specs.append(SignatureSpec("sample", sample, [NUM_SAMPLES_SPEC, SEED_SPEC],
                             f"z from the prior {prior}, then every modality's p(.|z)"))
  return specs


def conditional_model_signatures(model: ConditionalModel, x: Modality, w: Modality) -> List[SignatureSpec]:
  """CVAE / CMMA: one direction (target | condition) only."""
  target, condition = model.target_spec, model.condition_spec
  specs = []

  def encode(t_value, c_value):
    t_value, c_value = check_same_batch(t_value, c_value)
    mean, variance = model.encode({target.name: t_value, condition.name: c_value}, training=False)
    return {"mean": mean, "variance": variance}

  specs.append(SignatureSpec("encode", encode, [modality_spec(target), modality_spec(condition)],
                             f"q(z|{target.name},{condition.name}): mean and variance"))

  if isinstance(model, CMMA):
    def encode_condition(c_value):
      mean, variance = model.prior({condition.name: c_value}, training=False)
      return {"mean": mean, "variance": variance}

    specs.append(SignatureSpec(f"encode_{condition.name}", encode_condition, [modality_spec(condition)],
                               f"the conditional prior p(z|{condition.name})"))

  def generate(c_value, seed):
    z_seed, t_seed = split_seed(seed, 2)
    mean, variance = model.prior({condition.name: c_value}, training=False)
    z = gaussian.sample(mean, variance, z_seed)
    outputs = distribution_outputs(model.decode(z, c_value, training=False), target, t_seed)
    return dict(prefixed(target.name, outputs), z=z)

  direction = "x_from_w" if target == x else "w_from_x"
  specs.append(SignatureSpec(f"generate_{direction}", generate, [modality_spec(condition), SEED_SPEC],
                             f"z from the prior, then p({target.name}|z,{condition.name})"))

  def reconstruct(t_value, c_value, seed):
    t_value, c_value = check_same_batch(t_value, c_value)
    z_seed, t_seed = split_seed(seed, 2)
    mean, variance = model.encode({target.name: t_value, condition.name: c_value}, training=False)
    z = gaussian.sample(mean, variance, z_seed)
    outputs = distribution_outputs(model.decode(z, c_value, training=False), target, t_seed)
    return dict(prefixed(target.name, outputs), z=z)

  specs.append(SignatureSpec("reconstruct", reconstruct,
                             [modality_spec(target), modality_spec(condition), SEED_SPEC],
                             f"z ~ q(z|{target.name},{condition.name}), then p({target.name}|z,..)"))
  return specs


def with_shape_checks(fn: Callable, input_signature: Sequence[tf.TensorSpec]) -> Callable:
  """`fn` that first checks every input against its spec.

  A SavedModel signature (what TF Serving calls) checks dtypes but not shapes; this
  turns a wrong shape into "Shape of tensor label [2,9] is not compatible with
  expected shape [?,10]" instead of an error deep inside a layer.
  """
  def checked(*args):
    return fn(*[tf.ensure_shape(arg, spec.shape) for arg, spec in zip(args, input_signature)])
  return checked


class ServingModule(tf.Module):
  """The exported object: the model's variables and one tf.function per signature.

  Only the variables are tracked (not the Keras model), so the SavedModel holds no
  Keras metadata and loads with TensorFlow alone.
  """

  def __init__(self, model: MultimodalVAE, modalities: Optional[Sequence[Modality]] = None):
    super().__init__(name="jmvae_serving")
    modalities = tuple(modalities or model.modality_specs)
    if len(modalities) != 2:
      raise ExportError(f"export supports two modalities (x, w); the model has {[m.name for m in modalities]}")
    x, w = modalities
    if isinstance(model, ConditionalModel):
      specs = conditional_model_signatures(model, x, w)
    elif isinstance(model, (JMVAE, HierarchicalJMVAE)):
      specs = joint_model_signatures(model, x, w)
    else:
      raise ExportError(f"no serving signatures for {type(model).__name__}")
    self.model_variables = list(model.variables)
    self.signature_docs = {}
    self.signature_inputs = {}
    self.function_names = []
    for spec in specs:
      setattr(self, spec.name, tf.function(with_shape_checks(spec.fn, spec.input_signature),
                                           input_signature=spec.input_signature, autograph=False))
      self.signature_docs[spec.name] = spec.doc
      self.signature_inputs[spec.name] = [s.name for s in spec.input_signature]
      self.function_names.append(spec.name)
    self.default_signature = ("generate_x_from_w" if "generate_x_from_w" in self.function_names
                              else "generate_w_from_x")

  def input_names(self, signature: str) -> List[str]:
    """The input names of a signature, as a SavedModel client passes them."""
    return list(self.signature_inputs[self.default_signature if signature == DEFAULT_SIGNATURE else signature])

  def run(self, signature: str, inputs: Dict[str, object]) -> Dict[str, tf.Tensor]:
    """Calls a signature in-process with inputs keyed by name, as `loaded.signatures[...]` takes them."""
    name = self.default_signature if signature == DEFAULT_SIGNATURE else signature
    names = self.input_names(name)
    unknown = set(inputs) - set(names)
    if unknown:
      raise ValueError(f"{signature} takes {names}; got unknown inputs {sorted(unknown)}")
    return getattr(self, name)(*[inputs[n] for n in names])

  def signatures(self) -> Dict[str, Callable]:
    """SavedModel signatures: every method plus `serving_default`."""
    functions = {name: getattr(self, name).get_concrete_function() for name in self.function_names}
    functions[DEFAULT_SIGNATURE] = functions[self.default_signature]
    return functions


# --- writing the export ----------------------------------------------------------------

def existing_versions(model_base: str) -> List[int]:
  if not tf.io.gfile.isdir(model_base):
    return []
  return sorted(int(n.rstrip("/")) for n in tf.io.gfile.listdir(model_base) if re.fullmatch(r"\d+/?", n))


def next_version(model_base: str) -> int:
  """The next free integer version under BASE/NAME (1 for a new model)."""
  versions = existing_versions(model_base)
  return versions[-1] + 1 if versions else 1


def export(model: MultimodalVAE, export_base: str, name: str, version: Optional[int] = None,
           modalities: Optional[Sequence[Modality]] = None, run_config_json: Optional[str] = None) -> str:
  """Writes EXPORT_BASE/NAME/VERSION/ (TF Serving's layout); returns that path.

  The SavedModel is written into a hidden sibling directory and renamed into place,
  so TF Serving (which polls the numeric directories) never sees half an export; an
  existing version is never overwritten.
  """
  if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
    raise ExportError(f"model name {name!r} must be letters, digits, '_', '.' or '-'")
  model_base = os.path.join(export_base, name)
  if version is None:
    version = next_version(model_base)
  if version < 1:
    raise ExportError(f"version must be a positive integer, got {version}")
  path = os.path.join(model_base, str(version))
  if tf.io.gfile.exists(path):
    raise ExportError(f"{path} exists; versions are never overwritten (leave out --version for the next one)")
  module = ServingModule(model, modalities)
  tf.io.gfile.makedirs(model_base)
  staging = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=model_base)
  try:
    tf.saved_model.save(module, staging, signatures=module.signatures())
    extra = os.path.join(staging, "assets.extra")
    tf.io.gfile.makedirs(extra)
    if run_config_json is not None:
      with tf.io.gfile.GFile(os.path.join(extra, "run.json"), "w") as f:
        f.write(run_config_json)
    with tf.io.gfile.GFile(os.path.join(extra, "signatures.txt"), "w") as f:
      f.write(f"{DEFAULT_SIGNATURE} = {module.default_signature}\n")
      f.write("".join(f"{n}: {module.signature_docs[n]}\n" for n in module.function_names))
    if tf.io.gfile.exists(path):  # another export took this version meanwhile
      raise ExportError(f"{path} appeared during the export; not overwritten")
    os.rename(staging, path)
  finally:
    if tf.io.gfile.exists(staging):
      tf.io.gfile.rmtree(staging)
  return path
