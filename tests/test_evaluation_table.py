"""jmvae_tf/evaluation/table.py: the paper's columns and numbers, a table bound to a data set's
modality names, which columns a model fills, rows merged from several model directories, and
the Markdown written for records made by hand."""

import pytest
from model_configs import mnist_config

from jmvae_tf.evaluation import table
from jmvae_tf.evaluation.table import Column
from jmvae_tf.models import config

MNIST = ("image", "label")


@pytest.fixture(scope="module")
def built():
  """Tiny models, as evaluate builds them, by what they are."""
  made = {
    "jmvae": mnist_config("jmvae", latent_dim=2),
    "jmvae_kl": mnist_config("jmvae_kl", latent_dim=2),
    "cvae_image": mnist_config("cvae", latent_dim=2),  # image | label, the default
    "cmma_label": mnist_config("cmma", latent_dim=2, target="label", condition="image"),
  }
  return {name: config.build_model(c) for name, c in made.items()}


# --- columns -----------------------------------------------------------------------------------


def test_conditional_columns_of_two_modalities_are_the_papers_in_its_order():
  columns = table.conditional_columns(["x", "w"])
  assert [c.title() for c in columns] == [
    "log p(x~|w)",
    "log p(w~|x)",
    "log p(x~|w,x)",
    "log p(w~|x,w)",  # the target's own modality written last
  ]
  assert [c.key for c in columns] == ["x|w", "w|x", "x|w,x", "w|w,x"]
  assert [c.multi for c in columns] == [False, False, True, True]
  assert columns == table.PAPER_COLUMNS


def test_conditional_columns_of_three_modalities_single_conditionals_smallest_first():
  columns = table.conditional_columns(["a", "b", "c"])
  assert [c.key for c in columns] == [
    "a|b",
    "a|c",
    "a|b,c",
    "b|a",
    "b|c",
    "b|a,c",
    "c|a",
    "c|b",
    "c|a,b",
    "a|a,b,c",
    "b|a,b,c",
    "c|a,b,c",
  ]


def test_a_column_title_takes_a_prefix_and_symbols_and_renames():
  column = Column("image", ("label", "image"))
  assert column.title("IWAE ", {"image": "x", "label": "w"}) == "IWAE log p(x~|w,x)"
  assert column.renamed({"image": "x", "label": "w"}) == Column("x", ("w", "x"))


# --- a table bound to a data set ---------------------------------------------------------------


def test_bind_renames_the_columns_and_the_papers_numbers():
  bound = table.TABLE1.bind(MNIST)
  assert [c.key for c in bound.columns] == [
    "image|label",
    "label|image",
    "image|image,label",
    "label|image,label",
  ]
  assert bound.paper["cvae"] == {
    "image|label": -448.8,
    "label|image": -5.293,
    "image|image,label": -70.42,
    "label|image,label": -5.304,
  }
  assert bound.symbols == {"image": "x", "label": "w"} and bound.joint_key == "image,label"
  assert bound.title(bound.columns[3]) == "log p(w~|x,w)"  # in the paper's symbols
  assert (bound.name, bound.iterations, bound.accuracy) == ("Table 1", 100, None)
  faces = table.TABLE2.bind(["image", "attributes"])
  assert faces.accuracy == table.Accuracy("attributes", ("image",))
  assert faces.paper["jmvae_kl"]["image|attributes"] == -6852


def test_bind_refuses_another_number_of_modalities():
  with pytest.raises(ValueError) as refused:
    table.TABLE1.bind(["a", "b", "c"])
  assert str(refused.value) == "Table 1 has 2 modalities (x, w); got ['a', 'b', 'c']"


def test_table_for_a_data_set_the_paper_has_no_table_of_is_every_conditional():
  assert table.table_for("mnist", MNIST) == table.TABLE1.bind(MNIST)
  assert table.table_for("fashion_mnist", MNIST).paper == {}
  other = table.table_for("svhn", ["digit", "house"])
  assert other.columns == table.conditional_columns(["digit", "house"])
  assert other.paper == {} and other.symbols == {"digit": "x", "house": "w"}


# --- what a model fills ------------------------------------------------------------------------


def test_columns_and_iwae_keys_for_each_kind_of_model(built):
  keys = lambda model: [c.key for c in table.columns_for(model)]  # noqa: E731
  every = ["image|label", "label|image", "image|image,label", "label|image,label"]
  for name in ("jmvae", "jmvae_kl"):
    model = built[name]
    assert keys(model) == every
    iwae = table.iwae_keys_for(model, table.columns_for(model))
    assert iwae == ["image|label", "label|image", "image,label"]  # and the joint
  assert keys(built["cvae_image"]) == ["image|label", "image|image,label"]
  assert keys(built["cmma_label"]) == ["label|image", "label|image,label"]
  # a conditional model has no joint log p(x,w)
  cvae = built["cvae_image"]
  assert table.iwae_keys_for(cvae, table.columns_for(cvae)) == ["image|label"]
  bound = table.TABLE1.bind(MNIST).columns
  assert table.columns_for(cvae, bound[2:]) == [bound[2]]  # among the columns given


# --- rows and the Markdown ---------------------------------------------------------------------


def test_merge_rows_fills_one_row_from_both_directions_and_refuses_two_values_for_a_cell():
  records = [
    {"model": "cvae", "model_dir": "/runs/a", "values": {"image|label": -1.0}},
    {"model": "cvae", "model_dir": "/runs/b", "values": {"label|image": -2.0}, "iwae": {"x": 1}},
    {"model": "jmvae", "model_dir": "/runs/c", "attribute_accuracy": {"mean_accuracy": 0.9}},
  ]
  rows = table.merge_rows(records)
  assert rows["cvae"]["values"] == {"image|label": -1.0, "label|image": -2.0}
  assert rows["cvae"]["iwae"] == {"x": 1}
  assert rows["cvae"]["sources"][("values", "label|image")] == "/runs/b"
  assert rows["jmvae"]["accuracy"] == [{"mean_accuracy": 0.9}]
  clash = records + [{"model": "cvae", "model_dir": "/runs/d", "values": {"label|image": -3.0}}]
  with pytest.raises(ValueError) as refused:
    table.merge_rows(clash)
  assert str(refused.value) == "two model dirs give CVAE values label|image: /runs/b and /runs/d"


RECORDS = [
  {
    "model": "jmvae",
    "model_dir": "/runs/jmvae",
    "values": {"image|label": -90.25, "label|image": -0.5, "image|image,label": -70.0},
    "iwae": {"image|label": -89.5, "image,label": -100.5},
  },
  {"model": "cvae", "model_dir": "/runs/cvae", "values": {"image|label": -450.0}},
  {"model": "my_vae", "model_dir": "/runs/mine", "values": {"label|image": -1.25}},
]


def test_markdown_table_of_records_made_by_hand():
  """Rows in the paper's order (unregistered models last, by name), bars in titles escaped,
  ours with the paper's number in parentheses, — where a model has no value; IWAE below."""
  text = table.markdown_table(RECORDS, table.TABLE1.bind(MNIST))
  assert text == "\n".join(
    [
      "| model | log p(x~\\|w) | log p(w~\\|x) | log p(x~\\|w,x) | log p(w~\\|x,w) |",
      "|---|---|---|---|---|",
      "| CVAE | -450.0 (-448.8) | — (-5.293) | — (-70.42) | — (-5.304) |",
      "| JMVAE | -90.25 (-747.1) | -0.5 (-0.2286) | -70 (-69.57) | — (-0.2026) |",
      "| my_vae | — | -1.25 | — | — |",
      "",
      "Ours, with the paper's Table 1 in parentheses (higher is better).",
      "",
      "| model | IWAE log p(x~\\|w) | IWAE log p(w~\\|x) | IWAE log p(x,w) |",
      "|---|---|---|---|",
      "| JMVAE | -89.5 | — | -100.5 |",
    ]
  )


def test_markdown_table_says_what_the_data_was_and_leaves_out_the_paper_when_asked():
  definition = table.TABLE1.bind(MNIST)
  labelled = table.markdown_table(RECORDS[1:2], definition, data="synthetic digits")
  assert labelled.startswith("data: synthetic digits\n\n| model | log p(x~\\|w) |")
  assert labelled.endswith(
    "Ours (on synthetic digits), with the paper's Table 1 (on its data set, not ours) in "
    "parentheses (higher is better)."
  )
  plain = table.markdown_table(RECORDS[1:2], definition, with_paper=False)
  assert plain.splitlines()[2] == "| CVAE | -450.0 | — | — | — |"
  assert "paper" not in plain and "(" not in plain.split("\n", 1)[1]


def test_markdown_table_of_attribute_accuracy():
  definition = table.TABLE2.bind(["image", "attributes"])
  record = {
    "model": "jmvae_kl",
    "model_dir": "/runs/kl",
    "values": {},
    "attribute_accuracy": {"mean_accuracy": 0.81234, "mean_majority": 0.75},
  }
  text = table.markdown_table([record], definition, with_paper=False)
  assert text.endswith(
    "| model | mean accuracy of attributes from image | majority baseline |\n"
    "|---|---|---|\n"
    "| JMVAE-kl | 0.8123 | 0.7500 |"
  )


# --- text targets: the log-likelihood per token ------------------------------------------------


def test_a_text_target_gets_its_log_likelihood_per_token():
  """per_token = the summed estimate over the test captions' tokens (their words and <eos>,
  padding not), i.e. values * num_examples / tokens, counted here by hand."""
  import numpy as np
  import tensorflow as tf

  import jmvae_tf
  from jmvae_tf.core.modalities import Modality
  from jmvae_tf.core.text import Vocabulary

  captions = ["a b", "c", "a b c d e f", "b c a", "d", "e f", "a", "c c c c"]  # T = 5: 4 words
  vocabulary = Vocabulary.build(captions, 5)
  values = vocabulary.encoder()(tf.constant(captions)).numpy()
  labels = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
  modalities = [
    Modality("caption", "tokens", vocabulary.shape, vocabulary=vocabulary.tokens),
    Modality("label", "categorical", (3,)),
  ]
  data = jmvae_tf.ArrayDataSet(
    modalities, {"caption": values, "label": labels}, architecture="generic"
  )
  model = jmvae_tf.make_model("jmvae_kl", data, architecture_options={"hidden": "8"}, latent_dim=2)
  dataset = tf.data.Dataset.from_tensor_slices({"caption": values, "label": labels}).batch(3)
  result = table.evaluate(model, dataset, num_samples=2, iterations=0, progress=False)
  tokens = sum(min(len(c.split()), 4) + 1 for c in captions)  # each caption's words and <eos>
  assert tokens == 3 + 2 + 5 + 4 + 2 + 3 + 2 + 5
  assert set(result["values"]) == {
    "caption|label",
    "label|caption",
    "caption|caption,label",
    "label|caption,label",
  }
  assert set(result["per_token"]) == {"caption|label", "caption|caption,label"}
  for key, value in result["per_token"].items():
    assert value == pytest.approx(result["values"][key] * 8 / tokens, rel=1e-6)
    assert value < 0
  # no text target, no per-token figure
  label_only = [c for c in table.conditional_columns(["caption", "label"]) if c.target == "label"]
  other = table.evaluate(model, dataset, label_only, num_samples=2, iterations=0, progress=False)
  assert "per_token" not in other


def test_a_table_without_the_papers_numbers_when_asked():
  names = ["image", "caption"]
  asked = table.table_for("mnist", names, paper=False)
  assert asked.paper == {} and asked.name == "conditional log-likelihoods on mnist"
  assert asked.columns == table.conditional_columns(names)
  assert asked.symbols == {"image": "x", "caption": "w"}
  assert asked.stem == "table_mnist"
  assert table.table_for("celeb_a", ["image", "caption"], paper=False).paper == {}
  # the paper's Table 1, renamed, where its numbers are asked for
  assert table.table_for("mnist", names).paper == table.TABLE1.bind(names).paper != {}
  text = table.markdown_table([{"model": "jmvae_kl", "model_dir": "/r", "values": {}}], asked)
  assert "paper" not in text
