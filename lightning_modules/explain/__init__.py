"""Heatmap explanations of a trained task: Grad-CAM, Grad-CAM++, CAM and LRP, over the class logits (classifiers)
or the similarity to each class template (siamese)."""

from lightning_modules.explain.heatmaps import HEATMAP_METHODS, heatmaps
from lightning_modules.explain.scoring import NotApplicableError, cam_weights, penultimate_features, score_model, target_layer

__all__ = ["HEATMAP_METHODS", "NotApplicableError", "cam_weights", "heatmaps", "penultimate_features", "score_model", "target_layer"]
