"""Fine-tuning a copy of a backbone module (DreamBooth, Custom Diffusion, ADI's action-different tuning)
without ever writing the backbone's own weights, and storing only the changed tensors."""
from __future__ import annotations

import copy
import warnings
import weakref
from types import SimpleNamespace
from typing import Callable, Mapping

import torch

from actionbench.errors import ArtifactError


def trainable_copy(module: torch.nn.Module, trainable: Callable[[str], bool] | None = None) -> torch.nn.Module:
    """A deep copy of a frozen backbone module, in fp32, to fine-tune; the backbone's own module is never touched.

    Args:
        trainable: parameter name -> whether it learns; ``None`` makes every parameter trainable.
            The others keep ``requires_grad=False``, so an optimiser over the trainable ones leaves them bit-identical.
    """
    clone = copy.deepcopy(module)
    # torch's own .to: diffusers' override warns about fp32-kept modules, irrelevant for an all-fp32 copy
    torch.nn.Module.to(clone, dtype=torch.float32)
    for name, param in clone.named_parameters():
        param.requires_grad_(trainable is None or bool(trainable(name)))
    return clone.train()


class StackedCopies:
    """M fine-tuned copies of one UNet that differ only in some tensors, run as one batch (``torch.func.vmap``).

    ``params`` maps a parameter name to a tensor of shape (M, *shape): row m of an input batch goes through
    copy m. Called like the UNet (``sample``, ``timestep``, ``encoder_hidden_states``), it returns an object
    with ``.sample``, so ``denoising_loss(..., unet=copies)`` trains M copies in one forward and backward.
    The copies' losses are independent: the gradient of their sum is each copy's own gradient, and AdamW
    works element by element, so M copies trained together take the steps M separate runs would take
    (equal within float tolerance, not bit for bit).
    """

    def __init__(self, unet: torch.nn.Module, names: list[str], copies: int) -> None:
        base = dict(unet.named_parameters())
        self.unet = unet.requires_grad_(False)
        self.params = {n: base[n].detach().unsqueeze(0).repeat(copies, *[1] * base[n].dim()).requires_grad_(True)
                       for n in names}

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    def copy(self, m: int) -> dict[str, torch.Tensor]:
        return {name: value[m].detach() for name, value in self.params.items()}

    def __call__(self, sample, timestep, encoder_hidden_states, cross_attention_kwargs=None):
        from torch.func import functional_call, vmap

        def one(params, x, t, text):
            return functional_call(self.unet, params, (x[None], t[None], text[None]),
                                   {"cross_attention_kwargs": cross_attention_kwargs}).sample[0]

        with warnings.catch_warnings():  # torch has no batching rule for CPU flash attention: it loops, correctly
            warnings.filterwarnings("ignore", message=".*performance drop.*batching rule.*")
            return SimpleNamespace(sample=vmap(one)(self.params, sample, timestep, encoder_hidden_states))


def trainable_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def changed_tensors(module: torch.nn.Module, base: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """State-dict delta of a fine-tuned copy against the module it was copied from.

    Returns ``prefix + name`` -> new value for every parameter that differs bitwise from ``base``
    (compared in the copy's dtype, so an fp16 backbone and its fp32 copy start equal). Unchanged
    parameters are left out: loading the delta into a fresh copy of ``base`` (``patched_copy``)
    gives back the fine-tuned module.
    """
    base_params = dict(base.named_parameters())
    delta = {}
    for name, param in module.named_parameters():
        if not torch.equal(param.detach(), base_params[name].detach().to(param.dtype)):
            delta[prefix + name] = param.detach()
    return delta


@torch.no_grad()
def patched_copy(base: torch.nn.Module, tensors: Mapping[str, torch.Tensor], prefix: str = "") -> torch.nn.Module:
    """A fresh copy of ``base`` (same dtype and device, frozen) with the delta's ``prefix``-ed tensors loaded.

    Raises:
        ArtifactError: the delta names a parameter ``base`` lacks, or has the wrong shape.
    """
    clone = copy.deepcopy(base)
    params = dict(clone.named_parameters())
    for key, value in tensors.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name not in params or tuple(params[name].shape) != tuple(value.shape):
            raise ArtifactError(
                f"artifact tensor '{key}' {tuple(value.shape)} does not fit this backbone's {type(base).__name__}"
                + (f" ({tuple(params[name].shape)})" if name in params else " (no such parameter)")
                + "; generate with the backbone the artifact was learned on"
            )
        params[name].copy_(value.to(device=params[name].device, dtype=params[name].dtype))
    return clone.requires_grad_(False).eval()


class ArtifactModels:
    """Generation-time models built from one artifact, reused while the same ``Artifact`` object comes back.

    The runner passes one artifact object for every subject of an action, so a patched UNet is
    built once per action, not once per subject. One entry at a time: the previous models are
    dropped before the next are built (a patched SD UNet is gigabytes).
    """

    def __init__(self) -> None:
        self._artifact: weakref.ref | None = None
        self._models = None

    def get(self, artifact, build: Callable[[], object]):
        if self._artifact is not None and self._artifact() is artifact:
            return self._models
        self._artifact = self._models = None
        models = build()
        self._artifact, self._models = weakref.ref(artifact), models
        return models
