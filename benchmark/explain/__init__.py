"""``python -m benchmark explain``: where a trained run looks (heatmaps), how its features cluster (t-SNE, SOM), and
whether it relies on shortcuts (lung-mask, text and source probes), for every method alike (issue 12)."""
