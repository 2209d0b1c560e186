"""tf.data input pipelines; they know nothing about models.

datasets   the DataSet interface every data set implements
registry   the data sets by name (`--dataset`), importable without TensorFlow
mnist      MNIST and Fashion-MNIST (IDX files or TFDS), stochastic binarisation
idx        the IDX file reader
"""
