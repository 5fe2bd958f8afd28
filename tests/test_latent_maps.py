"""Latent maps (issue 12): the SOM follows §4.1's update rule, orders well separated blobs, and latent_maps reports
silhouettes that tell class clustering from source clustering, reproducibly."""

import json
import math

import numpy as np
import pytest

from benchmark.explain.latent import latent_maps
from benchmark.explain.som import SelfOrganisingMap


def test_one_update_follows_the_paper_rule_by_hand():
    som = SelfOrganisingMap(1, 3, 1, sigma0=1.0, learning_rate=0.5)
    som.weights[:] = np.array([0.0, 1.0, 2.0]).reshape(1, 3, 1)
    assert som.winner([1.2]) == (0, 1)
    np.testing.assert_allclose(som.neighbourhood((0, 1), 1.0), [[math.exp(-0.5), 1.0, math.exp(-0.5)]])
    assert som.update([1.2], epoch=0, epochs=10) == (0, 1)  # sigma_0 = 1 at t = 0
    expected = [0.0 + 0.5 * math.exp(-0.5) * 1.2, 1.0 + 0.5 * 0.2, 2.0 + 0.5 * math.exp(-0.5) * (1.2 - 2.0)]
    np.testing.assert_allclose(som.weights.ravel(), expected)


def test_neighbourhoods_paper_and_authors():
    paper = SelfOrganisingMap(1, 3, 1, neighbourhood="paper")
    authors = SelfOrganisingMap(1, 3, 1, neighbourhood="authors")
    np.testing.assert_allclose(paper.neighbourhood((0, 0), 2.0), [[1.0, math.exp(-1 / 8), math.exp(-4 / 8)]])
    np.testing.assert_allclose(authors.neighbourhood((0, 0), 2.0), [[1.0, math.exp(-1 / 2 * 4), math.exp(-2 / 2 * 4)]])
    with pytest.raises(ValueError):
        SelfOrganisingMap(1, 3, 1, neighbourhood="gaussian")


def test_sigma_decays_from_sigma0_to_a_quarter():
    som = SelfOrganisingMap(6, 4, 2)
    assert som.sigma0 == 3.0  # max(rows, cols) / 2
    assert som.sigma_at(0, 10) == pytest.approx(3.0)
    assert som.sigma_at(5, 10) == pytest.approx(3.0 * math.exp(-0.25 * math.log(12)))
    assert som.sigma_at(10, 10) == pytest.approx(3.0 / (4 * 3.0))  # exp(-log(4 sigma0)) = 1 / (4 sigma0)


def test_two_blobs_take_different_cells_and_error_falls():
    rng = np.random.default_rng(1)
    data = np.concatenate([rng.normal(-5, 0.3, (40, 3)), rng.normal(5, 0.3, (40, 3))])
    som = SelfOrganisingMap(5, 5, 3, seed=0)
    before = som.quantisation_error(data)
    som.fit(data, 10, shuffle_seed=0)
    cells = som.winners(data)
    first, second = {tuple(c) for c in cells[:40]}, {tuple(c) for c in cells[40:]}
    assert not first & second
    assert np.linalg.norm(cells[:40].mean(0) - cells[40:].mean(0)) >= 2  # far apart on the grid
    assert som.quantisation_error(data) < 0.2 * before


def _synthetic(n=120, sources=("A", "B"), seed=0):
    """Features that separate three classes and ignore the source; pixels that are noise."""
    rng = np.random.default_rng(seed)
    classes = np.array(["normal", "pneumonia", "covid"])[np.arange(n) % 3]
    centres = {name: rng.normal(0, 1, 64) * 4 for name in set(classes)}
    features = np.stack([centres[c] for c in classes]) + rng.normal(0, 1, (n, 64))
    origin = rng.choice(list(sources), size=n)
    return features, rng.uniform(0, 1, (n, 16 * 16)), classes.tolist(), origin.tolist()


def test_latent_maps_by_class_beats_by_source(tmp_path):
    features, pixels, labels, sources = _synthetic()
    result = latent_maps(features, pixels, labels, sources, tmp_path / "maps.png", title="toy", som_epochs=5)
    assert (tmp_path / "maps.png").stat().st_size > 1000
    json.dumps(result)
    assert result["points"] == 120 and result["sources"] == {k: sources.count(k) for k in ("A", "B")}
    space = result["spaces"]["features"]
    assert space["silhouette_by_class"] > space["silhouette_by_source"] + 0.3
    assert space["som"]["neighbourhood"] == "paper" and space["som"]["sigma0"] == 5.0
    assert space["tsne"]["perplexity"] == 30.0


def test_single_source_and_subsample(tmp_path):
    features, pixels, labels, _ = _synthetic(n=90)
    result = latent_maps(features, pixels, labels, ["only"] * 90, tmp_path / "one.png", title="one", max_points=45,
                         som_shape=(4, 4), som_epochs=3)
    assert result["points"] == 45 and result["sources"] == {"only": 45}
    for space in result["spaces"].values():
        assert space["silhouette_by_source"] is None and space["silhouette_by_class"] is not None
        assert space["tsne"]["perplexity"] == pytest.approx(44 / 3)
    assert any("single source" in note for note in result["notes"])


def test_same_seed_same_result(tmp_path):
    features, pixels, labels, sources = _synthetic(n=60)
    kwargs = dict(title="seed", som_shape=(4, 4), som_epochs=3, seed=7)
    first = latent_maps(features, pixels, labels, sources, tmp_path / "a.png", **kwargs)
    second = latent_maps(features, pixels, labels, sources, tmp_path / "b.png", **kwargs)
    first.pop("png"), second.pop("png")
    assert first == second
    data = np.random.default_rng(0).normal(size=(30, 4))
    a, b = (SelfOrganisingMap(3, 3, 4, seed=2).fit(data, 4, shuffle_seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.winners(data), b.winners(data))
