"""ZSNRSchedulePlot in the real host: the image, the schedules it reads from plain and patched
models, the steps it marks (equal to the scheduler's), the SIGMAS input, and input errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from zsnr_core.schedules import betas, plot_data, spacing
from zsnr_host_helpers import host_zsnr_clamp, reference, v_adapter, zero_snr
from zsnr_testlib import TEST_OUTPUT

pytestmark = pytest.mark.host
NODE = "ZSNRSchedulePlot"
# the plot's colour for the SNR-0 marker and label (nodes/schedule_plot.py COLOURS["snr_zero"])
SNR_ZERO_RGB = np.array([200, 30, 40]) / 255.0
TITLE_ROWS = 44  # MARGIN_TOP: the title is drawn above the plot area


@pytest.fixture(scope="module", autouse=True)
def temp_directory(host):
    """The preview PNGs go to a test folder, never into the host tree."""
    import folder_paths

    previous = folder_paths.get_temp_directory()
    folder = TEST_OUTPUT / "hosts" / "inprocess" / "temp"
    folder.mkdir(parents=True, exist_ok=True)
    folder_paths.set_temp_directory(str(folder))
    yield folder
    folder_paths.set_temp_directory(previous)


def plot(host, model, **inputs):
    out = host.node[NODE].execute(model=model, **{"spacing": "trailing", "steps": 10, "y_axis": "log_snr", **inputs})
    return out.result[0], out.ui.as_dict()


def snr_zero_pixels(image: torch.Tensor) -> int:
    """Pixels in the SNR-0 marker's colour; they must lie at the right end (t = T-1) of the plot."""
    pixels = image[0].numpy()
    _, columns = np.nonzero(np.abs(pixels - SNR_ZERO_RGB).max(axis=-1) < 0.08)
    assert (columns > pixels.shape[1] // 2).all()
    return len(columns)


def scheduler_sigmas(host, model, spacing_name, steps):
    return host.node["TimestepSpacingScheduler"].execute(
        model=model, spacing=spacing_name, steps=steps, denoise=1.0, steps_offset=0).result[0]


@pytest.mark.parametrize("y_axis", plot_data.Y_AXES)
def test_image_and_preview_on_a_plain_and_a_patched_model(host, temp_directory, y_axis):
    plain = reference(host)
    for model in (plain, zero_snr(host, plain)):
        image, ui = plot(host, model, y_axis=y_axis)
        assert image.shape == (1, 450, 800, 3) and image.dtype == torch.float32
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        assert float(image.std()) > 0.05  # not a blank canvas
        saved = ui["images"]
        assert len(saved) == 1 and saved[0]["type"] == "temp"
        assert (temp_directory / saved[0]["subfolder"] / saved[0]["filename"]).is_file()


def test_snr_zero_end_is_drawn_only_for_a_zero_terminal_snr_model(host):
    plain = reference(host)
    assert snr_zero_pixels(plot(host, plain)[0]) == 0
    for y_axis in plot_data.Y_AXES:
        # the arrow (or ring) and its label: dozens of solid pixels after antialiasing
        assert snr_zero_pixels(plot(host, zero_snr(host, plain), y_axis=y_axis)[0]) > 40, y_axis


@pytest.fixture(scope="module")
def schedule_plot_module(host):
    return host.pack.nodes.schedule_plot


def test_plain_model_has_no_original_curve(host, schedule_plot_module):
    current, original, table = schedule_plot_module.model_schedules(reference(host))
    assert original is None
    sd = betas.alphas_cumprod_from_betas(betas.make_betas("scaled_linear"))
    # the host's float32 sigma table of the SD schedule, back to alphā (upstream comfy/model_sampling.py, ModelSamplingDiscrete)
    assert torch.allclose(current, sd, rtol=1e-5)
    assert len(table) == 1000


def test_exact_zero_terminal_snr_model_plots_exact_zero_and_its_original(host, schedule_plot_module):
    patched = v_adapter(host, zero_snr(host, reference(host)))
    current, original, table = schedule_plot_module.model_schedules(patched)
    sd = betas.alphas_cumprod_from_betas(betas.make_betas("scaled_linear"))
    assert current[-1] == 0.0  # SNR 0 itself, not the sentinel sigma the host table holds
    assert math.isfinite(float(table[-1]))
    assert torch.allclose(current, betas.rescale_alphas_cumprod_zero_terminal_snr(sd), rtol=1e-12, atol=0)
    assert torch.allclose(original, sd, rtol=1e-12)


def test_hosts_own_zsnr_option_shows_the_clamped_end_and_the_original(host, schedule_plot_module):
    clamped = host_zsnr_clamp(reference(host))
    current, original, _ = schedule_plot_module.model_schedules(clamped)
    assert original is not None
    # ComfyUI's zsnr clamp: alphā_T = 4.8973451890853435e-08 (upstream comfy/model_sampling.py), finite log-SNR
    assert float(current[-1]) == pytest.approx(4.8973451890853435e-08, rel=1e-3)


@pytest.mark.parametrize("spacing_name", spacing.SPACINGS)
def test_marked_steps_equal_the_schedulers(host, schedule_plot_module, spacing_name):
    model = zero_snr(host, reference(host))
    _, _, table = schedule_plot_module.model_schedules(model)
    sigmas = scheduler_sigmas(host, model, spacing_name, 12)
    from_sigmas = plot_data.timesteps_from_sigmas(sigmas, table)
    expected = spacing.select_timesteps(spacing_name, 12, 1000)
    tolerance = 0 if spacing_name != "sgm_uniform" else 2e-3  # float32 sigmas of fractional t
    assert torch.allclose(from_sigmas, expected, rtol=0, atol=tolerance)
    assert torch.equal(plot_data.selected_timesteps(spacing_name, 12, 1000), expected)


def test_sigmas_input_marks_the_same_steps_as_spacing_and_steps(host):
    model = zero_snr(host, reference(host))
    by_rule, _ = plot(host, model, spacing="leading", steps=8)
    by_sigmas, _ = plot(host, model, spacing="trailing", steps=3,
                        sigmas=scheduler_sigmas(host, model, "leading", 8))
    # the titles differ ("leading spacing, 8 steps" vs "8 steps from the SIGMAS input"); the plot
    # below them must be pixel-identical, and differ from another spacing's
    assert torch.equal(by_rule[:, TITLE_ROWS:], by_sigmas[:, TITLE_ROWS:])
    trailing, _ = plot(host, model, spacing="trailing", steps=8)
    assert not torch.equal(trailing[:, TITLE_ROWS:], by_rule[:, TITLE_ROWS:])


def test_logsnr_resolution_is_marked_for_the_size_recorded_on_the_model(host, schedule_plot_module):
    model = zero_snr(host, reference(host))
    patched = host.node["ZSNRSamplingResolution"].execute(model=model, width=1024, height=512).result[0]
    recorded, _ = plot(host, patched, spacing="logsnr_resolution", steps=8)
    # what TimestepSpacingScheduler (and the KSampler list) space for the recorded 64x128 latent
    sigmas = scheduler_sigmas(host, patched, "logsnr_resolution", 8)
    _, _, table = schedule_plot_module.model_schedules(patched)
    assert torch.equal(plot_data.timesteps_from_sigmas(sigmas, table),
                       spacing.select_timesteps("logsnr_resolution", 8, 1000, latent_size=(64, 128)))
    by_sigmas, _ = plot(host, patched, spacing="trailing", steps=3, sigmas=sigmas)
    assert torch.equal(recorded[:, TITLE_ROWS:], by_sigmas[:, TITLE_ROWS:])
    at_reference_size, _ = plot(host, model, spacing="logsnr_resolution", steps=8)
    assert not torch.equal(at_reference_size[:, TITLE_ROWS:], recorded[:, TITLE_ROWS:])
    # the other spacings read no size; the title names the one drawn
    assert torch.equal(plot(host, patched, spacing="trailing", steps=8)[0], plot(host, model, spacing="trailing", steps=8)[0])
    assert schedule_plot_module._size_note("logsnr_resolution", (64, 128)) == ", 64x128 latent"
    assert schedule_plot_module._size_note("logsnr_resolution", None) == ", 64x64 latent (reference)"
    assert schedule_plot_module._size_note("trailing", (64, 128)) == ""


def test_sigmas_of_a_host_scheduler_are_marked(host):
    import comfy.samplers

    model = zero_snr(host, reference(host))
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "karras", 10)
    image, _ = plot(host, model, sigmas=sigmas)
    assert image.shape == (1, 450, 800, 3)
    # karras on the host's table starts at the top sigma, i.e. the SNR-0 step (upstream comfy/model_sampling.py, ModelSamplingDiscrete)
    table = model.get_model_object("model_sampling").sigmas
    marked = plot_data.timesteps_from_sigmas(sigmas, table)
    # (karras recomputes sigma_max through its rho power: equal to the top entry to ~1e-6)
    assert len(marked) == 10 and marked[0] == pytest.approx(999, abs=1e-3) and (marked[1:] < 999).all()


def test_bad_inputs_name_the_node_and_input(host):
    node = host.node[NODE]
    assert "ZSNRSchedulePlot" in node.validate_inputs(spacing="bogus", y_axis="log_snr")
    message = node.validate_inputs(spacing="trailing", y_axis="snr")
    assert "y_axis" in message and "log_snr" in message
    assert node.validate_inputs(spacing="trailing", y_axis="sigma") is True
    with pytest.raises(ValueError, match="ZSNRSchedulePlot: input 'y_axis'"):
        plot(host, reference(host), y_axis="snr")
    with pytest.raises(ValueError, match="ZSNRSchedulePlot: .*'sigmas'"):
        plot(host, reference(host), sigmas=torch.tensor([1.0, float("nan"), 0.0]))


def test_every_input_of_every_pack_node_has_a_tooltip(host):
    missing = []
    for node in host.pack.NODES:
        schema = node.define_schema()
        missing += [f"{schema.node_id}.{item.id}" for item in schema.inputs if not item.tooltip]
    assert missing == []


def test_schema_of_the_plot_node(host):
    schema = host.node[NODE].define_schema()
    assert schema.display_name == "Schedule Plot (zsnr)" and schema.category == "zsnr/diagnostics"
    assert schema.is_output_node
    assert [item.id for item in schema.inputs] == ["model", "spacing", "steps", "y_axis", "sigmas"]
    assert [item.io_type for item in schema.outputs] == ["IMAGE"]
