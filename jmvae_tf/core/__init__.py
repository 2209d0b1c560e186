"""The vocabulary every layer speaks: modalities and their network families, likelihood kinds,
diagonal-Gaussian math, stateless seeds, options, the data-set contract, plug-in registries and
whole-file writes. Nothing here knows a network, an objective or a consumer."""
