"""ReVersion (Huang et al., "ReVersion: Diffusion-Based Relation Inversion from Images", 2023,
arXiv 2303.13495), adapted from relations (prepositions) to actions (verbs), as the ADI paper's
ReVersion row does.

One relation token ``<R>`` is inverted, as in textual inversion, with two additions:

1. Relation-steering contrastive loss. The token embedding R is pulled toward a basis of
   words of the wanted part of speech (the paper: prepositions; here: action verbs such as
   cheering, saluting, squatting) and pushed away from the other words of the exemplar's
   caption (the entities: "woman", "background", ...). Multi-positive InfoNCE on cosine
   similarities, with gradients to R only:

       L_steer = -log( sum_i exp(R.P_i / tau) / (sum_i exp(R.P_i / tau) + sum_k exp(R.N_k / tau)) )

   P_i: sub-token embeddings of ``num_positives`` basis words drawn per exemplar in the batch;
   N_k: the caption's tokens minus stop words, basis words, padding and special tokens.
2. Relation-focal importance sampling. Timesteps are drawn from
   f(t) = (1 - alpha cos(pi t / T)) / T, t = 0 .. T-1, which puts more weight on the high-noise
   steps (large t) where layout and pose are decided: with alpha = 0.5 the last quarter of the
   timesteps is drawn about 2.6 times as often as the first.

Total loss: L = w_denoise * || target - eps_theta(z_t, t, y(R)) ||^2 + w_steer * L_steer.
Generation: "{subject} <R>".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from actionbench.errors import ConfigError
from actionbench.api.method import Artifact, Method, MethodConfig
from actionbench.training import (
    ExemplarSet,
    denoising_loss,
    draw_noise,
    draw_rows,
    encode_prompts,
    fixed_generator,
    make_optimizer,
    placeholder_for,
    run_training,
    sample_images,
    token_embedding_module,
    word_embedding,
)

ACTION_BASIS = (
    # Actions of ActionBench, then other body actions: the "action" part of speech the token is
    # steered toward (ReVersion's basis is a list of ~60 prepositions).
    "cheering", "pointing", "meditating", "praying", "saluting", "sitting", "squatting",
    "standing", "jumping", "running", "walking", "dancing", "kneeling", "lying", "crouching", "bending",
    "stretching", "waving", "clapping", "bowing", "kicking", "punching", "climbing", "crawling", "lifting",
    "throwing", "catching", "reaching", "leaning", "lunging", "balancing", "hopping", "skipping", "diving",
    "swimming", "boxing", "hugging", "flexing", "posing", "gesturing",
)
STOP_WORDS = (
    # English function words (the NLTK stop-word list ReVersion also uses), left out of the negatives.
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers "
    "herself it its itself they them their theirs themselves what which who whom this that these those am is are "
    "was were be been being have has had having do does did doing a an the and but if or because as until while "
    "of at by for with about against between into through during before after above below to from up down in "
    "out on off over under again further then once here there when where why how all any both each few more most "
    "other some such no nor not only own same so than too very s t can will just don should now"
).split()


@dataclass(frozen=True)
class ReVersionConfig(MethodConfig):
    # Defaults: the training command of the official README (ziqihuangg/ReVersion, SD 1.5):
    # --initializer_token and --train_batch_size 2 --gradient_accumulation_steps 4 --max_train_steps 3000
    # --learning_rate 2.5e-04 --scale_lr (x 8 = 2e-3) --importance_sampling --denoise_loss_weight 1.0
    # --steer_loss_weight 0.01 --num_positives 4 --temperature 0.07; train.py defaults
    # --scaled_cosine_alpha 0.5 (the paper's alpha) and --adam_weight_decay 1e-2; no flips.
    initializer_word: str = "and"
    """Word whose embedding initialises <R> (ReVersion's README uses 'and')."""
    train_steps: int = 3000
    """Optimisation steps (README: 3000)."""
    learning_rate: float = 2e-3
    """AdamW learning rate for <R> (README: 2.5e-4 scaled by batch 2 x accumulation 4)."""
    batch_size: int = 8
    """Exemplars per step, drawn with replacement (README: 2 x 4 accumulation steps)."""
    weight_decay: float = 1e-2
    """AdamW weight decay on <R> (train.py's --adam_weight_decay)."""
    denoise_loss_weight: float = 1.0
    """Weight of the denoising loss (README: 1.0)."""
    steer_loss_weight: float = 0.01
    """Weight of the relation-steering contrastive loss, lambda_steer (README: 0.01); 0 turns it off."""
    num_positives: int = 4
    """Basis words drawn per exemplar as positives of L_steer (README: 4)."""
    temperature: float = 0.07
    """InfoNCE temperature tau of L_steer (README and train.py: 0.07)."""
    importance_sampling: bool = True
    """Relation-focal importance sampling of timesteps; off = uniform as in textual inversion."""
    importance_alpha: float = 0.5
    """Skew alpha of f(t) = (1 - alpha cos(pi t / T)) / T (paper and train.py: 0.5)."""
    action_basis: tuple[str, ...] = ACTION_BASIS
    """Positive words of L_steer: action verbs here, where ReVersion uses prepositions."""
    flip: bool = False
    """Add horizontal flips of the exemplars (ReVersion: none, flips may change a relation)."""

    SMOKE = {"train_steps": 2, "batch_size": 2}


# --- relation-focal importance sampling ----------------------------------------------------


def relation_focal_probabilities(num_train_timesteps: int, alpha: float) -> torch.Tensor:
    """P(t) proportional to f(t) = (1 - alpha cos(pi t / T)) / T for t = 0 .. T-1 (sums to 1)."""
    if not -1.0 <= alpha <= 1.0:
        raise ConfigError(f"importance_alpha must lie in [-1, 1] so that f(t) >= 0, got {alpha}; ReVersion uses 0.5")
    t = torch.arange(num_train_timesteps, dtype=torch.float64)
    f = (1.0 - alpha * torch.cos(math.pi * t / num_train_timesteps)) / num_train_timesteps
    return (f / f.sum()).float()


def sample_timesteps(probabilities: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.multinomial(probabilities, n, replacement=True, generator=generator)


# --- relation-steering contrastive learning ----------------------------------------------


def steering_loss(token: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                  temperature: float) -> torch.Tensor:
    """Multi-positive InfoNCE of the token against positive and negative word embeddings.

    Args:
        token: (D,) the learned embedding; the only input that receives gradients.
        positives, negatives: (P, D) and (N, D) word embeddings (treated as constants).
    Returns:
        logsumexp over all similarities minus logsumexp over the positives' (>= 0).
    """
    if positives.shape[0] == 0:
        raise ConfigError("relation steering needs at least one positive word; check action_basis")
    r = F.normalize(token.float(), dim=-1)
    words = F.normalize(torch.cat([positives, negatives]).detach().float(), dim=-1)
    logits = words @ r / temperature
    return torch.logsumexp(logits, 0) - torch.logsumexp(logits[: positives.shape[0]], 0)


class SteeringWords:
    """Token ids for L_steer: the basis words (positives) and each exemplar's caption words (negatives)."""

    def __init__(self, tokenizer, basis: Sequence[str], templates: Sequence[str]):
        if not basis:
            raise ConfigError("action_basis is empty; give action words, e.g. --set action_basis=cheering,sitting")

        def ids(text: str) -> list[int]:
            # no padding: SD 2's tokenizer pads with "!", which must not become a negative
            return tokenizer(text, add_special_tokens=False, truncation=True,
                             max_length=tokenizer.model_max_length - 2).input_ids

        self.basis = list(basis)
        self.basis_ids = [ids(word) for word in self.basis]
        stop = {i for word in STOP_WORDS for i in ids(word)} | {i for word in self.basis_ids for i in word}
        letters = lambda i: any(c.isalpha() for c in tokenizer.convert_ids_to_tokens(i).replace("</w>", ""))  # noqa: E731
        self.negative_ids = [[i for i in ids(t.replace("{}", " ")) if i not in stop and letters(i)] for t in templates]

    def positives(self, rows: int, per_row: int, generator: torch.Generator) -> list[int]:
        """Sub-token ids of ``per_row`` distinct basis words for each of ``rows`` exemplars."""
        if not 1 <= per_row <= len(self.basis):
            raise ConfigError(f"num_positives must be between 1 and the {len(self.basis)} action_basis words, got {per_row}")
        out: list[int] = []
        for _ in range(rows):
            for w in torch.randperm(len(self.basis), generator=generator)[:per_row].tolist():
                out.extend(self.basis_ids[w])
        return out

    def negatives(self, rows: Sequence[int]) -> list[int]:
        return [i for r in rows for i in self.negative_ids[r]]


def embeddings_of(backbone, ids: Sequence[int]) -> torch.Tensor:
    table = token_embedding_module(backbone.text_encoder).weight
    return table[torch.as_tensor(list(ids), dtype=torch.long, device=table.device)].detach().float()


def reversion_objective(backbone, config: ReVersionConfig, token: str, vector: torch.Tensor, latents: torch.Tensor,
                        captions: Sequence[str], draw, positive_ids: Sequence[int],
                        negative_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, denoising, steering) losses for one batch with its noise, timesteps and words drawn."""
    text = encode_prompts(backbone, captions, {token: vector})
    denoise = denoising_loss(backbone, latents, text, draw)
    if config.steer_loss_weight == 0:
        steer = denoise.new_zeros(())
    else:
        steer = steering_loss(vector, embeddings_of(backbone, positive_ids), embeddings_of(backbone, negative_ids),
                              config.temperature)
    return config.denoise_loss_weight * denoise + config.steer_loss_weight * steer, denoise, steer


class ReVersion(Method):
    name = "reversion"
    Config = ReVersionConfig
    summary = "one token, steered toward action verbs, high-noise timesteps favoured (Huang et al. 2023)"
    trains = "one token embedding (D floats)"
    steps_field, lr_field = "train_steps", "learning_rate"

    def customize(self, action, out_dir) -> Artifact:
        cfg, backbone = self.config, self.backbone
        token = placeholder_for(action.id, self.name)
        exemplars = ExemplarSet.from_action(backbone, action, flip=cfg.flip)
        # Words for L_steer: positives from the action basis, negatives from each exemplar's caption.
        words = SteeringWords(backbone.tokenizer, cfg.action_basis, exemplars.templates)
        # Relation-focal importance sampling: P(t) ~ 1 - alpha cos(pi t / T).
        probabilities = relation_focal_probabilities(backbone.scheduler.config.num_train_timesteps, cfg.importance_alpha)

        # The only trainable tensor: <R>'s embedding, initialised from a word.
        vector = torch.nn.Parameter(word_embedding(backbone, cfg.initializer_word).to(backbone.device))
        optimizer = make_optimizer([vector], cfg.learning_rate, cfg.weight_decay)
        generator = fixed_generator(cfg.seed)
        parts: dict[str, list[float]] = {"denoise": [], "steer": []}

        def step(_: int) -> torch.Tensor:
            rows = draw_rows(len(exemplars), cfg.batch_size, generator)
            latents = exemplars.sample_latents(rows, generator)
            timesteps = sample_timesteps(probabilities, len(rows), generator) if cfg.importance_sampling else None
            draw = draw_noise(backbone, latents, generator, timesteps=timesteps)
            positives = words.positives(len(rows), cfg.num_positives, generator)
            total, denoise, steer = reversion_objective(backbone, cfg, token, vector, latents,
                                                        exemplars.captions(rows, token), draw, positives,
                                                        words.negatives(rows))
            parts["denoise"].append(float(denoise.detach()))
            parts["steer"].append(float(steer.detach()))
            return total

        def heldout(g: torch.Generator) -> torch.Tensor:  # the plain exemplar denoising loss (uniform t)
            rows = draw_rows(len(exemplars), cfg.batch_size, g)
            latents = exemplars.sample_latents(rows, g)
            text = encode_prompts(backbone, exemplars.captions(rows, token), {token: vector})
            return denoising_loss(backbone, latents, text, draw_noise(backbone, latents, g))

        history = run_training(step, optimizer, cfg.train_steps, desc=f"{self.name} {action.id}", heldout=heldout)
        meta = {"token": token, "loss_history": history, "denoise_loss_history": parts["denoise"],
                "steer_loss_history": parts["steer"]}
        return self.new_artifact(action, tensors={"token_embedding": vector.detach()}, meta=meta).save(out_dir)

    def generate(self, artifact: Artifact, subject, seeds: Sequence[int]) -> list:
        self.check_artifact(artifact)
        token = artifact.meta["token"]
        vector = artifact.tensors["token_embedding"].to(self.backbone.device)
        prompt = subject.prompt(token)
        return sample_images(self.backbone, encode_prompts(self.backbone, [prompt], {token: vector}), seeds, self.config.sampler)
