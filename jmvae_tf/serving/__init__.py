"""Serving: a trained model's SavedModel signatures for TF Serving (`signatures`) and the
export that writes them in TF Serving's layout (`export`)."""
