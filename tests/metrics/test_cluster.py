"""Tests of the cluster metrics (Leiden KL, inception score) and the joint UMAP."""

import numpy as np
import pytest

from sccalmflow import metrics as scm

# --------------------------------------------------------------------- cluster metrics


def _blobs(n_per, centers, seed):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, 0.3, size=(n, len(c))) for c, n in zip(centers, n_per)])


def test_leiden_kl_and_inception_score():
    centers = [(0, 0, 0, 0), (6, 0, 0, 0), (0, 6, 0, 0)]
    real = _blobs([80, 80, 80], centers, seed=0)
    same = _blobs([80, 80, 80], centers, seed=1)
    dropped = _blobs([120, 120, 0], centers, seed=2)
    res = scm.leiden_kl(real, same, resolution=0.3, seed=0)
    assert res.n_clusters >= 3 and res.accuracy > 0.95
    assert res.kl < 0.05
    res_drop = scm.leiden_kl(real, dropped, classifier=res.classifier)
    assert res_drop.kl > 0.3  # a missing mode is penalised in the real||generated direction
    assert 1.0 <= res.inception_score <= res.n_clusters
    assert scm.inception_score(None, same, classifier=res.classifier) == pytest.approx(
        res.inception_score
    )
    assert scm.leiden_kl(real, real, classifier=res.classifier).kl == pytest.approx(0.0)
    again = scm.leiden_kl(real, same, resolution=0.3, seed=0)
    assert again.kl == res.kl and again.accuracy == res.accuracy
    assert set(res.as_dict()) == {
        "leiden_kl",
        "classifier_accuracy",
        "n_clusters",
        "inception_score",
    }


def test_joint_umap_shapes_and_determinism(gauss):
    real, gen = gauss(60, 8), gauss(50, 8, shift=0.5, seed=1)
    er, eg = scm.joint_umap(real, gen, n_components=10, seed=0)
    assert er.shape == (60, 10) and eg.shape == (50, 10)
    er2, eg2 = scm.joint_umap(real, gen, n_components=10, seed=0)
    np.testing.assert_array_equal(er, er2)
    np.testing.assert_array_equal(eg, eg2)


def test_numba_calls_keep_torch_threads(gauss, de_data):
    """scanpy's Wilcoxon and umap-learn run numba code that resets torch's thread count."""
    import torch

    a = de_data()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        scm.top_de_genes(a, groupby="cond", group="stim", reference="ctrl", n=5)
        assert torch.get_num_threads() == 1
        scm.joint_umap(gauss(40, 6), gauss(30, 6, seed=1), n_components=2, seed=0)
        assert torch.get_num_threads() == 1
        scm.leiden_kl(gauss(40, 6), gauss(30, 6, seed=1), seed=0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
