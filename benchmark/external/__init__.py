"""External test sets: a trained run scored on every image of another dataset (``python -m benchmark evaluate``,
a suite's ``external:``), its label map, the copies of its train/val images left out, and the leaderboard table."""
