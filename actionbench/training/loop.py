"""The denoising objective and the one optimisation loop every method uses."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F

from actionbench.errors import ConfigError, TrainingError
from actionbench.report import progress


@dataclass(frozen=True)
class NoiseDraw:
    """Noise and timesteps for a batch, drawn once so several losses can share them."""

    noise: torch.Tensor
    timesteps: torch.Tensor


def draw_noise(backbone, latents: torch.Tensor, generator: torch.Generator,
               timesteps: torch.Tensor | None = None, t_range: tuple[int, int] | None = None) -> NoiseDraw:
    noise = torch.randn(latents.shape, generator=generator, dtype=latents.dtype).to(latents.device)
    if timesteps is None:
        lo, hi = t_range or (0, backbone.scheduler.config.num_train_timesteps)
        timesteps = torch.randint(lo, hi, (latents.shape[0],), generator=generator)
    return NoiseDraw(noise, timesteps.to(latents.device).long())


def diffusion_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    if scheduler.config.prediction_type == "epsilon":
        return noise
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    raise ConfigError(f"unsupported prediction_type {scheduler.config.prediction_type!r}")


def denoising_loss(backbone, latents: torch.Tensor, encoder_hidden_states: torch.Tensor, draw: NoiseDraw,
                   unet=None, cross_attention_kwargs: dict | None = None, reduction: str = "mean") -> torch.Tensor:
    """|| target - unet(z_t, t, y) ||^2 with the scheduler's target (epsilon or v)."""
    unet = unet or backbone.unet
    scheduler = backbone.scheduler
    noisy = scheduler.add_noise(latents, draw.noise, draw.timesteps)
    pred = unet(noisy.to(unet.dtype), draw.timesteps, encoder_hidden_states.to(unet.dtype),
                cross_attention_kwargs=cross_attention_kwargs).sample.float()
    target = diffusion_target(scheduler, latents, draw.noise, draw.timesteps).float()
    if reduction == "none":
        return F.mse_loss(pred, target, reduction="none").mean(dim=tuple(range(1, pred.dim())))
    return F.mse_loss(pred, target, reduction="mean")


def make_optimizer(params: Iterable[torch.nn.Parameter] | Iterable[dict], learning_rate: float,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=learning_rate, betas=(0.9, 0.999), weight_decay=weight_decay, eps=1e-8)


@dataclass
class HeldoutTracker:
    """Held-out loss curves of every training loop run inside ``heldout_tracking``, one entry per loop:
    (label, [(step, loss)]). Used to set a world's protocol by a rule on the curves, never on scores."""

    every: int
    repeats: int = 8
    seed: int = 7_000_000
    curves: list[tuple[str, list[tuple[int, float]]]] = field(default_factory=list)


_tracker: HeldoutTracker | None = None


@contextlib.contextmanager
def heldout_tracking(every: int, repeats: int = 8) -> Iterator[HeldoutTracker]:
    """Inside the block, every training loop given a ``heldout`` loss evaluates it at step 0 and every
    ``every`` steps, on ``repeats`` fixed draws (rows, noise, timesteps) that training never uses."""
    global _tracker
    previous, _tracker = _tracker, HeldoutTracker(every, repeats)
    try:
        yield _tracker
    finally:
        _tracker = previous


def _record_heldout(points: list, step: int, heldout: Callable[[torch.Generator], torch.Tensor]) -> None:
    tracker = _tracker
    with torch.no_grad():
        values = [float(heldout(fixed_generator(tracker.seed + r))) for r in range(tracker.repeats)]
    points.append((step, sum(values) / len(values)))


def run_training(
    step_fn: Callable[[int], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    steps: int,
    desc: str,
    after_backward: Callable[[int], None] | None = None,
    max_grad_norm: float | None = None,
    params_for_clip: Sequence[torch.nn.Parameter] | None = None,
    heldout: Callable[[torch.Generator], torch.Tensor] | None = None,
) -> list[float]:
    """The one training loop: loss = step_fn(step); backward; optional gradient edit; step.

    ``after_backward`` may rewrite ``.grad`` (ADI's masks do). A non-finite loss stops
    training with a ``TrainingError`` naming the step, so the runner can skip this unit.
    ``heldout(generator)``: the exemplar denoising loss on a batch drawn with ``generator``, evaluated
    only inside ``heldout_tracking`` (it never touches the training draws). Returns the loss history.
    """
    history: list[float] = []
    track = heldout is not None and _tracker is not None
    if track:
        points: list[tuple[int, float]] = []
        _tracker.curves.append((desc, points))
        _record_heldout(points, 0, heldout)
    for step in progress(range(steps), desc=desc, total=steps, unit="steps",
                         extra=lambda _: f"loss {history[-1]:.4f}" if history else ""):
        optimizer.zero_grad(set_to_none=True)
        loss = step_fn(step)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"{desc}: loss became {loss.item()} at step {step}; lower the learning rate (--set learning_rate=...) "
                "or check the exemplar images"
            )
        loss.backward()
        if after_backward is not None:
            after_backward(step)
        if max_grad_norm is not None and params_for_clip:
            torch.nn.utils.clip_grad_norm_(params_for_clip, max_grad_norm)
        optimizer.step()
        history.append(float(loss.detach()))
        if track and ((step + 1) % _tracker.every == 0 or step + 1 == steps):
            _record_heldout(points, step + 1, heldout)
    return history


def fixed_generator(seed: int, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))
