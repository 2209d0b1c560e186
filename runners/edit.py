r"""Edits a face by its attributes with a trained CelebA-family model (the paper's Figure 9).

  python -m runners.edit --model_dir=DIR --image=face.jpg --set="+Smiling,-Eyeglasses" \
      --output=out.png

The picture (JPEG, PNG, BMP or GIF, any size) is cropped and resized as the training data
was (pipelines/celeba.py preprocess_image, with the run's crop); attribute names are
CelebA's (a leading "-" means "not"). The output PNG shows the input, the model's
reconstruction and the edit side by side. See jmvae_tf/inspection/editing.py for the method.
"""

from __future__ import annotations

import os

from absl import flags

from runners import flagutil

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS):
  d = dict(flag_values=fv)
  flagutil.define_plugins_flag(fv)
  flags.DEFINE_string("model_dir", None, "A trained CelebA-family model (runners.train).", **d)
  flags.DEFINE_string("image", None, "The face to edit: a JPEG/PNG/BMP/GIF file.", **d)
  flags.DEFINE_string(
    "set", None, 'Attributes to set, e.g. "+Smiling,-Eyeglasses" (CelebA\'s names).', **d
  )
  flags.DEFINE_string("output", None, "The PNG written: input | reconstruction | edit.", **d)
  flags.DEFINE_float(
    "strength", 1.0, "The value an edited attribute gets (+/-; the data's are +/-1).", **d
  )
  flags.DEFINE_enum(
    "crop",
    None,
    ["paper", "center"],
    "Face crop; default: the one the run was trained with (train.json), else paper.",
    **d,
  )
  flags.DEFINE_integer(
    "num_steps", 40, "Iterative-sampling steps for JMVAE models (Table 2's K).", **d
  )
  for name in ("model_dir", "image", "set", "output"):
    flags.mark_flag_as_required(name, flag_values=fv)


def check_args(fv=FLAGS):
  """The edits and the output path, checked before any model or picture is read."""
  from jmvae_tf.inspection import editing  # pylint: disable=g-import-not-at-top
  from pipelines.celeba_attributes import ATTRIBUTE_NAMES  # pylint: disable=g-import-not-at-top

  edits = editing.parse_edits(fv.set, ATTRIBUTE_NAMES, fv.strength)
  if not fv.output.lower().endswith(".png"):
    raise ValueError(f"--output={fv.output} must name a .png file")
  out_dir = os.path.dirname(os.path.abspath(fv.output))
  if not os.path.isdir(out_dir):
    raise ValueError(f"--output={fv.output}: directory {out_dir} does not exist")
  if os.path.exists(fv.image) and os.path.abspath(fv.output) == os.path.abspath(fv.image):
    raise ValueError(f"--output={fv.output} is the input image; choose another file")
  if fv.num_steps < 0:
    raise ValueError(f"--num_steps must be >= 0, got {fv.num_steps}")
  return edits


def read_image(path: str, crop: str):
  """The picture at `path` as the model's [64, 64, 3] in [-1, 1], or a ValueError."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from pipelines import celeba  # pylint: disable=g-import-not-at-top

  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise ValueError(f"--image={path} cannot be read: {e.strerror or e}") from None
  if not data:
    raise ValueError(f"--image={path} is empty")
  try:
    return celeba.preprocess_image(data, crop)
  except (tf.errors.InvalidArgumentError, ValueError) as e:
    reason = (str(e).strip().splitlines() or ["undecodable"])[0][:120]
    raise ValueError(
      f"--image={path} is not a readable JPEG/PNG/BMP/GIF image ({reason})"
    ) from None


def run_crop(run, asked) -> str:
  """--crop, else the crop the run was trained with, else the paper's."""
  if asked:
    return asked
  options = dict(o.split("=", 1) for o in run.data_options if "=" in o)
  return options.get("crop", "paper")


def edit(fv=FLAGS) -> list:
  """Checks every input (a ValueError, one line, before anything is written), edits the
  face and writes --output; returns the lines to print."""
  edits = check_args(fv)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from jmvae_tf.core import files  # pylint: disable=g-import-not-at-top
  from jmvae_tf.inspection import editing  # pylint: disable=g-import-not-at-top
  from jmvae_tf.training import run_dir  # pylint: disable=g-import-not-at-top
  from pipelines.celeba_attributes import ATTRIBUTE_NAMES  # pylint: disable=g-import-not-at-top

  run = run_dir.load_run(fv.model_dir)
  face = read_image(fv.image, run_crop(run, fv.crop))
  model = run.restore()
  image_name, _ = editing.face_modalities(model, len(ATTRIBUTE_NAMES))
  expected = next(m.shape for m in model.modality_specs if m.name == image_name)
  if tuple(face.shape) != tuple(expected):
    raise ValueError(
      f"--model_dir={fv.model_dir} takes images of shape {expected}, "
      f"the preprocessing gives {tuple(face.shape)}"
    )
  result = editing.bidirectional_edit(model, face[tf.newaxis], edits, fv.num_steps)
  after = editing.attributes_from_image(model, result["edited"], fv.num_steps).numpy()[0]
  picture = editing.side_by_side(face.numpy(), result["reconstruction"][0], result["edited"][0])
  files.write_whole(fv.output, tf.io.encode_png(picture).numpy(), files.OUTPUT_KEPT)
  lines = [
    f"{e.label}: read off the input {result['w'][0, e.index]:+.2f}, "
    f"off the edit {after[e.index]:+.2f} (set to {e.value:+.1f})"
    for e in edits
  ]
  return lines + [f"wrote {fv.output} (input | reconstruction | edit)"]


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  # EditError, RunDirError, a bad picture, an unwritable --output: one line.
  with flagutil.one_line_errors():
    lines = edit(FLAGS)
  print("\n".join(lines))


if __name__ == "__main__":
  flagutil.run(define_flags, main)
