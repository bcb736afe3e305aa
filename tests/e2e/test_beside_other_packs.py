"""zsnr beside the packs users run, through the real server, in both load orders.

Two patterns (docs/beside_other_packs.md): packs that copy the host's scheduler list when they import
(Impact Pack, Inspire Pack), and nodes that replace the model's ModelSampling after ZeroTerminalSNR
(AnimateDiff-Evolved's Use Evolved Sampling). tests/fixture_packs/ holds one small pack per pattern,
each citing the real pack and file it imitates. The host loads its custom_nodes folders in order, and
an --extra-model-paths-config entry with `is_default: true` goes first (upstream
utils/extra_config.py, folder_paths.add_model_folder_path), so the order is chosen, not left to
os.listdir; the fixture pack logs what it copied, so each test knows the order really happened.

Optional tier: ZSNR_THIRD_PARTY_NODES=<a custom_nodes folder> runs the same checks against the real
packs in it (KSampler //Inspire, ADE_UseEvolvedSampling where present).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from comfy_server import ComfyServer, PromptRejected, ServerFailed
from zsnr_testlib import ROOT, TEST_OUTPUT

pytestmark = pytest.mark.e2e
FIXTURE_PACKS = ROOT / "tests" / "fixture_packs"
THIRD_PARTY = os.environ.get("ZSNR_THIRD_PARTY_NODES")
ORDERS = ("zsnr_first", "packs_first")
KINDS = ("fixture", "third_party") if THIRD_PARTY else ("fixture",)
# the sampler node with a copied scheduler list, and the node replacing the ModelSampling, per kind
SAMPLER_NODES = ("FixtureCopiedListKSampler", "KSampler //Inspire")
REPLACERS = {"FixtureReplaceModelSampling": "sqrt_linear", "ADE_UseEvolvedSampling": "sqrt_linear (AnimateDiff)"}
REPLACED = "replaced the model's ModelSampling"
STEPS = 4


@pytest.fixture(scope="module", params=[(kind, order) for kind in KINDS for order in ORDERS],
                ids=lambda p: f"{p[0]}-{p[1]}")
def beside(request):
    """A server whose custom_nodes are zsnr and the packs, loaded in the order asked for."""
    kind, order = request.param
    packs = FIXTURE_PACKS if kind == "fixture" else Path(THIRD_PARTY).resolve()
    base = TEST_OUTPUT / "hosts" / f"beside_{kind}_{order}"
    base.mkdir(parents=True, exist_ok=True)
    config = base / "beside_packs.yaml"  # JSON is YAML
    config.write_text(json.dumps({"zsnr_beside": {"is_default": order == "packs_first", "custom_nodes": str(packs)}}))
    server = ComfyServer(base, extra_args=("--extra-model-paths-config", str(config)))
    try:
        server.start(timeout=600)
    except ServerFailed as error:
        pytest.fail(str(error))
    try:
        yield server, kind, order, server.client().object_info()
    finally:
        server.stop()


def options_of(spec) -> list | None:
    """A combo input's options, in the object_info form of a V1 node ([options, {...}]) or of V3 (["COMBO", {"options": ...}])."""
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1:
        return spec[1].get("options")
    return None


def zsnr_names(object_info) -> list[str]:
    """The names zsnr adds to the host's list: TimestepSpacingScheduler's spacings but the host's own sgm_uniform."""
    spacing = object_info["TimestepSpacingScheduler"]["input"]["required"]["spacing"]
    return [name for name in options_of(spacing) if name != "sgm_uniform"]


def scheduler_inputs(object_info) -> dict[str, list]:
    """Every combo input offering all of the host's own scheduler names: the host's and the copies."""
    ours = set(zsnr_names(object_info))
    builtin = set(options_of(object_info["KSampler"]["input"]["required"]["scheduler"])) - ours
    found = {}
    for node, info in object_info.items():
        for section in ("required", "optional"):
            for name, spec in (info["input"].get(section) or {}).items():
                options = options_of(spec) if isinstance(spec, list) and spec else None
                if options and builtin <= set(options):
                    found[f"{node}.{name}"] = options
    return found


def test_load_order_is_the_one_asked_for(beside):
    """The packs' copies were made without zsnr's names exactly when they loaded first, and then
    zsnr extended them as it loaded (nodes/schedulers.py, extend_copied_scheduler_lists)."""
    server, kind, order, _ = beside
    log = server.log_text()
    if kind == "fixture":
        copied = "'trailing' present" if order == "zsnr_first" else "'trailing' absent"
        assert f"fixture copied_scheduler_list: copied the scheduler list at import, {copied}" in log
    assert ("zsnr: added trailing" in log) == (order == "packs_first")


def test_every_copied_scheduler_list_offers_zsnr_schedulers(beside):
    _, kind, _, object_info = beside
    found = scheduler_inputs(object_info)
    copies = [key for key in found if not key.startswith(("KSampler.", "KSamplerAdvanced.", "BasicScheduler."))]
    assert copies, f"no pack node with a scheduler list among {len(object_info)} nodes ({kind})"
    ours = zsnr_names(object_info)
    lacking = {key: [n for n in ours if n not in options] for key, options in found.items()
               if any(n not in options for n in ours)}
    host_list = options_of(object_info["KSampler"]["input"]["required"]["scheduler"])
    own_names = sorted(key for key in copies if found[key] != host_list)
    print(f"\n{len(copies)} pack inputs with a scheduler list, {len(own_names)} of them copies holding names "
          f"of their own, e.g. {own_names[:3]}")
    assert not lacking, f"scheduler lists without zsnr's names: {lacking}"


def _sampler_inputs(info: dict, model, cond, latent, scheduler: str, seed: int = 0) -> dict:
    """Required inputs of a KSampler-like node: links by type, the sampling settings asked for, the
    node's own defaults else (a CPU option where the node offers one: the server runs with --cpu)."""
    wanted = {"seed": seed, "steps": STEPS, "cfg": 1.0, "sampler_name": "euler", "scheduler": scheduler,
              "denoise": 1.0}
    links = {"MODEL": model, "CONDITIONING": cond, "LATENT": latent}
    inputs = {}
    for name, spec in info["input"]["required"].items():
        options = options_of(spec)
        if name in wanted:
            inputs[name] = wanted[name]
        elif not options and spec[0] in links:
            inputs[name] = links[spec[0]]
        elif options:
            inputs[name] = next((o for o in options if "CPU" in str(o)), options[0])
        else:
            inputs[name] = (spec[1] if len(spec) > 1 else {}).get("default")
    return inputs


def _graph(sampler: str, info: dict, scheduler: str, replacer: str | None = None, samplers: int = 1) -> dict:
    """Reference model → ZeroTerminalSNR (exact) → VPredictionAdapter (v) [→ replacer] → `samplers`
    sampler nodes (ids 10, 11, …) → pixel-space decode → SaveImage."""
    graph = {
        "1": {"class_type": "ZSNRReferenceModel", "inputs": {
            "dataset": "brightness_ramp", "trained_schedule": "scaled_linear_zsnr", "prediction": "v_prediction"}},
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": "exact"}},
        "3": {"class_type": "VPredictionAdapter", "inputs": {"model": ["2", 0], "prediction": "v_prediction"}},
        "4": {"class_type": "ZSNRReferenceCondition", "inputs": {"subset": "all"}},
        "5": {"class_type": "EmptyChromaRadianceLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
    }
    model = ["3", 0]
    if replacer is not None:
        graph["7"] = {"class_type": replacer, "inputs": {"model": model, "beta_schedule": REPLACERS[replacer]}}
        model = ["7", 0]
    for index in range(samplers):
        node, decode, save = str(10 + index), str(20 + index), str(30 + index)
        graph[node] = {"class_type": sampler, "inputs": _sampler_inputs(info, model, ["4", 0], ["5", 0], scheduler, index)}
        graph[decode] = {"class_type": "VAEDecode", "inputs": {"samples": [node, 0], "vae": ["6", 0]}}
        graph[save] = {"class_type": "SaveImage", "inputs": {"images": [decode, 0], "filename_prefix": "zsnr/beside"}}
    return graph


def _present(object_info, names) -> str:
    node = next((name for name in names if name in object_info), None)
    if node is None:
        pytest.skip(f"none of {list(names)} is installed")
    return node


@pytest.mark.parametrize("scheduler", ["trailing", "logsnr_resolution"])
def test_copied_list_sampler_accepts_and_samples_a_zsnr_scheduler(beside, scheduler):
    server, _, _, object_info = beside
    sampler = _present(object_info, SAMPLER_NODES)
    client = server.client()
    try:
        entry = client.run(_graph(sampler, object_info[sampler], scheduler), timeout=600)
    except PromptRejected as error:  # the 400 this file exists for
        pytest.fail(f"{sampler} with scheduler {scheduler!r}: {error}")
    images = client.output_images(entry)
    assert len(images) == 1 and client.view(images[0][1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_replaced_model_sampling_is_reported_once_per_prompt(beside):
    server, _, _, object_info = beside
    sampler = _present(object_info, ("KSampler",))
    replacer = _present(object_info, REPLACERS)
    client = server.client()
    for seed_offset in range(2):  # a second prompt (fresh samplers, cached model) is reported again
        before = len(server.log_text())
        events = []
        graph = _graph(sampler, object_info[sampler], "trailing", replacer=replacer, samplers=2)
        for index in range(2):
            graph[str(10 + index)]["inputs"]["seed"] = 100 * seed_offset + index
        client.run(graph, timeout=600, on_progress=events.append)
        warnings = [e["data"] for e in events if e["type"] == "zsnr.sampling_replaced"]
        logged = server.log_text()[before:].count(REPLACED)
        assert logged == 1, f"the log says {REPLACED!r} {logged} times for one prompt with two samplers"
        assert len(warnings) == 1 and warnings[0]["node_id"] in ("10", "11"), warnings
        assert REPLACED in warnings[0]["message"]


def test_zsnr_sampling_kept_is_not_reported(beside):
    server, _, _, object_info = beside
    sampler = _present(object_info, ("KSampler",))
    before = len(server.log_text())
    events = []
    server.client().run(_graph(sampler, object_info[sampler], "trailing"), timeout=600, on_progress=events.append)
    assert REPLACED not in server.log_text()[before:]
    assert not [e for e in events if e["type"] == "zsnr.sampling_replaced"]
