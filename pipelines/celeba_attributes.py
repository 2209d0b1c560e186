"""CelebA's names: its 40 attributes in its order and its files in the release's layout and
in Kaggle's copy; shared by the loader and the synthetic stand-in, importable without
TensorFlow."""

from __future__ import annotations

from typing import Tuple

IMAGE_DIR = "img_align_celeba"  # Kaggle's copy nests it: img_align_celeba/img_align_celeba/
ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
KAGGLE_ATTRIBUTE_FILE = "list_attr_celeba.csv"
KAGGLE_PARTITION_FILE = "list_eval_partition.csv"

ATTRIBUTE_NAMES: Tuple[str, ...] = (
  "5_o_Clock_Shadow",
  "Arched_Eyebrows",
  "Attractive",
  "Bags_Under_Eyes",
  "Bald",
  "Bangs",
  "Big_Lips",
  "Big_Nose",
  "Black_Hair",
  "Blond_Hair",
  "Blurry",
  "Brown_Hair",
  "Bushy_Eyebrows",
  "Chubby",
  "Double_Chin",
  "Eyeglasses",
  "Goatee",
  "Gray_Hair",
  "Heavy_Makeup",
  "High_Cheekbones",
  "Male",
  "Mouth_Slightly_Open",
  "Mustache",
  "Narrow_Eyes",
  "No_Beard",
  "Oval_Face",
  "Pale_Skin",
  "Pointy_Nose",
  "Receding_Hairline",
  "Rosy_Cheeks",
  "Sideburns",
  "Smiling",
  "Straight_Hair",
  "Wavy_Hair",
  "Wearing_Earrings",
  "Wearing_Hat",
  "Wearing_Lipstick",
  "Wearing_Necklace",
  "Wearing_Necktie",
  "Young",
)
