"""Determinism and isolation through the real server (issue 8).

Determinism: one workflow mixing the pack's nodes (exact ZTSNR + v + trailing with an ancestral
sampler, whose first step from the SNR-0 sentinel draws the host's seeded noise; the spacing scheduler with a
second-order sampler; RescaleCFG with an SDE sampler; the schedule plot) and one seed, run on two
server processes one after the other, gives bit-identical latents (float32 bits, via SaveLatent)
and images (PNG pixels).

Isolation: one prompt that samples the same loaded reference model both unpatched and through
ZeroTerminalSNR → VPredictionAdapter → ZSNRRescaleCFG gives an unpatched result bit-identical to
a prompt without the patched branch, with the patched branch run first and run last. The second server
runs with --cache-none so every prompt recomputes every node: with the default cache the plain
prompt would just be served the unpatched branch's cached result.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from comfy_server import ComfyServer, ServerFailed
from PIL import Image
from safetensors.torch import load as load_safetensors
from zsnr_testlib import TEST_OUTPUT

pytestmark = pytest.mark.e2e
SEED = 424242  # any fixed value
SIZE, BATCH, STEPS = 32, 2, 4
REFERENCE = {"class_type": "ZSNRReferenceModel", "inputs": {
    "dataset": "brightness_ramp", "trained_schedule": "scaled_linear_zsnr", "prediction": "v_prediction"}}


def _node(class_type: str, **inputs) -> dict:
    return {"class_type": class_type, "inputs": inputs}


def _save(graph: dict, key: int, samples: list, prefix: str) -> None:
    """SaveLatent (exact float bits) and SaveImage (what users see) for one sampler output."""
    graph[str(key)] = _node("SaveLatent", samples=samples, filename_prefix=f"zsnr_det/{prefix}")
    graph[str(key + 1)] = _node("VAELoader", vae_name="pixel_space")
    graph[str(key + 2)] = _node("VAEDecode", samples=samples, vae=[str(key + 1), 0])
    graph[str(key + 3)] = _node("SaveImage", images=[str(key + 2), 0], filename_prefix=f"zsnr_det/{prefix}")


def _ksampler(model: list, sampler: str, cfg: float, positive: list, negative: list, latent: list) -> dict:
    return _node("KSampler", model=model, seed=SEED, steps=STEPS, cfg=cfg, sampler_name=sampler, scheduler="trailing",
                 positive=positive, negative=negative, latent_image=latent, denoise=1.0)


def determinism_graph() -> dict:
    graph = {
        "1": REFERENCE,
        "2": _node("ZeroTerminalSNR", model=["1", 0], terminal="exact"),
        "3": _node("VPredictionAdapter", model=["2", 0], prediction="v_prediction"),
        "4": _node("ZSNRRescaleCFG", model=["3", 0], multiplier=0.7, space="auto", terminal_step="guided"),
        "5": _node("ZSNRReferenceCondition", subset="dark"),
        "6": _node("ZSNRReferenceCondition", subset="all"),
        "7": _node("EmptyChromaRadianceLatentImage", width=SIZE, height=SIZE, batch_size=BATCH),
        "8": _ksampler(["3", 0], "euler_ancestral", 1.0, ["6", 0], ["6", 0], ["7", 0]),
        "9": _ksampler(["4", 0], "dpmpp_2m_sde", 5.0, ["5", 0], ["6", 0], ["7", 0]),
        "10": _node("TimestepSpacingScheduler", model=["1", 0], spacing="trailing", steps=STEPS, denoise=1.0,
                    steps_offset=0),
        "11": _node("SamplerCustomAdvanced", noise=["12", 0], guider=["13", 0], sampler=["14", 0], sigmas=["10", 0],
                    latent_image=["7", 0]),
        "12": _node("RandomNoise", noise_seed=SEED),
        "13": _node("BasicGuider", model=["1", 0], conditioning=["6", 0]),
        "14": _node("KSamplerSelect", sampler_name="heun"),
        "15": _node("ZSNRSchedulePlot", model=["2", 0], spacing="trailing", steps=STEPS, y_axis="log_snr"),
    }
    _save(graph, 20, ["8", 0], "ztsnr_ancestral")
    _save(graph, 30, ["9", 0], "rescale_sde")
    _save(graph, 40, ["11", 0], "spacing_heun")
    return graph


def isolation_graph(order: str | None) -> dict:
    """The reference model sampled unpatched (KSampler 50) and, unless order is None, patched
    (KSampler 60) in one prompt. order "patched_first" / "unpatched_first" forces the host's order:
    the later branch's empty latent takes its size from the earlier branch's decoded image
    (GetImageSize), the same zeros but only once the earlier branch has run."""
    graph = {
        "1": REFERENCE,
        "5": _node("ZSNRReferenceCondition", subset="dark"),
        "6": _node("ZSNRReferenceCondition", subset="all"),
        "7": _node("EmptyChromaRadianceLatentImage", width=SIZE, height=SIZE, batch_size=BATCH),
        "50": _ksampler(["1", 0], "euler_ancestral", 5.0, ["5", 0], ["6", 0], ["7", 0]),
    }
    _save(graph, 51, ["50", 0], "unpatched")
    if order is None:
        return graph
    graph.update({
        "2": _node("ZeroTerminalSNR", model=["1", 0], terminal="exact"),
        "3": _node("VPredictionAdapter", model=["2", 0], prediction="v_prediction"),
        "4": _node("ZSNRRescaleCFG", model=["3", 0], multiplier=0.7, space="auto", terminal_step="unguided"),
        "60": _ksampler(["4", 0], "euler_ancestral", 5.0, ["5", 0], ["6", 0], ["7", 0]),
    })
    _save(graph, 61, ["60", 0], "patched")
    earlier_image, later_sampler = ("63", "50") if order == "patched_first" else ("53", "60")
    graph["70"] = _node("GetImageSize", image=[earlier_image, 0])
    graph["71"] = _node("EmptyChromaRadianceLatentImage", width=["70", 0], height=["70", 1], batch_size=BATCH)
    graph[later_sampler]["inputs"]["latent_image"] = ["71", 0]
    return graph


def outputs(client, graph: dict) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """SaveLatent node id → (latent, uint8 pixels of the SaveImage fed by the same samples)."""
    entry = client.run(graph, timeout=300)
    found = {}
    for node_id, output in entry["outputs"].items():
        if graph[node_id]["class_type"] != "SaveLatent":
            continue
        latent = load_safetensors(client.view(output["latents"][0]))["latent_tensor"]
        image_node = str(int(node_id) + 3)
        pixels = np.stack([np.asarray(Image.open(io.BytesIO(client.view(image))).convert("RGB"))
                           for image in entry["outputs"][image_node]["images"]])
        found[node_id] = (latent, pixels)
    plot = [image for node_id, image in client.output_images(entry) if graph[node_id]["class_type"] == "ZSNRSchedulePlot"]
    if plot:
        found["plot"] = (torch.empty(0), np.asarray(Image.open(io.BytesIO(client.view(plot[0]))).convert("RGB")))
    return found


def run_server(name: str, extra_args: tuple[str, ...], graphs: dict[str, dict]) -> dict:
    server = ComfyServer(TEST_OUTPUT / "hosts" / name, extra_args=extra_args)
    try:
        server.start(timeout=240)
    except ServerFailed as error:
        pytest.fail(str(error))
    try:
        client = server.client()
        return {label: outputs(client, graph) for label, graph in graphs.items()}
    finally:
        server.stop()


def record(figures: dict) -> None:
    """Merge figures into test_output/reliability/determinism.json (the README's table reads it)."""
    path = TEST_OUTPUT / "reliability" / "determinism.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**current, **figures}, indent=2) + "\n")


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.uint8), b.view(torch.uint8))


@pytest.fixture(scope="module")
def two_runs() -> tuple[dict, dict]:
    first = run_server("determinism_1", (), {"workflow": determinism_graph()})
    second = run_server("determinism_2", ("--cache-none",), {
        "workflow": determinism_graph(),
        "plain": isolation_graph(None),
        "patched_first": isolation_graph("patched_first"),
        "unpatched_first": isolation_graph("unpatched_first"),
    })
    return first, second


def test_same_workflow_and_seed_are_bit_identical_across_server_runs(two_runs):
    first, second = (run["workflow"] for run in two_runs)
    assert set(first) == set(second) and len(first) == 4, (sorted(first), sorted(second))
    for node_id in first:
        (latent_1, pixels_1), (latent_2, pixels_2) = first[node_id], second[node_id]
        assert bits_equal(latent_1, latent_2), f"SaveLatent {node_id}: latents differ between the two runs"
        assert np.array_equal(pixels_1, pixels_2), f"output {node_id}: images differ between the two runs"
    print(f"\ndeterminism: {len(first)} outputs (3 samplers' latents and images, 1 plot) bit-identical across "
          f"two server processes, seed {SEED}")
    record({"determinism": {"outputs": len(first), "server_runs": 2, "seed": SEED, "bit_identical": True}})


def test_unpatched_branch_is_untouched_by_the_patched_one(two_runs):
    runs = two_runs[1]
    plain_latent, plain_pixels = runs["plain"]["51"]
    for label in ("patched_first", "unpatched_first"):
        latent, pixels = runs[label]["51"]
        assert bits_equal(latent, plain_latent), f"{label}: the unpatched branch changed next to the patched one"
        assert np.array_equal(pixels, plain_pixels)
        # the patch must matter, or the comparison above could not fail
        assert not torch.equal(runs[label]["61"][0], latent), f"{label}: the patched branch equals the unpatched"
    print("\nisolation: the unpatched branch is bit-identical with the patched branch run before it, after it, "
          "and without it")
    record({"isolation": {"orders": ["patched_first", "unpatched_first"], "bit_identical": True}})
