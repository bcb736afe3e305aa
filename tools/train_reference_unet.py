"""Train the pack's small networks: one class-conditional UNet built from the host's own comfy.ldm
UNetModel, trained with recipes that differ only in schedule and prediction (Lin et al. 2023 §3):

- flawed: SD's scaled_linear betas 0.00085 -> 0.012, T = 1000, epsilon prediction (terminal SNR 0.0047);
- fixed: the same betas rescaled to zero terminal SNR (Algorithm 1, schedules/betas.py), v prediction;
- v_sd (colour only): SD's betas with v prediction, the SD 2.x-v stand-in.

Two datasets: `shapes` (reference/procedural_shapes.py, near-grey, the trained reference pair of
docs/trained_reference_pair.md: recipes flawed, fixed) and `colour` (reference/colour_shapes.py,
hue classes, docs/trained_colour_networks.md: colour_flawed, colour_fixed, colour_v_sd).
Same seed, data, batches, timesteps and noise for every recipe of a dataset. Classifier-free guidance needs an
unconditional model, so 15 % of the labels are dropped to the null class 0 (Ho & Salimans 2022).
The weights saved are an exponential moving average of the parameters, as float16 safetensors
with the recipe, UNet config and classes as JSON metadata (nodes/trained_model.py reads them).

    .venv/bin/python tools/train_reference_unet.py --recipe fixed --steps 3000 --output out.safetensors
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import pure_core  # noqa: F401 (the zsnr_core package of the pure modules)
import torch
from inprocess_host import HostUnavailable, import_host
from zsnr_core.reference import colour_shapes, procedural_shapes
from zsnr_core.schedules import betas as beta_schedules

_SD = {"schedule": "scaled_linear", "zero_terminal_snr": False}
_ZSNR = {"schedule": "scaled_linear_zsnr", "zero_terminal_snr": True}
RECIPES = {
    "flawed": {**_SD, "prediction": "epsilon"},
    "fixed": {**_ZSNR, "prediction": "v_prediction"},
    "colour_flawed": {**_SD, "prediction": "epsilon", "dataset": "colour"},
    "colour_fixed": {**_ZSNR, "prediction": "v_prediction", "dataset": "colour"},
    "colour_v_sd": {**_SD, "prediction": "v_prediction", "dataset": "colour"},
}
BETA_START, BETA_END, TIMESTEPS = 0.00085, 0.012, 1000
NUM_CLASSES = len(procedural_shapes.CLASS_NAMES)


def unet_config(num_classes: int = NUM_CLASSES) -> dict:
    """SD 1.x layout (comfy/model_detection.py SD15) at toy scale: res blocks at 32, 16 and 8 px,
    a SpatialTransformer (self- and cross-attention to the class context) at 8 px and in the middle."""
    return {
        "image_size": 32, "in_channels": 3, "out_channels": 3, "model_channels": 32,
        "num_res_blocks": [1, 1, 1], "channel_mult": [1, 2, 2],
        "transformer_depth": [0, 0, 1], "transformer_depth_output": [0, 0, 0, 0, 1, 1],
        "transformer_depth_middle": 1, "context_dim": num_classes, "num_head_channels": 32,
        "use_spatial_transformer": True, "use_linear_in_transformer": True, "legacy": False,
        "num_classes": num_classes, "adm_in_channels": None, "use_checkpoint": False,
        "use_temporal_attention": False, "use_temporal_resblock": False,
    }


UNET_CONFIG = unet_config()
DATASET = {"generator": "reference.procedural_shapes.render_shapes", "count": procedural_shapes.DEFAULT_TRAINING_COUNT, "size": 32,
           "seed": procedural_shapes.DEFAULT_SEED}
DATASETS = {
    "shapes": {"config": DATASET, "classes": procedural_shapes.CLASS_NAMES, "null_class": procedural_shapes.NULL_CLASS},
    "colour": {"config": {"generator": "reference.colour_shapes.render_colour_shapes",
                          "count": colour_shapes.DEFAULT_TRAINING_COUNT, "size": 32, "seed": colour_shapes.DEFAULT_SEED},
               "classes": colour_shapes.CLASS_NAMES, "null_class": colour_shapes.NULL_CLASS},
}


def recipe_dataset(recipe: str) -> dict:
    return DATASETS[RECIPES[recipe].get("dataset", "shapes")]


def training_images(recipe: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, class labels) of the recipe's dataset, the first `count` of its generator."""
    config = recipe_dataset(recipe)["config"]
    if RECIPES[recipe].get("dataset", "shapes") == "colour":
        return colour_shapes.render_colour_shapes(count, config["size"], config["seed"])
    images = procedural_shapes.render_shapes(count, config["size"], config["seed"])
    return images, procedural_shapes.class_labels(images)


LABEL_DROPOUT = 0.15
BATCH, LEARNING_RATE, WARMUP, EMA_DECAY = 32, 6e-4, 200, 0.999


def import_host_unet():
    """The host's UNetModel and ops, imported in-process on the CPU (as tools/inprocess_host.py)."""
    try:
        import_host()
    except HostUnavailable as error:
        raise SystemExit(str(error)) from None
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    return UNetModel, comfy.ops.disable_weight_init


def build_unet(dtype=torch.float32, num_classes: int = NUM_CLASSES):
    """A freshly initialised host UNetModel with unet_config (the node builds the same through BaseModel)."""
    unet_model, operations = import_host_unet()
    config = unet_config(num_classes)
    config["transformer_depth"] = list(config["transformer_depth"])  # UNetModel pops from these lists
    config["transformer_depth_output"] = list(config["transformer_depth_output"])
    return unet_model(**config, dtype=dtype, operations=initialised_operations(operations))


def initialised_operations(operations):
    """comfy.ops.disable_weight_init skips PyTorch's initialisation (a checkpoint overwrites it);
    training needs it, so these layers get torch.nn's reset_parameters back."""
    layers = {name: type(name, (getattr(operations, name),), {"reset_parameters": getattr(torch.nn, name).reset_parameters})
              for name in ("Linear", "Conv2d", "Conv3d", "GroupNorm", "LayerNorm")}
    return type("InitialisedOperations", (operations,), layers)


def recipe_alphas_cumprod(recipe: str) -> torch.Tensor:
    betas = beta_schedules.scaled_linear_betas(TIMESTEPS, BETA_START, BETA_END)
    if RECIPES[recipe]["zero_terminal_snr"]:
        betas = beta_schedules.rescale_zero_terminal_snr(betas)
    return beta_schedules.alphas_cumprod_from_betas(betas)


def class_context(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """The cross-attention context of a class: its one-hot [B, 1, K], all zeros for the null class (0 in both datasets)."""
    one_hot = torch.nn.functional.one_hot(labels, num_classes).float()
    return (one_hot * (labels != procedural_shapes.NULL_CLASS).unsqueeze(1)).unsqueeze(1)


def training_loss(unet, x0, labels, timesteps, noise, alphas_cumprod, prediction, num_classes: int = NUM_CLASSES):
    a = alphas_cumprod[timesteps].float().view(-1, 1, 1, 1)
    signal, sigma = a.sqrt(), (1 - a).sqrt()
    x_t = signal * x0 + sigma * noise
    target = noise if prediction == "epsilon" else signal * noise - sigma * x0  # v (Salimans & Ho 2022)
    output = unet(x_t, timesteps.float(), context=class_context(labels, num_classes), y=labels)
    return torch.nn.functional.mse_loss(output, target)


def train(recipe: str, steps: int, output: Path, seed: int = 0, threads: int | None = None,
          log_every: int = 100, dataset_count: int | None = None, save_every: int = 100, log=print,
          batch: int = BATCH, warmup: int = WARMUP) -> dict:
    """Train one recipe; write EMA weights + metadata to `output` (also every `save_every` steps:
    nothing in a step depends on the total `steps`, so the file saved at step N is the one
    `--steps N` writes, up to its train_seconds); return the loss history. `batch`, `warmup` and
    `dataset_count` other than the defaults are for quick checks (tests/host/test_trained_reference_pair.py)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    if threads:
        torch.set_num_threads(threads)
    dataset_count = dataset_count or recipe_dataset(recipe)["config"]["count"]
    started = time.time()
    torch.manual_seed(seed)
    num_classes = len(recipe_dataset(recipe)["classes"])
    unet = build_unet(num_classes=num_classes)
    ema = copy.deepcopy(unet).requires_grad_(False)
    images, labels_all = training_images(recipe, dataset_count)
    alphas_cumprod = recipe_alphas_cumprod(recipe)
    prediction = RECIPES[recipe]["prediction"]
    optimiser = torch.optim.AdamW(unet.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda n: min(1.0, (n + 1) / warmup))
    # the batches, timesteps, noise and dropout come from their own generator: identical for both recipes
    generator = torch.Generator().manual_seed(seed)
    history, window = [], []
    for step in range(steps):
        index = torch.randint(0, images.shape[0], (batch,), generator=generator)
        timesteps = torch.randint(0, TIMESTEPS, (batch,), generator=generator)
        noise = torch.randn((batch, *images.shape[1:]), generator=generator)
        drop = torch.rand((batch,), generator=generator) < LABEL_DROPOUT
        x0 = images[index]
        flip = torch.rand((batch,), generator=generator) < 0.5  # horizontal flips keep the brightness
        x0 = torch.where(flip.view(-1, 1, 1, 1), x0.flip(-1), x0)
        labels = torch.where(drop, procedural_shapes.NULL_CLASS, labels_all[index])
        loss = training_loss(unet, x0, labels, timesteps, noise, alphas_cumprod, prediction, num_classes)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        decay = min(EMA_DECAY, (1 + step) / (10 + step))
        with torch.no_grad():
            for averaged, current in zip(ema.parameters(), unet.parameters(), strict=True):
                averaged.lerp_(current, 1 - decay)
        window.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            history.append({"step": step + 1, "loss": sum(window) / len(window), "seconds": time.time() - started})
            window = []
            log(f"[{recipe}] step {step + 1}/{steps} loss {history[-1]['loss']:.4f} {history[-1]['seconds']:.0f}s",
                flush=True)
        if (step + 1) % save_every == 0 and step + 1 < steps:
            save_weights(ema, output, run_metadata(recipe, step + 1, seed, threads, dataset_count, started, history, batch))
    seconds = time.time() - started
    metadata = run_metadata(recipe, steps, seed, threads, dataset_count, started, history, batch)
    save_weights(ema, output, metadata)
    return {"history": history, "seconds": seconds, "output": output, "metadata": metadata}


def run_metadata(recipe, steps, seed, threads, dataset_count, started, history, batch=BATCH) -> dict:
    """What the loader (nodes/trained_model.py) and docs/trained_reference_pair.md need to know."""
    dataset = recipe_dataset(recipe)
    recipe_keys = {key: value for key, value in RECIPES[recipe].items() if key != "dataset"}
    return {"recipe": recipe, **recipe_keys, "beta_start": BETA_START, "beta_end": BETA_END,
                "timesteps": TIMESTEPS, "unet_config": unet_config(len(dataset["classes"])), "classes": list(dataset["classes"]),
                "null_class": dataset["null_class"], "label_dropout": LABEL_DROPOUT,
                "dataset": {**dataset["config"], "count": dataset_count}, "steps": steps, "batch": batch, "seed": seed,
                "learning_rate": LEARNING_RATE, "ema_decay": EMA_DECAY, "threads": threads,
                "train_seconds": round(time.time() - started, 1), "final_loss": history[-1]["loss"] if history else None}


def save_weights(unet, output: Path, metadata: dict) -> None:
    from safetensors.torch import save_file

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().to(torch.float16).contiguous() for key, value in unet.state_dict().items()}
    save_file(state, str(output), metadata={"zsnr_trained_reference": json.dumps(metadata, sort_keys=True)})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=100)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.threads < 1:
        parser.error("--steps and --threads must be at least 1")
    result = train(args.recipe, args.steps, args.output, args.seed, args.threads, args.log_every)
    print(json.dumps({"output": str(args.output), "seconds": round(result["seconds"], 1),
                      "final_loss": result["metadata"]["final_loss"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
