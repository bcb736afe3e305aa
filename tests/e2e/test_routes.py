"""GET /zsnr/timesteps through the real server (the live preview's data source), and the pack's web
files the frontend loads (the extension and the node help pages).

About 320 lines in one file: every test here shares the one server of the module and the route's
query format; the validation cases and the numbers they are checked against (schedules/) stay beside it.
"""
from __future__ import annotations

import json
import math
import re
import urllib.parse

import pytest
import torch
from zsnr_core.schedules import betas, conversions, plot_data, spacing

pytestmark = pytest.mark.e2e
ROUTE = "/zsnr/timesteps"
# ComfyUI's zsnr clamp of alphā_T (comfy/model_sampling.py, rescale_zero_terminal_snr_sigmas): the
# finite sigma the host sees at SNR 0
COMFY_ZSNR_ALPHAS_CUMPROD_T = 4.8973451890853435e-08
# the terminal alphā of each clamp mode: ComfyUI's zsnr option (also its ModelSamplingDiscrete zsnr)
# and diffusers' Euler / DPM-Solver / UniPC schedulers with rescale_betas_zero_snr (2^-24)
CLAMPS = {"clamp_comfy": COMFY_ZSNR_ALPHAS_CUMPROD_T, "clamp_diffusers": 2.0**-24}


def ask(client, path=ROUTE, **params):
    query = urllib.parse.urlencode(params, doseq=True)
    status, body = client.request("GET", f"{path}?{query}" if query else path)
    return status, json.loads(body)


def expected_answer(spacing_name, steps, denoise, steps_offset, schedule, terminal, total, latent_size=None):
    """The same answer from the pure functions: Algorithm 1's rescale unless terminal is none; a
    clamp replaces alphā_T; an exact model's host table ends at the sentinel sigma instead. The
    sigmas are spacing_sigmas on that table with the latent's size: what TimestepSpacingScheduler
    returns (nodes/schedulers.py: spacing_sigmas(..., latent_size=latent_size(latent)) on the model's
    own table, checked against the host in tests/host/test_spacing_scheduler_host.py)."""
    base = betas.alphas_cumprod_from_betas(betas.make_betas(schedule, total))
    alphas = betas.rescale_alphas_cumprod_zero_terminal_snr(base) if terminal != "none" else base
    if terminal in CLAMPS:
        alphas = betas.clamp_terminal(alphas, CLAMPS[terminal])
    table = conversions.sigma_from_alphas_cumprod(alphas)
    if terminal == "exact":  # the sentinel rule of nodes/zsnr_sampling.py: the host's clamp sigma,
        # or twice the sigma below it where that is larger (DDPM linear: sigma_(T-2) ≈ 15406)
        comfy_sigma = math.sqrt((1 - COMFY_ZSNR_ALPHAS_CUMPROD_T) / COMFY_ZSNR_ALPHAS_CUMPROD_T)
        table[-1] = max(comfy_sigma, 2 * float(table[-2]))
    table = table.to(torch.float32)  # the host stores its sigma table in float32
    timesteps = plot_data.selected_timesteps(spacing_name, steps, total, denoise, steps_offset, latent_size)
    return {
        "timesteps": timesteps,
        "sigmas": spacing.spacing_sigmas(spacing_name, steps, table, denoise=denoise, steps_offset=steps_offset,
                                         latent_size=latent_size),
        "log_snr": plot_data.log_snr_at_timesteps(alphas, timesteps),
        "curve": conversions.log_snr_from_alphas_cumprod(alphas),
        "original": conversions.log_snr_from_alphas_cumprod(base) if terminal != "none" else None,
    }


def from_json(values) -> torch.Tensor:
    return torch.tensor([-math.inf if v is None else v for v in values], dtype=torch.float64)


VALID = [
    dict(spacing="trailing", steps=10, zsnr="true"),
    dict(spacing="leading", steps=10, steps_offset=1, zsnr="false"),
    dict(spacing="linspace", steps=7, denoise=0.5, schedule="linear"),
    dict(spacing="sgm_uniform", steps=25, schedule="cosine", zsnr="true"),
    dict(spacing="trailing", steps=1000, zsnr="1"),
    dict(spacing="trailing", steps=5, T=500, zsnr="true"),
    dict(spacing="leading", steps=3, denoise=0.0),
    dict(spacing="trailing", steps=10, terminal="exact"),
    dict(spacing="trailing", steps=10, terminal="none"),
    dict(spacing="trailing", steps=10, terminal="clamp_comfy"),
    dict(spacing="logsnr_uniform", steps=6, terminal="clamp_diffusers"),
    dict(spacing="linspace", steps=9, schedule="cosine", denoise=0.6, terminal="clamp_comfy"),
    dict(spacing="trailing", steps=4, schedule="linear", terminal="exact"),
]


def terminal_of(params: dict) -> str:
    """The route's reading of the old boolean: zsnr=true is ZeroTerminalSNR's default, exact."""
    if "zsnr" in params:
        return "exact" if params["zsnr"] in ("true", "1") else "none"
    return params.get("terminal", "none")


@pytest.mark.parametrize("params", VALID, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_valid_answers_equal_the_pure_functions(client, params):
    status, answer = ask(client, **params)
    assert status == 200, answer
    terminal = terminal_of(params)
    zsnr = terminal != "none"
    args = (params["spacing"], params["steps"], params.get("denoise", 1.0), params.get("steps_offset", 0),
            params.get("schedule", "scaled_linear"), terminal, params.get("T", 1000))
    expected = expected_answer(*args)
    assert answer["T"] == args[-1] and answer["zsnr"] is zsnr and answer["schedule"] == args[4]
    assert answer["terminal"] == terminal
    assert torch.equal(torch.tensor(answer["timesteps"], dtype=torch.float64), expected["timesteps"])
    assert torch.equal(torch.tensor(answer["sigmas"], dtype=torch.float32), expected["sigmas"])
    log_snr = from_json(answer["log_snr"])
    assert torch.equal(log_snr.isinf(), expected["log_snr"].isinf())
    assert torch.allclose(log_snr[~log_snr.isinf()], expected["log_snr"][~log_snr.isinf()], rtol=1e-12)
    assert answer["snr_zero"] == expected["log_snr"].isneginf().tolist()
    curve = from_json(answer["log_snr_curve"])
    assert torch.equal(curve.isinf(), expected["curve"].isinf())
    assert torch.allclose(curve[~curve.isinf()], expected["curve"][~curve.isinf()], rtol=1e-12)
    if terminal == "exact":
        assert answer["log_snr_curve"][-1] is None  # SNR 0: JSON null, never a clipped number
    if zsnr:
        assert torch.allclose(from_json(answer["original_log_snr_curve"]), expected["original"], rtol=1e-12)
    else:
        assert answer["original_log_snr_curve"] is None


def test_trailing_on_a_zsnr_schedule_starts_at_snr_zero(client):
    status, answer = ask(client, spacing="trailing", steps=10, zsnr="true")
    assert status == 200
    # paper Table 2, trailing, 0-indexed: 999, 899, …, 99; the first step is the SNR-0 step
    assert answer["timesteps"] == [float(t) for t in range(999, 0, -100)]
    assert answer["snr_zero"] == [True] + [False] * 9 and answer["log_snr"][0] is None
    assert answer["sigmas"][-1] == 0.0 and len(answer["sigmas"]) == 11


@pytest.mark.parametrize("terminal", list(CLAMPS))
def test_a_clamped_top_has_its_finite_log_snr_and_sigma(client, terminal):
    status, answer = ask(client, spacing="trailing", steps=10, terminal=terminal)
    assert status == 200, answer
    alphas_cumprod_terminal = CLAMPS[terminal]
    # log-SNR = log(alphā / (1 - alphā)) (paper §2), sigma = sqrt((1 - alphā) / alphā), the host's
    # sigma table holding float32
    top_log_snr = math.log(alphas_cumprod_terminal / (1 - alphas_cumprod_terminal))
    top_sigma = float(torch.tensor(math.sqrt((1 - alphas_cumprod_terminal) / alphas_cumprod_terminal)).float())
    assert answer["log_snr_curve"][-1] == pytest.approx(top_log_snr, rel=1e-12)
    assert answer["log_snr"][0] == pytest.approx(top_log_snr, rel=1e-12)  # the first trailing step, t = 999
    assert answer["snr_zero"] == [False] * 10
    assert answer["sigmas"][0] == top_sigma
    # the clamps sit 0.2 apart in log-SNR: 4.9e-8 (sigma 4518.76) and 2^-24 (sigma just below 4096)
    assert round(top_sigma) == {"clamp_comfy": 4519, "clamp_diffusers": 4096}[terminal]


def test_exact_snr_zero_is_null_with_the_sentinel_sigma(client):
    status, answer = ask(client, spacing="trailing", steps=10, terminal="exact")
    assert status == 200
    assert answer["log_snr_curve"][-1] is None and answer["log_snr"][0] is None and answer["snr_zero"][0]
    sentinel = math.sqrt((1 - COMFY_ZSNR_ALPHAS_CUMPROD_T) / COMFY_ZSNR_ALPHAS_CUMPROD_T)
    assert answer["sigmas"][0] == float(torch.tensor(sentinel).float())


@pytest.mark.parametrize(("old", "new"), [("true", "exact"), ("1", "exact"), ("false", "none"), ("0", "none")])
def test_the_old_zsnr_boolean_means_exact_or_none(client, old, new):
    status_old, by_old = ask(client, spacing="trailing", steps=7, zsnr=old)
    status_new, by_new = ask(client, spacing="trailing", steps=7, terminal=new)
    assert status_old == status_new == 200
    assert by_old == by_new and by_old["terminal"] == new


def test_defaults_and_both_url_prefixes(client):
    status, plain = ask(client)
    assert status == 200
    assert (plain["spacing"], plain["steps"], plain["denoise"], plain["steps_offset"], plain["schedule"],
            plain["terminal"], plain["zsnr"], plain["T"], plain["latent_size"]) == (
                "trailing", 20, 1.0, 0, "scaled_linear", "none", False, 1000, None)
    status, prefixed = ask(client, "/api" + ROUTE)
    assert status == 200 and prefixed == plain


INVALID = [
    # (query, parameter the error names, the refused value as shown, text of what is allowed)
    ({"steps": "0"}, "steps", "'0'", "from 1 to 1000"),
    ({"steps": "1001"}, "steps", "'1001'", "from 1 to 1000"),
    ({"steps": "51", "T": "50"}, "steps", "'51'", "from 1 to 50"),
    ({"steps": "2.5"}, "steps", "'2.5'", "an integer"),
    ({"steps": "ten"}, "steps", "'ten'", "an integer"),
    ({"spacing": "bogus"}, "spacing", "'bogus'", "trailing, leading, linspace, sgm_uniform"),
    ({"denoise": "1.5"}, "denoise", "'1.5'", "from 0 to 1"),
    ({"denoise": "-0.1"}, "denoise", "'-0.1'", "from 0 to 1"),
    ({"denoise": "nan"}, "denoise", "'nan'", "from 0 to 1"),
    ({"steps_offset": "-1"}, "steps_offset", "'-1'", "from 0 to 999"),
    ({"schedule": "cosine_unclipped"}, "schedule", "'cosine_unclipped'", "scaled_linear, linear, cosine"),
    ({"zsnr": "maybe"}, "zsnr", "'maybe'", "true or false"),
    ({"terminal": "clamp"}, "terminal", "'clamp'", "none, exact, clamp_comfy, clamp_diffusers"),
    ({"terminal": "exact", "zsnr": "true"}, "zsnr", "older form of 'terminal'", "not both"),
    # DDPM's linear schedule rescaled has alphā at t = 998 below both clamps: no increasing sigmas
    ({"schedule": "linear", "terminal": "clamp_comfy"}, "terminal", "'clamp_comfy'", "use terminal = exact"),
    ({"schedule": "linear", "terminal": "clamp_diffusers"}, "terminal", "'clamp_diffusers'", "use terminal = exact"),
    ({"T": "1"}, "T", "'1'", "from 2 to 10000"),
    ({"T": "20000"}, "T", "'20000'", "from 2 to 10000"),
    ({"foo": "1"}, "foo", "'foo' is unknown", "allowed parameters: spacing, steps"),
    ({"steps": ["10", "11"]}, "steps", "['10', '11']", "a single value"),
    # combinations the spacing rules refuse: the pure functions' messages, naming the parameter
    # the latent's size in latent positions: positive integers, both or neither
    ({"latent_height": "0", "latent_width": "64"}, "latent_height", "'0'", "an integer from 1 to 16384"),
    ({"latent_height": "64", "latent_width": "-1"}, "latent_width", "'-1'", "an integer from 1 to 16384"),
    ({"latent_height": "64.5", "latent_width": "64"}, "latent_height", "'64.5'", "an integer"),
    ({"latent_height": "64", "latent_width": "wide"}, "latent_width", "'wide'", "an integer"),
    ({"latent_height": "20000", "latent_width": "64"}, "latent_height", "'20000'", "from 1 to 16384"),
    ({"latent_height": "128"}, "latent_width", "'latent_width' is missing", "both latent_height and latent_width"),
    ({"latent_width": "128"}, "latent_height", "'latent_height' is missing", "both latent_height and latent_width"),
    ({"latent_height": ["64", "128"], "latent_width": "64"}, "latent_height", "['64', '128']", "a single value"),
    # a 1x1 latent on a 3-timestep schedule: the shift moves the window's start past its end
    ({"spacing": "logsnr_resolution", "steps": "3", "T": "3", "latent_height": "1", "latent_width": "1"},
     "latent_height", "'latent_width' = 1x1", "use a larger latent"),
    ({"spacing": "leading", "steps": "10", "steps_offset": "900"}, "steps_offset", "= 900",
     "beyond the last training timestep 999"),
    ({"steps": "20", "denoise": "0.01"}, "denoise", "= 0.01", "more than the 1000 training timesteps"),
]


@pytest.mark.parametrize(("params", "parameter", "shown", "allowed"), INVALID, ids=lambda v: str(v))
def test_invalid_parameters_get_400_with_a_clear_message(client, params, parameter, shown, allowed):
    status, body = ask(client, **params)
    assert status == 400, body
    assert body["parameter"] == parameter
    message = body["error"]
    assert message.startswith(ROUTE) and f"'{parameter}'" in message, message
    assert shown in message and allowed in message, message


LATENT_SIZES = [(128, 128), (64, 64), (96, 160), (16, 16)]


@pytest.mark.parametrize("terminal", ["exact", "clamp_comfy", "none"])
@pytest.mark.parametrize("latent_size", LATENT_SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_the_latent_size_gives_the_nodes_sigmas_for_that_latent(client, latent_size, terminal):
    height, width = latent_size
    status, answer = ask(client, spacing="logsnr_resolution", steps=12, terminal=terminal,
                         latent_height=height, latent_width=width)
    assert status == 200, answer
    assert answer["latent_size"] == [height, width]
    expected = expected_answer("logsnr_resolution", 12, 1.0, 0, "scaled_linear", terminal, 1000, latent_size)
    assert torch.equal(torch.tensor(answer["timesteps"], dtype=torch.float64), expected["timesteps"])
    assert torch.equal(torch.tensor(answer["sigmas"], dtype=torch.float32), expected["sigmas"])
    log_snr = from_json(answer["log_snr"])
    finite = ~log_snr.isinf()
    assert torch.allclose(log_snr[finite], expected["log_snr"][finite], rtol=1e-12)
    status, at_reference = ask(client, spacing="logsnr_resolution", steps=12, terminal=terminal)
    assert status == 200 and at_reference["latent_size"] is None
    # 64x64 is the reference size (schedules/logsnr_spacing.py): the same answer as no size at all
    assert (answer["sigmas"] == at_reference["sigmas"]) is (latent_size == (64, 64))


def printed_tensor(text: str) -> torch.Tensor:
    """The numbers of a tensor as str(tensor) prints it (PreviewAny's text for a SIGMAS input)."""
    assert text.startswith("tensor(["), text
    numbers = re.findall(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?", text.split("]")[0])
    return torch.tensor([float(n) for n in numbers], dtype=torch.float64)


def test_the_route_agrees_with_the_node_run_on_an_empty_latent(client):
    # the node itself, in the server: EmptyLatentImage 1024x768 pixels is a 96x128 latent (nodes.py,
    # height // 8, width // 8); the host's PreviewAny (comfy_extras/nodes_preview_any.py) shows the
    # SIGMAS as str(tensor), five significant digits
    model = {"class_type": "ZSNRReferenceModel", "inputs": {
        "dataset": "brightness_ramp", "trained_schedule": "scaled_linear", "prediction": "v_prediction"}}
    graph = {
        "1": model,
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": "exact"}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
        "4": {"class_type": "TimestepSpacingScheduler", "inputs": {
            "model": ["2", 0], "spacing": "logsnr_resolution", "steps": 11, "denoise": 1.0, "steps_offset": 0,
            "latent": ["3", 0]}},
        "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}},
    }
    printed = printed_tensor(client.run(graph, timeout=300)["outputs"]["5"]["text"][0])
    status, answer = ask(client, spacing="logsnr_resolution", steps=11, terminal="exact",
                         latent_height=96, latent_width=128)
    assert status == 200, answer
    route = torch.tensor(answer["sigmas"], dtype=torch.float64)
    assert len(printed) == len(route) == 12 and printed[-1] == route[-1] == 0
    assert torch.allclose(printed, route, rtol=1e-4, atol=0)
    # and the size mattered: the reference-size answer is not within that tolerance
    status, at_reference = ask(client, spacing="logsnr_resolution", steps=11, terminal="exact")
    assert status == 200
    assert not torch.allclose(printed, torch.tensor(at_reference["sigmas"], dtype=torch.float64), rtol=1e-2)


def test_the_latent_size_with_denoise_keeps_the_last_steps_of_the_schedule_for_that_size(client):
    status, answer = ask(client, spacing="logsnr_resolution", steps=8, denoise=0.5, terminal="exact",
                         latent_height=128, latent_width=96)
    assert status == 200, answer
    expected = expected_answer("logsnr_resolution", 8, 0.5, 0, "scaled_linear", "exact", 1000, (128, 96))
    assert torch.equal(torch.tensor(answer["sigmas"], dtype=torch.float32), expected["sigmas"])
    assert len(answer["timesteps"]) == 8


def test_other_spacings_ignore_the_latent_size_but_echo_it(client):
    status, sized = ask(client, spacing="trailing", steps=10, terminal="exact", latent_height=128, latent_width=128)
    status_plain, plain = ask(client, spacing="trailing", steps=10, terminal="exact")
    assert status == status_plain == 200
    assert sized["latent_size"] == [128, 128] and plain["latent_size"] is None
    assert sized["sigmas"] == plain["sigmas"] and sized["timesteps"] == plain["timesteps"]


@pytest.mark.parametrize("spacing_name", spacing.SPACINGS)
def test_the_answer_says_whether_the_spacing_reads_the_latent_size(client, spacing_name):
    status, answer = ask(client, spacing=spacing_name, steps=10, terminal="exact", latent_height=128, latent_width=128)
    assert status == 200, answer
    assert answer["reads_latent_size"] is (spacing_name in spacing.SIZE_AWARE_SPACINGS)


def test_extension_script_is_listed_for_the_frontend(client):
    scripts = client.get_json("/extensions")
    assert "/extensions/zsnr/js/zsnr.js" in scripts
    status, body = client.request("GET", "/extensions/zsnr/js/zsnr.js")
    assert status == 200 and b"/zsnr/timesteps" in body


def pack_nodes(object_info) -> list[str]:
    return sorted(name for name, info in object_info.items() if info.get("python_module") == "custom_nodes.zsnr")


def test_every_node_has_a_help_page_where_the_frontend_looks(client, object_info):
    nodes = pack_nodes(object_info)
    assert "ZSNRSchedulePlot" in nodes and "TimestepSpacingScheduler" in nodes
    for node in nodes:
        # the frontend's NodeHelpService fetches /extensions/<pack folder>/docs/<NodeId>.md
        status, body = client.request("GET", f"/extensions/zsnr/docs/{node}.md")
        assert status == 200, f"web/docs/{node}.md missing"
        text = body.decode()
        assert text.startswith("# ") and "§" in text, f"{node}: title and paper section"
        assert "## Inputs" in text and "## Minimal example" in text and "## When to use it" in text, node
        info = object_info[node]["input"]
        for name in list(info.get("required", {})) + list(info.get("optional", {})):
            assert f"`{name}`" in text, f"web/docs/{node}.md does not document input {name!r}"
