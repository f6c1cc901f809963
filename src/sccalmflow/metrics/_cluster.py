"""Cluster-based metrics (Leiden KL, inception score) and the joint UMAP space of the paper."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..utils import keep_torch_threads
from ._utils import ArrayLike, as_matrix, check_pair


@dataclass
class ClusterClassifier:
    """Leiden clusters of real cells and an MLP trained to predict them.

    Attributes
    ----------
    labels
        Leiden cluster of each real cell (integers ``0..n_clusters-1``).
    n_clusters
        Number of Leiden clusters.
    accuracy
        Accuracy of ``model`` on the held-out real cells (``test_size`` of them, stratified).
    model
        Fitted :class:`sklearn.pipeline.Pipeline` (standardisation + MLP), or ``None`` when
        there is a single cluster.
    resolution, seed
        Leiden resolution and the seed used everywhere.
    """

    labels: np.ndarray
    n_clusters: int
    accuracy: float
    model: Any
    resolution: float
    seed: int

    def predict_proba(self, x: ArrayLike) -> np.ndarray:
        """Cluster probabilities, ``cells x n_clusters`` (columns are cluster ids)."""
        x = as_matrix(x, name="x")
        out = np.zeros((x.shape[0], self.n_clusters))
        if self.model is None:
            out[:, 0] = 1.0
            return out
        if x.shape[1] != self.model.n_features_in_:
            raise ValueError(
                f"x has {x.shape[1]} features, the classifier was trained on "
                f"{self.model.n_features_in_}."
            )
        proba = self.model.predict_proba(x)
        out[:, self.model.classes_.astype(int)] = proba
        return out

    def predict(self, x: ArrayLike) -> np.ndarray:
        """Most probable cluster of each cell."""
        return self.predict_proba(x).argmax(axis=1)


def fit_cluster_classifier(
    real: ArrayLike,
    *,
    resolution: float = 0.3,
    seed: int = 0,
    n_neighbors: int = 15,
    hidden_layer_sizes: tuple[int, ...] = (128,),
    test_size: float = 0.2,
    max_iter: int = 500,
    obsm: str | None = None,
    layer: str | None = None,
) -> ClusterClassifier:
    """Cluster real cells with Leiden and train an MLP classifier on the clusters.

    Leiden: scanpy's ``pp.neighbors`` (``n_neighbors``, Euclidean, on the given features)
    then ``tl.leiden`` (igraph flavour, 2 iterations, ``resolution``), both seeded. The
    classifier is :class:`sklearn.neural_network.MLPClassifier` after standardisation, with
    ``hidden_layer_sizes=(128,)`` by default — two weight layers (input -> 128 ReLU -> softmax),
    the paper's "2-layer MLP" — trained with Adam on a stratified ``1 - test_size`` split;
    ``accuracy`` is measured on the rest.

    Parameters
    ----------
    real
        Real cells, ``cells x features`` (or AnnData with ``obsm``/``layer``).
    resolution
        Leiden resolution (0.3 in the paper).
    seed
        Seed of the neighbour graph, Leiden, the split and the MLP.
    n_neighbors
        Neighbours of the kNN graph.
    hidden_layer_sizes
        Hidden layers of the MLP.
    test_size
        Fraction of real cells held out to measure the accuracy.
    max_iter
        Maximum MLP epochs.
    obsm, layer
        For AnnData input: the representation to use.

    Returns
    -------
    ClusterClassifier
    """
    import anndata as ad
    import scanpy as sc
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = as_matrix(real, obsm=obsm, layer=layer, name="real")
    if x.shape[0] < 10:
        raise ValueError(f"Need at least 10 real cells to cluster, got {x.shape[0]}.")
    tmp = ad.AnnData(x.astype(np.float32))
    with warnings.catch_warnings(), keep_torch_threads():
        warnings.simplefilter("ignore")
        sc.pp.neighbors(
            tmp, n_neighbors=min(int(n_neighbors), x.shape[0] - 1), use_rep="X", random_state=seed
        )
        sc.tl.leiden(
            tmp,
            resolution=resolution,
            flavor="igraph",
            n_iterations=2,
            directed=False,
            random_state=seed,
        )
    labels = tmp.obs["leiden"].astype(int).to_numpy()
    n_clusters = int(labels.max()) + 1
    if n_clusters == 1:
        return ClusterClassifier(labels, 1, 1.0, None, float(resolution), seed)
    counts = np.bincount(labels, minlength=n_clusters)
    stratify = labels if counts.min() >= 2 else None
    idx_train, idx_test = train_test_split(
        np.arange(x.shape[0]), test_size=test_size, random_state=seed, stratify=stratify
    )
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=hidden_layer_sizes, max_iter=max_iter, random_state=seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[idx_train], labels[idx_train])
    accuracy = float((model.predict(x[idx_test]) == labels[idx_test]).mean())
    return ClusterClassifier(labels, n_clusters, accuracy, model, float(resolution), seed)


def _frequencies(labels: np.ndarray, n_clusters: int, pseudocount: float) -> np.ndarray:
    counts = np.bincount(labels, minlength=n_clusters).astype(np.float64) + pseudocount
    return counts / counts.sum()


def _inception_score(proba: np.ndarray) -> float:
    marginal = proba.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(proba > 0, proba * (np.log(proba) - np.log(marginal)), 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))


@dataclass
class LeidenKLResult:
    r"""Result of :func:`leiden_kl`.

    Attributes
    ----------
    kl
        :math:`\mathrm{KL}(p_\text{real} \,\|\, p_\text{generated})` of cluster frequencies.
    accuracy
        Held-out accuracy of the cluster classifier on real cells.
    n_clusters
        Number of Leiden clusters of the real cells.
    inception_score
        Inception score of the generated cells under the same classifier.
    freq_real, freq_generated
        The (smoothed) cluster frequencies.
    classifier
        The fitted :class:`ClusterClassifier` (reuse it for other generated sets).
    """

    kl: float
    accuracy: float
    n_clusters: int
    inception_score: float
    freq_real: np.ndarray
    freq_generated: np.ndarray
    classifier: ClusterClassifier = field(repr=False)

    def as_dict(self) -> dict[str, float]:
        """The scalar fields."""
        return {
            "leiden_kl": self.kl,
            "classifier_accuracy": self.accuracy,
            "n_clusters": float(self.n_clusters),
            "inception_score": self.inception_score,
        }


def leiden_kl(
    real: ArrayLike,
    generated: ArrayLike,
    *,
    resolution: float = 0.3,
    seed: int = 0,
    pseudocount: float = 0.5,
    real_frequencies: Literal["classifier", "leiden"] = "classifier",
    classifier: ClusterClassifier | None = None,
    obsm: str | None = None,
    layer: str | None = None,
    **classifier_kwargs: Any,
) -> LeidenKLResult:
    r"""Leiden KL: do generated cells populate the real cell clusters in the right proportions?

    1. Cluster the real cells with Leiden (``resolution``) and train an MLP to predict the
       clusters (:func:`fit_cluster_classifier`; its held-out accuracy is reported).
    2. Assign every generated cell (and every real cell) to its most probable cluster.
    3. Return

       .. math::

           \mathrm{KL}(p_r \,\|\, p_g) = \sum_c p_r(c) \log\frac{p_r(c)}{p_g(c)},\qquad
           p(c) = \frac{N_c + \alpha}{N + \alpha K}

       in nats, with :math:`\alpha` = ``pseudocount`` (0.5, the Jeffreys prior; 0 gives the
       raw, possibly infinite, KL) and :math:`K` clusters. The direction is real‖generated:
       clusters of real cells that the generator misses (mode dropping) are penalised most.

    With ``real_frequencies="classifier"`` (default) the real frequencies also come from
    the classifier's predictions, so classifier errors affect both sides alike and
    generated = real gives exactly 0; ``"leiden"`` uses the Leiden labels themselves.

    Parameters
    ----------
    real, generated
        ``cells x features`` sets in the same space (e.g. PCA), or AnnData with ``obsm``.
    resolution, seed
        Leiden resolution and seed (also seeds the classifier).
    pseudocount
        Added to every cluster count before normalising.
    real_frequencies
        Where the real cluster frequencies come from (see above).
    classifier
        A fitted :class:`ClusterClassifier` to reuse (skips step 1).
    obsm, layer
        For AnnData input: the representation to use.
    **classifier_kwargs
        Passed to :func:`fit_cluster_classifier`.

    Returns
    -------
    LeidenKLResult
        ``kl``, ``accuracy``, ``n_clusters``, ``inception_score`` and the frequencies.
    """
    if pseudocount < 0:
        raise ValueError("pseudocount must be >= 0.")
    if real_frequencies not in ("classifier", "leiden"):
        raise ValueError("real_frequencies must be 'classifier' or 'leiden'.")
    x = as_matrix(real, obsm=obsm, layer=layer, name="real")
    g = as_matrix(generated, obsm=obsm, layer=layer, name="generated")
    check_pair(x, g, ("real", "generated"))
    if classifier is None:
        classifier = fit_cluster_classifier(
            x, resolution=resolution, seed=seed, **classifier_kwargs
        )
    k = classifier.n_clusters
    proba_g = classifier.predict_proba(g)
    if real_frequencies == "classifier":
        labels_r = classifier.predict(x)
    else:
        labels_r = classifier.labels
        if labels_r.shape[0] != x.shape[0]:
            raise ValueError("real_frequencies='leiden' needs the real cells the classifier saw.")
    p_r = _frequencies(labels_r, k, pseudocount)
    p_g = _frequencies(proba_g.argmax(axis=1), k, pseudocount)
    with np.errstate(divide="ignore"):
        kl = float(np.sum(np.where(p_r > 0, p_r * (np.log(p_r) - np.log(p_g)), 0.0)))
    return LeidenKLResult(
        kl=kl,
        accuracy=classifier.accuracy,
        n_clusters=k,
        inception_score=_inception_score(proba_g),
        freq_real=p_r,
        freq_generated=p_g,
        classifier=classifier,
    )


def inception_score(
    real: ArrayLike | None,
    generated: ArrayLike,
    *,
    classifier: ClusterClassifier | None = None,
    resolution: float = 0.3,
    seed: int = 0,
    obsm: str | None = None,
    layer: str | None = None,
    **classifier_kwargs: Any,
) -> float:
    r"""Inception score of generated cells under the Leiden cluster classifier.

    .. math::

        \mathrm{IS} = \exp\Big(\frac{1}{N}\sum_i \mathrm{KL}\big(p(c \mid g_i) \,\|\,
        \bar p(c)\big)\Big), \qquad \bar p(c) = \frac{1}{N}\sum_i p(c \mid g_i)

    with :math:`p(c \mid g)` the MLP of :func:`fit_cluster_classifier` (fitted on ``real``
    unless ``classifier`` is given). It lies in :math:`[1, K]`: high when each generated
    cell is confidently assigned and the assignments are spread over many clusters.
    Compare with the score of held-out real cells, not with :math:`K`.

    Parameters
    ----------
    real
        Real cells used to fit the classifier (ignored, may be ``None``, when ``classifier``
        is given).
    generated
        Generated cells in the same space.
    classifier
        A fitted :class:`ClusterClassifier` (e.g. ``leiden_kl(...).classifier``).
    resolution, seed, obsm, layer, **classifier_kwargs
        As in :func:`leiden_kl`.

    Returns
    -------
    float
    """
    g = as_matrix(generated, obsm=obsm, layer=layer, name="generated")
    if classifier is None:
        if real is None:
            raise ValueError("Pass the real cells or a fitted `classifier`.")
        x = as_matrix(real, obsm=obsm, layer=layer, name="real")
        check_pair(x, g, ("real", "generated"))
        classifier = fit_cluster_classifier(
            x, resolution=resolution, seed=seed, **classifier_kwargs
        )
    return _inception_score(classifier.predict_proba(g))


def joint_umap(
    real: ArrayLike,
    generated: ArrayLike,
    *,
    n_components: int = 10,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    obsm: str | None = None,
    layer: str | None = None,
    **umap_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Embed real and generated cells with one UMAP fitted on both (the paper's metric space).

    The paper computes MMD and W2 "in a 10-dimensional UMAP fitted jointly on generated and
    real cells"; this fits :class:`umap.UMAP` (``n_components``, ``n_neighbors``,
    ``min_dist``, Euclidean, ``random_state=seed`` — deterministic, single-threaded) on the
    stacked sets and splits the embedding back. Note the space depends on the generated
    cells, so values are comparable between models only up to that dependence; fixed spaces
    (PCA) do not have this caveat.

    Parameters
    ----------
    real, generated
        ``cells x features`` sets (typically PCA coordinates), or AnnData with ``obsm``.
    n_components
        Embedding dimension.
    seed
        UMAP's ``random_state``.
    n_neighbors, min_dist, **umap_kwargs
        Passed to :class:`umap.UMAP`.
    obsm, layer
        For AnnData input: the representation to use.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(real_embedding, generated_embedding)``, float64, ``cells x n_components``.
    """
    x = as_matrix(real, obsm=obsm, layer=layer, name="real")
    g = as_matrix(generated, obsm=obsm, layer=layer, name="generated")
    check_pair(x, g, ("real", "generated"))
    n = x.shape[0] + g.shape[0]
    if n < n_components + 2:
        raise ValueError(
            f"joint_umap needs more than n_components + 1 = {n_components + 1} cells, got {n}."
        )
    import umap

    reducer = umap.UMAP(
        n_components=int(n_components),
        n_neighbors=min(int(n_neighbors), n - 1),
        min_dist=min_dist,
        random_state=seed,
        **umap_kwargs,
    )
    with warnings.catch_warnings(), keep_torch_threads():
        warnings.simplefilter("ignore")
        emb = np.asarray(reducer.fit_transform(np.vstack([x, g])), dtype=np.float64)
    return emb[: x.shape[0]], emb[x.shape[0] :]
