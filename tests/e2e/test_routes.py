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


def ask(client, path=ROUTE, **params):
    query = urllib.parse.urlencode(params, doseq=True)
    status, body = client.request("GET", f"{path}?{query}" if query else path)
    return status, json.loads(body)


def expected_answer(spacing_name, steps, denoise, steps_offset, schedule, zsnr, total):
    """The same answer from the pure functions: a zsnr model's host table ends at the sentinel."""
    base = betas.alphas_cumprod_from_betas(betas.make_betas(schedule, total))
    alphas = betas.rescale_alphas_cumprod_zero_terminal_snr(base) if zsnr else base
    table = conversions.sigma_from_alphas_cumprod(alphas)
    if zsnr:
        table[-1] = math.sqrt((1 - COMFY_ZSNR_ALPHAS_CUMPROD_T) / COMFY_ZSNR_ALPHAS_CUMPROD_T)
    table = table.to(torch.float32)  # the host stores its sigma table in float32
    timesteps = plot_data.selected_timesteps(spacing_name, steps, total, denoise, steps_offset)
    return {
        "timesteps": timesteps,
        "sigmas": spacing.spacing_sigmas(spacing_name, steps, table, denoise=denoise, steps_offset=steps_offset),
        "log_snr": plot_data.log_snr_at_timesteps(alphas, timesteps),
        "curve": conversions.log_snr_from_alphas_cumprod(alphas),
        "original": conversions.log_snr_from_alphas_cumprod(base) if zsnr else None,
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
]


@pytest.mark.parametrize("params", VALID, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_valid_answers_equal_the_pure_functions(client, params):
    status, answer = ask(client, **params)
    assert status == 200, answer
    zsnr = params.get("zsnr", "false") in ("true", "1")
    args = (params["spacing"], params["steps"], params.get("denoise", 1.0), params.get("steps_offset", 0),
            params.get("schedule", "scaled_linear"), zsnr, params.get("T", 1000))
    expected = expected_answer(*args)
    assert answer["T"] == args[-1] and answer["zsnr"] is zsnr and answer["schedule"] == args[4]
    assert torch.equal(torch.tensor(answer["timesteps"], dtype=torch.float64), expected["timesteps"])
    assert torch.equal(torch.tensor(answer["sigmas"], dtype=torch.float32), expected["sigmas"])
    log_snr = from_json(answer["log_snr"])
    assert torch.equal(log_snr.isinf(), expected["log_snr"].isinf())
    assert torch.allclose(log_snr[~log_snr.isinf()], expected["log_snr"][~log_snr.isinf()], rtol=1e-12)
    assert answer["snr_zero"] == expected["log_snr"].isneginf().tolist()
    curve = from_json(answer["log_snr_curve"])
    assert torch.equal(curve.isinf(), expected["curve"].isinf())
    assert torch.allclose(curve[~curve.isinf()], expected["curve"][~curve.isinf()], rtol=1e-12)
    if zsnr:
        assert answer["log_snr_curve"][-1] is None  # SNR 0: JSON null, never a clipped number
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


def test_defaults_and_both_url_prefixes(client):
    status, plain = ask(client)
    assert status == 200
    assert (plain["spacing"], plain["steps"], plain["denoise"], plain["steps_offset"], plain["schedule"],
            plain["zsnr"], plain["T"]) == ("trailing", 20, 1.0, 0, "scaled_linear", False, 1000)
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
