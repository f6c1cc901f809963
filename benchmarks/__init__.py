"""Benchmark suites: CaLMFlow against baselines on Kang 2018 and on the paper's toy tasks.

    python -m benchmarks --suite kang-loo [--quick] [--out benchmarks/results]
    python -m benchmarks --suite all --quick
    python benchmarks/run.py --suite all --quick      # the same

Suites (each runs all of its methods in one process, on the same splits and seeds):

- ``kang-loo``: every Kang cell type with >= 40 IFN-beta cells is held out in turn (its
  IFN-beta cells); CaLMFlow with the model's defaults, Control, Additive, TrainMean and
  CFM (icfm / otcfm / sbcfm) are trained on the rest and predict the held-out cells; R²
  (both conventions) on all genes and on the top-100 DE genes, Pearson delta, E-distance,
  MMD and W2 in the shared 50-d PCA space.
- ``unconditional``: all Kang cells generated from noise (paper Table 3): MMD, W2,
  adaptive MMD and Leiden KL in a joint 10-d UMAP (and in PCA), CaLMFlow with 1 and 5
  trajectories vs the three CFM variants.
- ``gaussians``: 2 -> 3 and 2 -> 4 Gaussians in 100 dimensions (paper Table 2): W2, MMD,
  CaLMFlow with 1 and 8 trajectories vs CFM.
- ``moons``: 8 Gaussians -> 2 moons (2-d, torchcfm's samplers): trajectories 1 / 4 / 10
  (Table 7), a temperature sweep (Fig. 4), a time-point sweep (Fig. 8) and
  every next-state head.

Each suite writes ``<out>/<suite>.csv`` (one row per method x split x metric, with the
training and generation seconds), ``<out>/<suite>.md`` (tables, the paper's numbers beside
ours where the paper has them) and ``<out>/<suite>_*.png``; ``python -m benchmarks.seeds
SUITE CSV...`` gathers several seeds' CSVs into ``<suite>_seeds.md`` (mean ± sd over seeds,
CaLMFlow against the best CFM of each seed). Everything runs on CPU with one thread
(``OMP_NUM_THREADS=1``).

Layout: :mod:`benchmarks.config` (budgets per suite and mode, the paper's numbers),
:mod:`benchmarks.tasks` (data), :mod:`benchmarks.methods` (fitting / predicting, timed),
:mod:`benchmarks.records` (the CSV rows), :mod:`benchmarks.report` (markdown),
:mod:`benchmarks.figures`, :mod:`benchmarks.suites` (one module per suite) and
:mod:`benchmarks.compare` (do two result folders hold the same numbers?). The stand-alone
benchmarks :mod:`benchmarks.oversample`, :mod:`benchmarks.speed` and
:mod:`benchmarks.metrics_speed` run as ``python benchmarks/<name>.py`` or
``python -m benchmarks.<name>``.
"""
