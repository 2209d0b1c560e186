r"""Writes SYNTHETIC faces (not CelebA) in CelebA's layout: a stand-in for tests and demos
where CelebA cannot be downloaded (pipelines/synthetic_faces.py says how they are drawn).

  python -m runners.synthetic_faces --output_dir=/tmp/faces --num_images=2000
"""

from __future__ import annotations

from absl import flags

from runners import flagutil

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = FLAGS):
  from pipelines.synthetic_faces import LAYOUTS  # pylint: disable=g-import-not-at-top

  d = dict(flag_values=fv)
  flags.DEFINE_string("output_dir", None, "Folder to write (CelebA's layout).", **d)
  flags.DEFINE_integer("num_images", 1000, "Number of faces.", lower_bound=1, **d)
  flags.DEFINE_integer("seed", 0, "Seed; the output is a pure function of it and num_images.", **d)
  flags.DEFINE_enum(
    "layout", "release", list(LAYOUTS), "CelebA's release layout or Kaggle's (CSV, nested).", **d
  )
  flags.mark_flag_as_required("output_dir", flag_values=fv)


def main(argv):
  if len(argv) > 1:
    flagutil.fail(f"unexpected arguments {argv[1:]} (flags are written --name=value)")
  from pipelines import synthetic_faces  # pylint: disable=g-import-not-at-top

  with flagutil.one_line_errors():
    synthetic_faces.generate(FLAGS.output_dir, FLAGS.num_images, FLAGS.seed, FLAGS.layout)
  print(
    f"wrote {FLAGS.num_images} SYNTHETIC faces (not CelebA) in CelebA's layout to "
    f"{FLAGS.output_dir}"
  )


if __name__ == "__main__":
  flagutil.run(define_flags, main, tensorflow=False)  # numpy and PIL draw the faces
