"""GET /zsnr/timesteps through the real server (the live preview's data source), and the pack's web
files the frontend loads (the extension and the node help pages)."""
from __future__ import annotations

import json
import math
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


def expected_answer(spacing_name, steps, denoise, steps_offset, schedule, terminal, total):
    """The same answer from the pure functions: Algorithm 1's rescale unless terminal is none; a
    clamp replaces alphā_T; an exact model's host table ends at the sentinel sigma instead."""
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
    timesteps = plot_data.selected_timesteps(spacing_name, steps, total, denoise, steps_offset)
    return {
        "timesteps": timesteps,
        "sigmas": spacing.spacing_sigmas(spacing_name, steps, table, denoise=denoise, steps_offset=steps_offset),
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
            plain["terminal"], plain["zsnr"], plain["T"]) == ("trailing", 20, 1.0, 0, "scaled_linear", "none",
                                                               False, 1000)
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
