from __future__ import annotations

import torch
from scvi.train import TrainingPlan


class CaLMFlowTrainingPlan(TrainingPlan):
    """scvi-tools' :class:`~scvi.train.TrainingPlan` with defaults fit for a transformer.

    scvi-tools defaults to Adam with ``eps=0.01`` and a 400-epoch KL warm-up, both tuned for
    VAEs; here the optimizer is AdamW with ``eps=1e-8``, no weight decay, and the KL weight
    (``max_kl_weight``) is warmed up linearly over ``n_steps_kl_warmup`` steps. Everything
    else (logging of ``reconstruction_loss`` and ``kl_local`` per split into
    ``model.history``, LR-on-plateau options) is scvi-tools'.

    The module's extra metrics (``mean_error``) are logged here rather than by scvi-tools'
    ``compute_and_log_metrics``, which runs under ``torch.inference_mode``: a value logged
    there becomes an inference tensor, and Lightning's DDP reduction at the end of the epoch
    updates it in place, which torch refuses (two-process training failed with "Inplace
    update to inference tensor outside InferenceMode").
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

    def compute_and_log_metrics(self, loss_output, metrics, mode: str) -> None:
        """scvi-tools' metrics, then the extra metrics logged outside inference mode."""
        extra = loss_output.extra_metrics
        loss_output.extra_metrics = {}
        try:
            super().compute_and_log_metrics(loss_output, metrics, mode)
        finally:
            loss_output.extra_metrics = extra
        for key, value in (extra or {}).items():
            if isinstance(value, torch.Tensor) and value.dim() == 0:
                self.log(
                    f"{key}_{mode}",
                    value.detach(),
                    on_step=self.on_step,
                    on_epoch=self.on_epoch,
                    batch_size=loss_output.n_obs_minibatch,
                    sync_dist=self.use_sync_dist,
                )
