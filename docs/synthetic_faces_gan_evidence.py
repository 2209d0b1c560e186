r"""The numbers and the picture of docs/CELEBA.md's "JMVAE-kl with VAE-GAN" section: the
sharpness of reconstructions and of faces generated from attributes, and how often an edit
flips the attribute that the model itself reads off the edited face.

  python docs/synthetic_faces_gan_evidence.py --data_dir=/tmp/faces \
      --output_dir=/tmp/evidence JMVAE-kl=runs/synthetic_faces/jmvae_kl \
      "+GAN pixels=runs/synthetic_faces/jmvae_kl_gan"

Sharpness: the variance of the Laplacian of the grey image (high-frequency content; it also
counts artefacts), mean over the test faces. Edits: jmvae_tf.inspection.editing.edit_success.
"""

from __future__ import annotations

import argparse
import functools
import json
import os

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from jmvae_tf.core.modalities import IMAGE  # noqa: E402
from jmvae_tf.inspection import editing, figures  # noqa: E402
from jmvae_tf.training import run_dir
from pipelines import celeba  # noqa: E402
from pipelines.celeba_attributes import ATTRIBUTE_NAMES  # noqa: E402

EDITS = (
  "+Smiling",
  "-Smiling",
  "+Wearing_Hat",
  "+Blond_Hair",
  "+Black_Hair",
  "+Male",
  "-Male",
  "+Eyeglasses",
  "+Bald",
  "+Mustache",
)
BATCH = 50


def laplacian_variance(images: np.ndarray) -> float:
  grey = np.asarray(images).mean(-1)
  lap = (
    -4 * grey[:, 1:-1, 1:-1]
    + grey[:, :-2, 1:-1]
    + grey[:, 2:, 1:-1]
    + grey[:, 1:-1, :-2]
    + grey[:, 1:-1, 2:]
  )
  return float(lap.reshape(len(grey), -1).var(1).mean())


def batched(fn, values):
  return np.concatenate([fn(values[i : i + BATCH]).numpy() for i in range(0, len(values), BATCH)])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--shown", type=int, default=8, help="test faces in the picture")
  parser.add_argument("models", nargs="+", help="TITLE=MODEL_DIR")
  args = parser.parse_args()
  data = celeba.CelebADataSet(args.data_dir)
  batches = list(data.eval_dataset("test", 100))
  faces = np.concatenate([b["image"].numpy() for b in batches])
  attributes = np.concatenate([b["attributes"].numpy() for b in batches])
  results = {"real": {"laplacian_variance": laplacian_variance(faces)}}
  rows, names = [faces[: args.shown]], ["test face"]
  for item in args.models:
    title, model_dir = item.split("=", 1)
    model = run_dir.load(model_dir)
    rec = batched(functools.partial(editing.reconstruct, model), faces)
    gen = batched(functools.partial(editing.image_from_attributes, model), attributes)
    result = {
      "reconstruction_laplacian_variance": laplacian_variance(rec),
      "from_attributes_laplacian_variance": laplacian_variance(gen),
      "reconstruction_mse": float(np.mean((rec - faces) ** 2)),
      "edits": {},
    }
    for spec in EDITS:
      edit = editing.parse_edits(spec, ATTRIBUTE_NAMES)[0]
      result["edits"][spec] = editing.edit_success(model, faces, edit)
    results[title] = result
    rows += [rec[: args.shown], gen[: args.shown]]
    names += [f"{title}: p(x|z), z=mean q(z|x)", f"{title}: p(x|z), z=mean q(z|w)"]
    print(title, json.dumps(result), flush=True)
  print("real", json.dumps(results["real"]))
  os.makedirs(args.output_dir, exist_ok=True)
  with open(os.path.join(args.output_dir, "evidence.json"), "w") as f:
    json.dump(results, f, indent=2)
  fig = figures.draw_face_grid(
    np.stack(rows),
    names,
    [],
    "test faces, reconstructions and faces from their attributes",
    next(m for m in data.modalities if m.family == IMAGE).likelihood.value_range,
  )
  figures.save_figure(fig, os.path.join(args.output_dir, "sharpness.png"))


if __name__ == "__main__":
  main()
