from __future__ import annotations

from scvi.train import TrainingPlan


class CaLMFlowTrainingPlan(TrainingPlan):
    """scvi-tools' :class:`~scvi.train.TrainingPlan` with defaults fit for a transformer.

    scvi-tools defaults to Adam with ``eps=0.01`` and a 400-epoch KL warm-up, both tuned for
    VAEs; here the optimizer is AdamW with ``eps=1e-8``, no weight decay, and the KL weight
    (``max_kl_weight``) is warmed up linearly over ``n_steps_kl_warmup`` steps. Everything
    else (logging of ``reconstruction_loss`` and ``kl_local`` per split into
    ``model.history``, LR-on-plateau options) is scvi-tools'.
    """

    def __init__(
        self,
        module,
        *,
        optimizer: str = "AdamW",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        eps: float = 1e-8,
        n_steps_kl_warmup: int | None = None,
        n_epochs_kl_warmup: int | None = None,
        max_kl_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(
            module,
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            eps=eps,
            n_steps_kl_warmup=n_steps_kl_warmup,
            n_epochs_kl_warmup=n_epochs_kl_warmup,
            max_kl_weight=max_kl_weight,
            **kwargs,
        )
