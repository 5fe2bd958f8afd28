"""A small numpy self-organising map, as in section 4.1 of the transfer-learning paper (Kohonen's SOM with the
paper's Gaussian neighbourhood, its epoch-wise radius decay and a constant learning rate eta).

Weights start as small seeded uniform values U(0, 0.01) (not samples of the data), so ``update`` works before
``fit`` and the map does not depend on which samples were drawn. The learning rate is constant, as the paper says.
"""

from __future__ import annotations

import numpy as np

NEIGHBOURHOODS = ("paper", "authors")


class SelfOrganisingMap:
    """A rows x cols grid of weight vectors in R^dim, trained one sample at a time by competitive learning (§4.1)."""

    def __init__(self, rows: int, cols: int, dim: int, *, sigma0: float | None = None, learning_rate: float = 0.5,
                 seed: int = 0, neighbourhood: str = "paper"):
        if neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(f"neighbourhood must be one of {NEIGHBOURHOODS}, not {neighbourhood!r}")
        self.rows, self.cols, self.dim = int(rows), int(cols), int(dim)
        self.sigma0 = float(max(rows, cols) / 2 if sigma0 is None else sigma0)
        self.learning_rate = float(learning_rate)
        self.neighbourhood_kind = neighbourhood
        self.weights = np.random.default_rng(seed).uniform(0.0, 0.01, size=(self.rows, self.cols, self.dim))
        self._grid = np.stack(np.meshgrid(np.arange(self.rows), np.arange(self.cols), indexing="ij"), axis=-1).astype(float)

    def sigma_at(self, epoch: float, epochs: float) -> float:
        """The paper's radius: sigma_t = sigma_0 exp(-t^2 log(4 sigma_0) / T^2), so sigma_0 at t = 0 and 1/4 at t = T."""
        return self.sigma0 * float(np.exp(-(epoch ** 2) * np.log(4 * self.sigma0) / epochs ** 2))

    def neighbourhood(self, winner, sigma: float) -> np.ndarray:
        """h(w) for every cell, d the Euclidean grid distance to the winner: the paper's exp(-d^2 / (2 sigma^2)), or
        the authors' code's exp(-d / 2 * sigma^2) (its operator precedence) when neighbourhood="authors"."""
        d = np.linalg.norm(self._grid - np.asarray(winner, dtype=float), axis=-1)
        if self.neighbourhood_kind == "authors":
            return np.exp(-d / 2 * sigma ** 2)
        return np.exp(-(d ** 2) / (2 * sigma ** 2))

    def winner(self, x) -> tuple[int, int]:
        """The cell whose weight vector is closest (Euclidean) to x; ties go to the first in row-major order."""
        distances = np.linalg.norm(self.weights - np.asarray(x, dtype=float), axis=-1)
        r, c = np.unravel_index(int(np.argmin(distances)), distances.shape)
        return int(r), int(c)

    def update(self, x, epoch: int, epochs: int) -> tuple[int, int]:
        """One sample, the paper's rule: Delta w = eta h_t(w) (x - w) for every cell, h around x's winner; returns the winner."""
        x = np.asarray(x, dtype=float)
        best = self.winner(x)
        h = self.neighbourhood(best, self.sigma_at(epoch, epochs))
        self.weights += self.learning_rate * h[..., None] * (x - self.weights)
        return best

    def fit(self, data, epochs: int, *, shuffle_seed: int = 0) -> "SelfOrganisingMap":
        """``epochs`` passes, t = 0 .. T-1; each pass presents every sample once, in an order drawn from ``shuffle_seed``."""
        data = np.asarray(data, dtype=float)
        rng = np.random.default_rng(shuffle_seed)
        for epoch in range(epochs):
            for i in rng.permutation(len(data)):
                self.update(data[i], epoch, epochs)
        return self

    def _distances(self, data) -> np.ndarray:
        flat = self.weights.reshape(-1, self.dim)
        data = np.asarray(data, dtype=float)
        squared = (data ** 2).sum(1)[:, None] - 2 * data @ flat.T + (flat ** 2).sum(1)[None, :]
        return np.sqrt(np.maximum(squared, 0.0))

    def winners(self, data) -> np.ndarray:
        """(N, 2) integer grid coordinates (row, col) of each sample's winner."""
        best = self._distances(data).argmin(axis=1)
        return np.stack(np.unravel_index(best, (self.rows, self.cols)), axis=1).astype(int)

    def quantisation_error(self, data) -> float:
        """Mean Euclidean distance from each sample to its winner's weight vector (lower = a closer fit)."""
        return float(self._distances(data).min(axis=1).mean())
