"""Inspection: what a trained model shows a person. Pictures of what it generates
(TensorBoard), the paper's figures, latent embeddings for the TensorBoard Projector, and face
editing by attributes."""
