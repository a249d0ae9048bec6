"""Stable Diffusion 2.1 at full size with random weights: memory and time of every method, before renting a GPU.

Builds SD 2.1 from its published configs (UNet 865.9M parameters, OpenCLIP ViT-H text encoder
340M, KL VAE 83.7M, DDIM with v-prediction, written out below: no download, no network), wraps
it in an ``actionbench.backbone.Backbone`` so every method runs on it unchanged, and for each
method, in a fresh subprocess, one after another (never two at once):

1. ``customize`` on one synthetic action (10 exemplars) with ONE training step and the smallest
   settings of its extras that still run them (class images: 1 at 1 DDIM step; ADI: one
   action-different image per exemplar, 1 tuning step, 1 DDIM step), at the method's real batch size;
2. a 2-step generation of one image (classifier-free guidance, so 2 UNet rows per step).

It records peak resident memory (``ru_maxrss``; and an RSS sampler every 10 ms that attributes
the peak to phases: build, VAE encode, class images, each training step split into
forward+backward and optimizer step, generation), process CPU and wall time. glibc's
``MALLOC_MMAP_THRESHOLD_`` is fixed at 128 KiB in the subprocess so freed tensors go back to
the system and the RSS follows the live memory, as a GPU allocator's peak would.

A method whose resident weights and optimizer states alone would pass ``--max-rss-gb`` (DreamBooth
in fp32 on a 24 GB machine) is not run: its states are computed (parameters x bytes per element
per state) and marked "computed, not measured". A subprocess that still passes the limit, or
leaves less than 1 GiB of the machine's memory available, stops itself.

``--fit A.json B.json`` reads two runs at different resolutions, fits each phase's transient
memory as a + b x latent pixels and prints the estimate at ``--target-resolution`` (768 px)
for fp32 and fp16 frozen weights (docs/reliability.md explains the model and its error bars).

How long: on 2 shared cores with ``--threads 2``, building the backbone takes ~30 s per method;
at 256 px one method takes 2-15 minutes (ADI most: 10 action-different tunings), all eight
about an hour; at 128 px about a third of that.

    python benchmarks/sd21_shape.py [--methods all|sd,adi,...] [--resolution 256] [--threads 2]
        [--dtype fp32|bf16|fp16] [--gradient-checkpointing] [--max-rss-gb 21] [--json OUT]
    python benchmarks/sd21_shape.py --fit r128.json r256.json [more.json ...] [--target-resolution 768]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ACTIONBENCH_NO_PROGRESS", "1")

from sd21_shape_fit import GIB, print_fit, resident_states  # noqa: E402  (after the offline settings)

# --- Stable Diffusion 2.1's published configs (stabilityai/stable-diffusion-2-1, 768-v) -----------

SD21_UNET_CONFIG = dict(  # unet/config.json
    sample_size=96,
    in_channels=4,
    out_channels=4,
    center_input_sample=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    only_cross_attention=False,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=32,
    norm_eps=1e-5,
    cross_attention_dim=1024,
    attention_head_dim=(5, 10, 20, 20),  # diffusers' legacy name: these are the head counts (64 wide)
    dual_cross_attention=False,
    use_linear_projection=True,
    num_class_embeds=None,
    upcast_attention=True,
)
SD21_VAE_CONFIG = dict(  # vae/config.json
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=768,
)
SD21_TEXT_CONFIG = dict(  # text_encoder/config.json: OpenCLIP ViT-H/14's text tower as a CLIPTextModel
    vocab_size=49408,
    hidden_size=1024,
    intermediate_size=4096,
    num_attention_heads=16,
    num_hidden_layers=23,
    projection_dim=512,
    max_position_embeddings=77,
    hidden_act="gelu",
    layer_norm_eps=1e-5,
    attention_dropout=0.0,
    dropout=0.0,
    initializer_range=0.02,
    initializer_factor=1.0,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)
SHAPE_ID = "sd21-shape"

# --- each method at one step ------------------------------------------------------------------

CLASS_IMAGES_AT_ONE_STEP = {"num_class_images": 1, "with_prior_preservation": True, "sampler.num_inference_steps": 1}
"""For a Config with class images (prior preservation): one, drawn in one DDIM step."""
EXTRAS_AT_ONE_STEP = {"adi": {"action_different.images": 1, "action_different.tune_steps": 1,
                              "action_different.inference_steps": 1}}
"""The smallest settings that still run a method's extra phases (beside its own training steps)."""


def method_names() -> list[str]:
    """The registered methods, in the registry's order; null trains nothing and generates as sd does."""
    from actionbench.api.registry import method_classes

    return [name for name, _ in method_classes() if name != "null"]


def customize_settings(name: str) -> dict:
    """One training step (the method's ``steps_field``) and the smallest extras that still run; batch sizes stay
    the method's own."""
    from actionbench.api.config import setting_names
    from actionbench.api.registry import get_method

    cls = get_method(name)
    settings = {cls.steps_field: 1} if cls.steps_field else {}
    if "num_class_images" in setting_names(cls.Config):
        settings.update(CLASS_IMAGES_AT_ONE_STEP)
    return {**settings, **EXTRAS_AT_ONE_STEP.get(name, {})}


GENERATION_STEPS = 2


def build_sd21_shape(resolution: int, dtype: str = "fp32", gradient_checkpointing: bool = False,
                     vae_slicing: bool = False, seed: int = 0):
    """SD 2.1's modules at full size, randomly initialised (seeded), as an ``actionbench`` ``Backbone``."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from actionbench.backbone import SD21_SCHEDULER_CONFIG, Backbone, apply_options, build_tiny_tokenizer, seeded

    with seeded(seed):
        unet = UNet2DConditionModel(**SD21_UNET_CONFIG)
    with seeded(seed + 1):
        vae = AutoencoderKL(**SD21_VAE_CONFIG)
    with seeded(seed + 2):
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD21_TEXT_CONFIG))
    backbone = Backbone(
        id=SHAPE_ID, tokenizer=build_tiny_tokenizer(), text_encoder=text_encoder, unet=unet, vae=vae,
        scheduler=DDIMScheduler(**SD21_SCHEDULER_CONFIG), resolution=resolution, extra={"seed": seed},
        pose_controlnet="from_unet",  # random ControlNet at SD 2.1 size, copied from the UNet
    )
    torch_dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    if torch_dtype != torch.float32:  # as load_backbone does for --dtype
        backbone.dtype = torch_dtype
        for module in (backbone.text_encoder, backbone.unet, backbone.vae):
            module.to(dtype=torch_dtype)
    apply_options(backbone, gradient_checkpointing=gradient_checkpointing, vae_slicing=vae_slicing)
    return backbone.freeze()


def parameter_counts() -> dict[str, int]:
    """Parameters of each module and of each method's trainable part, counted on the meta device (no memory)."""
    import torch
    from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from actionbench.methods.controlnet import conditioning_channels
    from actionbench.methods.custom_diffusion import is_cross_attention_kv

    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD21_UNET_CONFIG)
        vae = AutoencoderKL(**SD21_VAE_CONFIG)
        text = CLIPTextModel(CLIPTextConfig(**SD21_TEXT_CONFIG))
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=conditioning_channels(8),
                                               load_weights_from_unet=False)

    def count(module, keep=lambda name: True) -> int:
        return sum(p.numel() for name, p in module.named_parameters() if keep(name))

    return {
        "unet": count(unet), "text_encoder": count(text), "vae": count(vae), "controlnet": count(controlnet),
        "unet_attention": count(unet, lambda n: ".attn1." in n or ".attn2." in n),  # ADI's action-different tuning
        "unet_cross_attention_kv": count(unet, is_cross_attention_kv),  # Custom Diffusion
        "token": SD21_TEXT_CONFIG["hidden_size"], "cross_attention_layers": 16,
    }


# --- measuring inside one subprocess ------------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mem_available_bytes() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 1 << 62


class Monitor:
    """Samples this process's RSS every ``interval`` s; each open window keeps the peak seen while it was open.

    Also the safety valve: past ``limit`` bytes of RSS, or under 1 GiB available on the machine, the
    process writes what it has to ``abort_path`` and exits, so a measurement never takes the machine down.
    """

    def __init__(self, limit: int, abort_path: Path, interval: float = 0.01):
        self.limit, self.abort_path, self.interval = limit, abort_path, interval
        self.records: list[dict] = []
        self._open: list[dict] = []
        self._lock = threading.Lock()
        self._context: dict = {}
        threading.Thread(target=self._run, daemon=True).start()

    def _sample(self) -> int:
        rss = rss_bytes()
        with self._lock:
            for window in self._open:
                window["peak"] = max(window["peak"], rss)
        return rss

    def _run(self) -> None:
        checks = 0
        while True:
            rss = self._sample()
            checks += 1
            available = mem_available_bytes() if checks % 10 == 0 else 1 << 62
            if rss > self.limit or available < GIB:
                why = (f"RSS {rss / GIB:.1f} GiB passed --max-rss-gb" if rss > self.limit
                       else f"only {available / GIB:.1f} GiB left available on the machine")
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
                self.abort_path.write_text(json.dumps({**self._context, "status": f"stopped: {why}",
                                                       "ru_maxrss_gib": peak, "windows": self.records}, default=str))
                os._exit(3)
            time.sleep(self.interval)

    def set_context(self, **context) -> None:
        self._context.update(context)

    def open(self, name: str, **detail) -> dict:
        rss = self._sample()
        window = {"name": name, "start": rss, "peak": rss, "wall0": time.perf_counter(),
                  "cpu0": time.process_time(), **detail}
        with self._lock:
            self._open.append(window)
        return window

    def close(self, window: dict) -> dict:
        rss = self._sample()
        with self._lock:
            self._open.remove(window)
        record = {k: v for k, v in window.items() if k not in ("start", "peak", "wall0", "cpu0")}
        record.update(start_gib=window["start"] / GIB, peak_gib=window["peak"] / GIB, end_gib=rss / GIB,
                      rise_gib=(window["peak"] - window["start"]) / GIB,
                      wall_s=time.perf_counter() - window["wall0"], cpu_s=time.process_time() - window["cpu0"])
        self.records.append(record)
        return record


def instrument(monitor: Monitor, backbone) -> None:
    """Windows around each training step (split at the optimizer step), each VAE encode/decode, each text encoding.

    Benchmark-only instrumentation: training loops are found through ``actionbench.report.progress``
    as ``actionbench.training.loop`` and ``.prior`` call it (the module attribute is wrapped here), the
    optimizer step through torch's global optimizer hooks, the modules through forward hooks."""
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    import actionbench.training.loop as loop_module
    import actionbench.training.prior as prior_module

    current: dict = {}

    def wrap(original):
        def timed(iterable, desc, *args, **kwargs):
            is_step = kwargs.get("unit") == "steps"
            for item in original(iterable, desc, *args, **kwargs):
                outer = monitor.open(desc, kind="train step" if is_step else "loop item")
                if is_step:
                    current["forward_backward"] = monitor.open(f"{desc}: forward+backward", kind="forward+backward")
                try:
                    yield item
                finally:
                    if current.get("forward_backward") is not None:
                        monitor.close(current.pop("forward_backward"))
                    monitor.close(outer)
        return timed

    loop_module.progress = wrap(loop_module.progress)
    prior_module.progress = wrap(prior_module.progress)

    def before_step(optimizer, args, kwargs):
        window = current.pop("forward_backward", None)
        if window is not None:
            monitor.close(window)
        trainable = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
        current["optimizer"] = monitor.open("optimizer step", kind="optimizer step", trainable=trainable)

    def after_step(optimizer, args, kwargs):
        window = current.pop("optimizer", None)
        if window is not None:
            monitor.close(window)

    register_optimizer_step_pre_hook(before_step)
    register_optimizer_step_post_hook(after_step)
    hook_module(monitor, backbone.vae.encoder, "VAE encode")
    hook_module(monitor, backbone.vae.decoder, "VAE decode")
    hook_module(monitor, backbone.text_encoder, "text encoder")


def hook_module(monitor: Monitor, module, name: str) -> list:
    """A window around every forward of ``module`` (its batch size recorded); returns the hook handles."""
    stack: list[dict] = []

    def pre(_module, args, kwargs):
        first = args[0] if args else next(iter(kwargs.values()), None)
        stack.append(monitor.open(name, kind="module", batch=int(first.shape[0]) if hasattr(first, "shape") else None))

    def post(_module, args, kwargs, output):
        monitor.close(stack.pop())

    return [module.register_forward_pre_hook(pre, with_kwargs=True),
            module.register_forward_hook(post, with_kwargs=True)]


def measure_one(args) -> None:
    """The subprocess: build, customize (one step), reload the artifact as the runner does, generate 2 steps."""
    import gc

    import torch

    from actionbench.api.method import Artifact, build_config
    from actionbench.api.registry import get_method
    from actionbench.worlds.synthetic import load_synthetic

    torch.set_num_threads(args.threads)
    out = Path(args.child_out)
    monitor = Monitor(int(args.max_rss_gb * GIB), out)
    overrides = json.loads(args.child_overrides or "{}")
    monitor.set_context(method=args.child, overrides=overrides, resolution=args.resolution, dtype=args.dtype,
                        gradient_checkpointing=args.gradient_checkpointing,
                        vae_slicing=getattr(args, "vae_slicing", False), threads=torch.get_num_threads())
    after_imports = rss_bytes()

    window = monitor.open("build", kind="phase")
    backbone = build_sd21_shape(args.resolution, args.dtype, args.gradient_checkpointing,
                                getattr(args, "vae_slicing", False))
    monitor.close(window)
    after_build = rss_bytes()
    instrument(monitor, backbone)

    dataset = load_synthetic()
    action, subject = dataset.actions[0], dataset.subjects[0]
    monitor.set_context(action=action.id, subject=subject.id)
    method_cls = get_method(args.child)
    config = build_config(method_cls.Config, {**customize_settings(args.child), **overrides})
    artifact_dir = Path(os.environ["ACTIONBENCH_HOME"]) / "artifact"

    window = monitor.open("customize", kind="phase")
    method_cls(backbone, config).customize(action, artifact_dir)
    customize = monitor.close(window)
    gc.collect()

    # Generation as the runner does it: the artifact loaded onto the backbone's device, a fresh method object.
    generate_config = config.replace(sampler=config.sampler.replace(num_inference_steps=GENERATION_STEPS))
    method = method_cls(backbone, generate_config)
    handles = hook_module(monitor, backbone.unet, "UNet forward (sampling)")
    window = monitor.open("generate", kind="phase")
    artifact = Artifact.load(artifact_dir, device=backbone.device)
    images = method.generate(artifact, subject, [0])
    generate = monitor.close(window)
    for handle in handles:
        handle.remove()
    if len(images) != 1:
        raise RuntimeError(f"{args.child} generated {len(images)} images for one seed")

    result = {
        **monitor._context, "status": "measured",
        "rss_after_imports_gib": after_imports / GIB, "rss_after_build_gib": after_build / GIB,
        "ru_maxrss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB,
        "customize_wall_s": customize["wall_s"], "customize_cpu_s": customize["cpu_s"],
        "generate_wall_s": generate["wall_s"], "generate_cpu_s": generate["cpu_s"],
        "windows": monitor.records,
    }
    out.write_text(json.dumps(result, default=str))


# --- the parent: one subprocess per method, a table ---------------------------------------------

def summarize(result: dict) -> dict:
    """One table row from a subprocess's result: the main training step, the largest transients, the peaks."""
    windows = result.get("windows", [])
    method = result["method"]
    main = [w for w in windows if w.get("kind") == "train step" and w["name"] == f"{method} {result.get('action')}"]
    step = main[-1] if main else None
    fb = [w for w in windows if w.get("kind") == "forward+backward" and step and w["name"].startswith(step["name"])]
    opt = [w for w in windows if w.get("kind") == "optimizer step"]

    def worst(name):
        rises = [w["rise_gib"] for w in windows if w["name"] == name]
        return max(rises) if rises else None

    return {
        "method": method,
        "status": result["status"],
        "peak RSS GiB": result.get("ru_maxrss_gib"),
        "after build GiB": result.get("rss_after_build_gib"),
        "step wall s": step["wall_s"] if step else None,
        "step CPU s": step["cpu_s"] if step else None,
        "step fwd+bwd rise GiB": fb[-1]["rise_gib"] if fb else None,
        "optimizer rise GiB": max((w["rise_gib"] for w in opt), default=None),
        "VAE encode rise GiB": worst("VAE encode"),
        "customize wall s": result.get("customize_wall_s"),
        "generate wall s": result.get("generate_wall_s"),
        "sampling UNet rise GiB": worst("UNet forward (sampling)"),
        "VAE decode rise GiB": worst("VAE decode"),
    }


def machine_description(threads: int) -> dict:
    import platform

    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "threads": threads, "torch": torch.__version__,
            "load_average": os.getloadavg(), "mem_available_gib": mem_available_bytes() / GIB,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def run_all(args) -> None:
    import pandas as pd

    known = method_names()
    names = known if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    overrides: dict[str, dict] = {}
    for item in args.override:
        method, _, setting = item.partition(":")
        key, _, value = setting.partition("=")
        if method not in known or not key or not _:
            sys.exit(f"--override {item!r}: expected METHOD:key=value, e.g. adi:batch_size=2")
        overrides.setdefault(method, {})[key] = value
    counts = parameter_counts()
    report = {"machine_before": machine_description(args.threads), "parameters": counts,
              "resolution": args.resolution, "dtype": args.dtype, "gradient_checkpointing": args.gradient_checkpointing,
              "vae_slicing": args.vae_slicing,
              "results": []}
    print(f"SD 2.1 shape, random weights: UNet {counts['unet'] / 1e6:.1f}M, text encoder "
          f"{counts['text_encoder'] / 1e6:.1f}M, VAE {counts['vae'] / 1e6:.1f}M, ControlNet {counts['controlnet'] / 1e6:.1f}M "
          f"parameters; {args.resolution} px, {args.dtype}, "
          f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}, "
          f"{args.threads} threads; {report['machine_before']['cpu']}, load {report['machine_before']['load_average'][0]:.1f}")
    for name in names:
        states = resident_states(name, counts, args.dtype)
        # What is certain to be resident: the interpreter and libraries, the weights and optimizer states.
        floor = 0.7 + sum(states.values())
        if floor > args.max_rss_gb - 1.0:
            result = {"method": name, "status": "computed, not measured", "resolution": args.resolution,
                      "dtype": args.dtype, "states_gib": states,
                      "note": f"weights and optimizer states alone ~{floor:.1f} GiB of {args.max_rss_gb} allowed; "
                              "activations not included"}
            print(f"{name}: computed, not measured ({result['note']})", flush=True)
            report["results"].append(result)
            continue
        with tempfile.TemporaryDirectory(prefix=f"sd21-shape-{name}-") as home:
            out = Path(home) / "result.json"
            env = {**os.environ, "ACTIONBENCH_HOME": home, "OMP_NUM_THREADS": str(args.threads),
                   # freed tensors go back to the system, so RSS follows live memory (see the docstring)
                   "MALLOC_MMAP_THRESHOLD_": "131072"}
            command = [sys.executable, __file__, "--child", name, "--child-out", str(out),
                       "--resolution", str(args.resolution), "--threads", str(args.threads), "--dtype", args.dtype,
                       "--max-rss-gb", str(args.max_rss_gb), "--child-overrides", json.dumps(overrides.get(name, {}))]
            command += ["--vae-slicing"] if args.vae_slicing else []
            command += ["--gradient-checkpointing"] if args.gradient_checkpointing else []
            started = time.perf_counter()
            completed = subprocess.run(command, env=env)
            if out.is_file():
                result = json.loads(out.read_text())
            else:
                result = {"method": name, "status": f"failed (exit {completed.returncode})"}
            result["states_gib"] = states
            result["subprocess_wall_s"] = time.perf_counter() - started
        report["results"].append(result)
        row = summarize(result) if result.get("windows") else {"method": name, "status": result["status"]}
        print(f"{name}: {row['status']}, peak RSS {row.get('peak RSS GiB') or float('nan'):.2f} GiB, "
              f"{result['subprocess_wall_s']:.0f} s", flush=True)

    report["machine_after"] = machine_description(args.threads)
    rows = [summarize(r) if r.get("windows") else {"method": r["method"], "status": r["status"]} for r in report["results"]]
    table = pd.DataFrame(rows).set_index("method")
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.float_format", "{:.2f}".format):
        print(table.T.to_string())
    print(f"load average before {report['machine_before']['load_average'][0]:.1f}, "
          f"after {report['machine_after']['load_average'][0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str) + "\n")
        print(f"wrote {args.json}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="all", help="comma-separated method names, or all")
    parser.add_argument("--resolution", type=int, default=256, help="image side in px (latents are 1/8)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (1 is too slow for 865M parameters)")
    parser.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32", help="frozen weights (--dtype)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute UNet activations in backward")
    parser.add_argument("--vae-slicing", action="store_true", help="VAE encode/decode one image at a time")
    parser.add_argument("--max-rss-gb", type=float, default=21.0, help="stop a method's subprocess past this RSS")
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--override", action="append", default=[], metavar="METHOD:KEY=VALUE",
                        help="change a method's setting, e.g. adi:batch_size=2 (--fit scales a smaller batch's "
                             "training-step memory back to the default batch, linearly)")
    parser.add_argument("--fit", nargs="+", metavar="JSON", help="--json files of fp32 runs at two or more resolutions: "
                        "print the extrapolation to --target-resolution instead of measuring")
    parser.add_argument("--target-resolution", type=int, default=768)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--child-overrides", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measure_one(args)
    elif args.fit:

        print_fit(args.fit, args.target_resolution)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
