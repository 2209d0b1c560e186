"""Networks: the shared blocks (Gaussian encoders, decoders ending in a TFP distribution layer,
a discriminator), architectures by name, and each data set's networks in a module of its own
(`mnist`: the paper's MLPs, `celeba`: its convolutions). Nothing here knows an objective."""
