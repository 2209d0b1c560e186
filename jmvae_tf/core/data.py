"""The contract between data and the library: what every data set gives (`DataSet`), one held
in memory (`ArrayDataSet`) and one made of tf.data pipelines of one's own (`PipelineDataSet`).

A data set says what its modalities are (name, kind, shape, family), which network
architecture fits them, and gives tf.data pipelines of dicts keyed by modality
name: an infinite, reproducible training stream and finite, ordered held-out
streams with the test-time preprocessing (e.g. MNIST's fixed-seed binarisation).
It knows nothing of models. The library consumes this contract; the data sets read from files
live in `pipelines/` (by name, `--dataset`, through `pipelines.registry`).

Construction reads and checks the data, so a bad `data_dir` fails with one line
(`DataError`) before any model is built or anything is written.
"""

from __future__ import annotations

import abc
import hashlib
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from jmvae_tf.core import missing
from jmvae_tf.core.likelihoods import to_uint8
from jmvae_tf.core.modalities import IMAGE, Modality

SPLITS = ("train", "validation", "test")


def digest(*arrays: np.ndarray) -> str:
  """A short hex digest of the arrays' shapes, types and bytes."""
  h = hashlib.blake2b(digest_size=8)
  for a in arrays:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.data)
  return h.hexdigest()


class DataError(ValueError):
  """The data set is missing, incomplete, inconsistent or asked for something it lacks."""


class DataSet(abc.ABC):
  """A paired multimodal data set.

  Subclasses set `name` (the registry key) and `architecture` (a name of
  `jmvae_tf.networks.architecture.ARCHITECTURES`), accept `data_dir`, `num_train` and
  `validation` in their constructor (plus their own options, which they check),
  and implement the abstract methods.
  """

  name: str = ""
  architecture: str = ""
  # The options it was made with, "key=value" (check_options returns them): recorded by
  # training, so that whatever reads the run makes the same data. An option that names a
  # folder ends in "_dir" (mnist_fashion's fashion_dir): a resume leaves it to the fingerprint,
  # so a moved copy of the files resumes.
  options: Tuple[str, ...] = ()
  # What the data really is where `name` would mislead (e.g. the synthetic stand-in read as
  # celeb_a); reports print it beside any published numbers. Empty: the data set `name` says.
  provenance: str = ""
  # Modalities hidden on demand from a share of the training examples, ((name, share), ...):
  # --data_options=missing=label:0.99 (jmvae_tf.core.missing), read by `take_missing`.
  hidden: Tuple[Tuple[str, float], ...] = ()

  @property
  @abc.abstractmethod
  def modalities(self) -> Tuple[Modality, ...]:
    """The modalities of every element, in the order the models see them."""

  @abc.abstractmethod
  def num_examples(self, split: str) -> int:
    """Examples in `split` ("train", "validation" or "test"; 0 for an absent split)."""

  @abc.abstractmethod
  def train_dataset(self, batch_size: int, seed: int, start_epoch: int = 0) -> tf.data.Dataset:
    """Infinite full batches for epochs start_epoch, start_epoch + 1, ...; a pure
    function of (seed, epoch, step), so a resumed run reads what it would have read."""

  @abc.abstractmethod
  def eval_dataset(
    self, split: str, batch_size: int, seed: int = 0, num_examples: Optional[int] = None
  ) -> tf.data.Dataset:
    """The first `num_examples` (default all) of `split` in order, last partial batch
    kept, with the test-time preprocessing; the same for every read and batch size."""

  @abc.abstractmethod
  def display_images(self, split: str, num_examples: int, seed: int = 0) -> np.ndarray:
    """uint8 pictures of the first examples of `split` ([N, H, W] or [N, H, W, 3]),
    for Projector sprites and figures: those of `eval_dataset(split, ..., seed)` where the
    seed decides more than the bits (a pairing)."""

  @abc.abstractmethod
  def metadata(self, split: str, num_examples: int) -> Dict[str, np.ndarray]:
    """Named columns describing the first examples of `split` (e.g. "label"), one
    value per example: the Projector's metadata."""

  def labels(self, split: str, num_examples: int) -> Optional[np.ndarray]:
    """What each of the first examples of `split` is, for coherence: its class (int [N]) or
    its attributes ({-1, 1} [N, A]); None for a data set with neither. Its classes by
    default."""
    return self.classes(split, num_examples)

  def label_modalities(self) -> Optional[Tuple[str, ...]]:
    """The modalities that state what `labels` gives (a class, attributes), which coherence
    reads off generated values; None: every vector modality does (the built-in data sets')."""
    return None

  def read_text(self, modality: str, texts: Sequence[str]) -> Optional[np.ndarray]:
    """What each caption `texts` of the text modality `modality` states, as `labels` gives it
    (a class, -1 where it states none; or attributes in {-1, 1}, 0 where it does not say):
    the data set's own parser of its captions, which coherence reads generated captions with;
    None for a data set that cannot read them."""
    return None

  def use_vocabulary(self, modality: Modality) -> bool:
    """Reads the text modality `modality.name` with `modality`'s vocabulary (a run's) from now
    on, where this data set can (its captions made by a grammar, tokenised afresh); False
    where it cannot. A run's readers call it so that captions are tokenised as in training
    even where the vocabulary rebuilt here differs (fewer training examples, other counts)."""
    return False

  def fingerprint(self, num_train: Optional[int] = None) -> Optional[str]:
    """A digest of the (first `num_train`, default all) training examples: their content,
    not where they are. Training records it, so that a resume on other data is refused and
    whatever reads the run checks that it reads the same data; None: none is recorded."""
    return None

  def classes(self, split: str, num_examples: int) -> Optional[np.ndarray]:
    """The class (an int) of each of the first examples of `split`, for a data set whose
    examples have one (MNIST's digits); None for one whose do not."""
    return None

  def real_presence(self) -> Optional[Dict[str, np.ndarray]]:
    """Which training examples hold each modality in the data itself ({modality: bool [N]}, a
    user's empty cells kept with missing=keep); None: every example holds every one."""
    return None

  # --- shared ----------------------------------------------------------------------------
  def presence(self, seed: int) -> Optional[Dict[str, np.ndarray]]:
    """Which training examples hold which modality under the data seed `seed` ({modality: bool
    [N]}): the data's own gaps less those hidden on demand; None where every example is
    complete (batches without masks, as before). The training stream's masks are these."""
    n = self.num_examples("train")
    if not n:
      return None
    names = [m.name for m in self.modalities]
    return missing.presence(n, names, self.hidden, seed, self.real_presence())

  def take_missing(self, options: Dict[str, str]) -> None:
    """Reads `--data_options`' missing=name:share[,...] (checked against the modalities, so
    called once they are known) into `hidden`."""
    text = options.get(missing.OPTION)
    names = [m.name for m in self.modalities]
    self.hidden = () if text is None else parse_shares(text, names, self.name)
    if self.hidden:  # recorded as the flag takes it, one item per modality, shares as %g
      others = [o for o in self.options if not o.startswith(f"{missing.OPTION}=")]
      hidden = [f"{missing.OPTION}={format_shares((h,))}" for h in self.hidden]
      self.options = tuple(sorted(others + hidden))

  def steps_per_epoch(self, batch_size: int) -> int:
    """Full training batches per epoch."""
    return self.num_examples("train") // batch_size

  def held_out_split(self) -> str:
    """The split evaluated during training: validation when there is one, else test."""
    return "validation" if self.num_examples("validation") else "test"

  def has_held_out(self) -> bool:
    """Whether there is a held-out split to evaluate during training."""
    return bool(self.num_examples(self.held_out_split()))

  def check_split(self, split: str, num_examples: Optional[int] = None) -> int:
    """The number of examples to read from `split`; a DataError naming what is wrong."""
    if split not in SPLITS:
      raise DataError(f"{self.name}: unknown split {split!r}; choose from {SPLITS}")
    available = self.num_examples(split)
    if not available:
      raise DataError(f"{self.name}: no {split} split")
    if num_examples is None:
      return available
    if num_examples < 1 or num_examples > available:
      raise DataError(f"{self.name}: asked for {num_examples} {split} examples, it has {available}")
    return num_examples

  def check_batch_size(self, batch_size: int) -> None:
    if batch_size < 1:
      raise DataError(f"batch size must be at least 1, got {batch_size}")
    if self.steps_per_epoch(batch_size) < 1:
      raise DataError(
        f"batch size {batch_size} is larger than the {self.num_examples('train')} "
        f"training examples of {self.name}"
      )


class ArrayDataSet(DataSet):
  """A data set held in memory: for each split, {modality name: array [N, ...]}.

  `modalities` says what each array is (its keys name them); `train` is required, `validation`
  and `test` are optional (the split evaluated during training is validation where given, else
  test). Values are used as given: a Bernoulli modality takes bits or probabilities, a
  categorical one one-hot rows. The training stream is a pure function of (seed, epoch, step):
  full batches of a fresh stateless permutation of the examples each epoch, so a resumed run
  reads what it would have read. `architecture` names the networks (default the paper's MLPs);
  `name` is what run.json records as the data set; `missing` ("label:0.99", as
  --data_options=missing=) hides modalities from a share of the training examples
  (jmvae_tf.core.missing).

  Classes (coherence, the Projector's colours) come from the one categorical modality, where
  there is one; pictures (the Projector's sprite) from the first image modality.
  """

  def __init__(
    self,
    modalities: Sequence[Modality],
    train: Dict[str, np.ndarray],
    validation: Optional[Dict[str, np.ndarray]] = None,
    test: Optional[Dict[str, np.ndarray]] = None,
    architecture: str = "mnist_mlp",
    name: str = "arrays",
    missing: Optional[str] = None,
  ):
    self._modalities = tuple(modalities)
    if not self._modalities or not all(isinstance(m, Modality) for m in self._modalities):
      raise DataError(f"{name}: modalities must be a non-empty sequence of Modality")
    self.name, self.architecture = name, architecture
    given = {"train": train, "validation": validation, "test": test}
    self._splits = {s: self._checked(s, a) for s, a in given.items() if a is not None}
    if missing is not None:
      self.options = (f"missing={missing}",)
      self.take_missing({"missing": missing})

  def _checked(self, split: str, arrays) -> Dict[str, np.ndarray]:
    """The split's arrays as float32, or a DataError naming the array and what is wrong."""
    names = [m.name for m in self._modalities]
    if not isinstance(arrays, dict) or set(arrays) != set(names):
      got = sorted(arrays) if isinstance(arrays, dict) else type(arrays).__name__
      raise DataError(f"{self.name}: {split} must be a dict of arrays keyed {names}, got {got}")
    out, sizes = {}, set()
    for m in self._modalities:
      values = np.asarray(arrays[m.name], np.float32)
      where = f"{self.name}: {split}[{m.name!r}]"
      if values.shape[1:] != m.shape:
        raise DataError(
          f"{where} has shape {values.shape}; modality {m.name!r} needs [N] + {list(m.shape)}"
        )
      if not np.all(np.isfinite(values)):
        raise DataError(f"{where} holds NaN or infinite values")
      value_range = m.likelihood.value_range
      if (
        value_range is not None
        and values.size
        and (values.min() < value_range[0] or values.max() > value_range[1])
      ):
        raise DataError(
          f"{where}: a {m.kind} modality's values lie in [{value_range[0]:g}, "
          f"{value_range[1]:g}], got min {values.min():g} and max {values.max():g}"
        )
      out[m.name] = values
      sizes.add(len(values))
    if len(sizes) != 1 or 0 in sizes:
      counts = {name: len(v) for name, v in out.items()}
      raise DataError(f"{self.name}: {split} needs as many examples of each modality, got {counts}")
    return out

  @property
  def modalities(self) -> Tuple[Modality, ...]:
    return self._modalities

  def num_examples(self, split: str) -> int:
    part = self._splits.get(split)
    return 0 if part is None else len(next(iter(part.values())))

  def train_dataset(self, batch_size: int, seed: int, start_epoch: int = 0) -> tf.data.Dataset:
    self.check_batch_size(batch_size)
    arrays = {k: tf.constant(v) for k, v in self._splits["train"].items()}
    n = self.num_examples("train")
    steps = self.steps_per_epoch(batch_size)
    table = missing.as_tensors(self.presence(seed))

    def make_batch(global_step):
      epoch, step = global_step // steps, global_step % steps
      positions = tf.range(step * batch_size, (step + 1) * batch_size, dtype=tf.int64)
      indices = tf.random.experimental.index_shuffle(
        positions, seed=tf.stack([tf.constant(int(seed), tf.int64), epoch]), max_index=n - 1
      )
      return missing.gather(table, {k: tf.gather(v, indices) for k, v in arrays.items()}, indices)

    return (
      tf.data.Dataset.counter(start=int(start_epoch) * steps, dtype=tf.int64)
      .map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
      .prefetch(tf.data.AUTOTUNE)
    )

  def eval_dataset(
    self, split: str, batch_size: int, seed: int = 0, num_examples: Optional[int] = None
  ) -> tf.data.Dataset:
    n = self.check_split(split, num_examples)
    part = {k: v[:n] for k, v in self._splits[split].items()}
    return tf.data.Dataset.from_tensor_slices(part).batch(batch_size)

  def classes(self, split: str, num_examples: int) -> Optional[np.ndarray]:
    categorical = [m for m in self._modalities if m.likelihood.classes(m.shape) is not None]
    if len(categorical) != 1:
      return None
    n = self.check_split(split, num_examples)
    return self._splits[split][categorical[0].name][:n].argmax(-1).astype(np.int64)

  def metadata(self, split: str, num_examples: int) -> Dict[str, np.ndarray]:
    classes = self.classes(split, num_examples)
    if classes is not None:
      return {"class": classes}
    return {"index": np.arange(self.check_split(split, num_examples))}

  def display_images(self, split: str, num_examples: int, seed: int = 0) -> np.ndarray:
    images = [m for m in self._modalities if m.family == IMAGE and m.shape[-1] in (1, 3)]
    if not images:
      raise DataError(f"{self.name}: no image modality with 1 or 3 channels to draw")
    m, n = images[0], self.check_split(split, num_examples)
    values = self._splits[split][m.name][:n]
    pixels = to_uint8(values, m.likelihood.picture_range(values))
    return pixels[..., 0] if m.shape[-1] == 1 else pixels

  def fingerprint(self, num_train: Optional[int] = None) -> str:
    return digest(*(self._splits["train"][m.name][:num_train] for m in self._modalities))


class PipelineDataSet(DataSet):
  """A data set made of tf.data pipelines of the user's own: `train` yields batches, dicts
  {modality name: [B, ...]}; one pass over it is an epoch (its cardinality, or
  `steps_per_epoch` batches of an infinite one). `validation` (optional) is a finite pipeline
  of held-out batches. A run resumed at epoch e reads the pipeline again from the start and
  skips e epochs of batches: exact where the pipeline gives the same batches each time (a
  seeded, deterministic one).
  """

  def __init__(
    self,
    modalities: Sequence[Modality],
    train: tf.data.Dataset,
    validation: Optional[tf.data.Dataset] = None,
    steps_per_epoch: Optional[int] = None,
    architecture: str = "mnist_mlp",
    name: str = "pipeline",
  ):
    self._modalities = tuple(modalities)
    self.name, self.architecture = name, architecture
    for split, dataset in (("train", train), ("validation", validation)):
      if dataset is not None:
        self._check_spec(split, dataset)
    cardinality = int(train.cardinality())
    if steps_per_epoch is None:
      if cardinality < 0:
        raise DataError(
          f"{name}: the training pipeline has no known length (cardinality {cardinality}); "
          "say how many batches make an epoch (steps_per_epoch)"
        )
      steps_per_epoch = cardinality
    if steps_per_epoch < 1:
      raise DataError(f"{name}: an epoch needs at least one batch, got {steps_per_epoch}")
    self._train, self._validation, self._steps = train, validation, int(steps_per_epoch)

  def _check_spec(self, split: str, dataset: tf.data.Dataset) -> None:
    spec = dataset.element_spec
    names = [m.name for m in self._modalities]
    keys = set(spec) - {missing.PRESENT} if isinstance(spec, dict) else None
    if keys != set(names):
      got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
      raise DataError(
        f"{self.name}: {split} must yield dicts keyed {names} (and, for examples that lack "
        f"some, {missing.PRESENT!r}: {{modality: bool [B]}}), got {got}"
      )
    masks = spec.get(missing.PRESENT)
    if masks is not None and split != "train":
      raise DataError(
        f"{self.name}: the {split} batches carry {missing.PRESENT!r}; held-out examples are "
        "complete (evaluation reads every modality): leave the incomplete ones out of it"
      )
    if masks is not None and (
      not isinstance(masks, dict)
      or not set(masks) <= set(names)
      or any(m.dtype != tf.bool or m.shape.rank != 1 for m in masks.values())
    ):
      raise DataError(
        f"{self.name}: {split} batches' {missing.PRESENT!r} must be {{modality: bool [B]}} "
        f"for some of {names}, got {masks}"
      )
    for m in self._modalities:
      if not spec[m.name].shape[1:].is_compatible_with(m.shape):
        raise DataError(
          f"{self.name}: {split} batches of {m.name!r} have shape {spec[m.name].shape}; "
          f"modality {m.name!r} needs [B] + {list(m.shape)}"
        )

  @property
  def modalities(self) -> Tuple[Modality, ...]:
    return self._modalities

  def num_examples(self, split: str) -> int:
    """Unknown for a pipeline (0), but for the split checks: an epoch's batches exist."""
    return 0

  def steps_per_epoch(self, batch_size: int) -> int:
    return self._steps

  def check_batch_size(self, batch_size: int) -> None:
    """The pipeline makes its own batches."""

  def held_out_split(self) -> str:
    return "validation"

  def train_dataset(self, batch_size: int, seed: int, start_epoch: int = 0) -> tf.data.Dataset:
    return self._train.repeat().skip(int(start_epoch) * self._steps)

  def eval_dataset(
    self, split: str, batch_size: int, seed: int = 0, num_examples: Optional[int] = None
  ) -> tf.data.Dataset:
    if split != "validation" or self._validation is None:
      raise DataError(f"{self.name}: no {split} pipeline")
    return self._validation

  def has_held_out(self) -> bool:
    return self._validation is not None

  def display_images(self, split: str, num_examples: int, seed: int = 0) -> np.ndarray:
    raise DataError(f"{self.name}: a pipeline has no pictures to draw")

  def metadata(self, split: str, num_examples: int) -> Dict[str, np.ndarray]:
    raise DataError(f"{self.name}: a pipeline has no metadata")


def training_fingerprint(data: DataSet, num_train: Optional[int]) -> Optional[str]:
  """`data`'s fingerprint of its first `num_train` training examples (those a run recorded
  having trained on); None where the data set cannot tell (a plug-in's fingerprint() that
  takes no count, asked for fewer than all)."""
  if num_train is None or num_train == data.num_examples("train"):
    return data.fingerprint()
  if num_train > data.num_examples("train"):
    return None
  try:
    return data.fingerprint(num_train)
  except TypeError:
    return None


def parse_options(text: Sequence[str]) -> Dict[str, str]:
  """`--data_options` ("key=value" items) as a dict; a DataError for a malformed item or a key
  given twice, but for missing=, whose items join (missing=digit:0.5,missing=fashion:0.5: the
  flag's commas separate items, so several modalities repeat the key)."""
  options = {}
  for item in text or ():
    key, sep, value = item.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key:
      raise DataError(f"--data_options: {item!r} is not key=value")
    if not value:
      raise DataError(f"--data_options: {key} is empty; give it a value or leave the option out")
    if key in options:
      if key != missing.OPTION:
        raise DataError(f"--data_options: {key} is given twice ({options[key]!r}, {value!r})")
      value = f"{options[key]},{value}"
    options[key] = value
  return options


def check_options(
  name: str, options: Dict[str, str], allowed: Dict[str, Sequence[str]]
) -> Tuple[str, ...]:
  """Every option is known to data set `name` and has one of its allowed values; returns them
  as a data set records them (`DataSet.options`: "key=value", sorted)."""
  for key, value in options.items():
    if key not in allowed:
      known = ", ".join(sorted(allowed)) or "none"
      raise DataError(f"--data_options: {name} has no option {key!r} (it has: {known})")
    if allowed[key] and value not in allowed[key]:
      raise DataError(
        f"--data_options: {key}={value!r} for {name}; choose from {list(allowed[key])}"
      )
  return tuple(sorted(f"{k}={v}" for k, v in options.items()))


def parse_shares(text: str, modality_names: Sequence[str], dataset: str) -> missing.Shares:
  """`missing=`'s value, "name:share[,name:share...]", as ((name, share), ...) in the data set's
  order; a DataError naming what is wrong: an item that is not name:share, a modality the data
  set lacks, a share that is not a number in [0, 1), a modality named twice, or every modality
  named (with each hidden independently, some examples would keep none)."""
  where = f"--data_options: {missing.OPTION}={text} for {dataset}"
  shares: Dict[str, float] = {}
  for item in text.split(","):
    name, sep, value = item.strip().partition(":")
    name = name.strip()
    if not sep or not name or not value.strip():
      raise DataError(f"{where}: {item.strip()!r} is not modality:share (e.g. label:0.99)")
    if name not in modality_names:
      raise DataError(
        f"{where}: {dataset} has no modality {name!r} (it has {list(modality_names)})"
      )
    if name in shares:
      raise DataError(f"{where}: {name!r} is named twice")
    try:
      share = float(value)
    except ValueError:
      share = float("nan")
    if not 0.0 <= share < 1.0:  # NaN fails too
      raise DataError(
        f"{where}: the share of {name!r} must be a number in [0, 1), got {value.strip()!r} "
        "(a modality hidden from every example could not be learnt)"
      )
    shares[name] = share
  if len(modality_names) == 1:
    raise DataError(f"{where}: a data set of one modality has nothing to hide it from")
  if set(shares) == set(modality_names):
    raise DataError(
      f"{where}: every modality is hidden; hidden independently, some examples would keep none "
      "(nothing to learn from them): leave at least one modality out of missing="
    )
  return tuple((n, shares[n]) for n in modality_names if n in shares)


def format_shares(shares: missing.Shares) -> str:
  """The option's value for `shares` (what parse_shares reads back)."""
  return ",".join(f"{name}:{share:g}" for name, share in shares)
