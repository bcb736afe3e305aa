"""ZSNRSchedulePlot: the model's noise schedule against t, its original before a zero-terminal-SNR
rescale, and the sampler's steps on it, as an IMAGE and as a preview in the node.

Drawn with Pillow (part of every ComfyUI install), at twice the size and downsampled for smooth
lines. The data comes from schedules/plot_data.py, which the /zsnr/timesteps route shares.
"""
from __future__ import annotations

import numpy as np
import torch
from comfy_api.latest import io, ui
from PIL import Image, ImageDraw, ImageFont

from ..schedules.conversions import alphas_cumprod_from_sigma
from ..schedules.logsnr_spacing import REFERENCE_LATENT_SIZE
from ..schedules.plot_data import Y_AXES, PlotData, build_plot_data, selected_timesteps, timesteps_from_sigmas
from ..schedules.spacing import SIZE_AWARE_SPACINGS, SPACINGS
from .errors import check_sigmas, node_error
from .schedulers import recorded_latent_size
from .schema_extras import search_aliases
from .validation import SchemaCheckedNode, check_arguments
from .zero_snr import FlowModel, model_schedule

NODE_ID = "ZSNRSchedulePlot"
WIDTH, HEIGHT, SCALE = 800, 450, 2  # output size; drawn at SCALE× and downsampled
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 78, 24, 44, 92
COLOURS = {"sampling": (31, 97, 181), "original": (140, 140, 140), "marks": (230, 120, 20),
           "snr_zero": (200, 30, 40), "grid": (228, 228, 228), "frame": (90, 90, 90), "text": (30, 30, 30)}


def model_schedules(model) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(sampling alphā float64, original alphā or None, the model's sigma table) of a discrete model.

    The original is shown only when the sampling schedule was rescaled to zero terminal SNR (by
    ZeroTerminalSNR, or by the host's own zsnr option, which ends at alphā = 4.9e-8 instead of 0).
    """
    try:
        base, terminal, _ = model_schedule(NODE_ID, model)
    except FlowModel as flow:
        raise node_error(NODE_ID, "model", f"a {flow} flow-matching model",
                         "a discrete-schedule model (SD 1.x/2.x/XL family); flow models have no "
                         "training timesteps to plot") from None
    sampling = model.get_model_object("model_sampling")
    table = sampling.sigmas.detach().to(torch.float64).cpu()
    current = getattr(sampling, "zsnr_alphas_cumprod", None)
    if current is None:
        current = alphas_cumprod_from_sigma(table)
    return current.to(torch.float64).cpu(), (base if terminal is not None else None), table


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size * SCALE)


class _Canvas:
    """Data → pixel mapping over the plot area of a SCALE× image."""

    def __init__(self, data: PlotData):
        self.data = data
        self.left, self.top = MARGIN_LEFT * SCALE, MARGIN_TOP * SCALE
        self.right, self.bottom = (WIDTH - MARGIN_RIGHT) * SCALE, (HEIGHT - MARGIN_BOTTOM) * SCALE
        self.image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), "white")
        self.draw = ImageDraw.Draw(self.image)

    def x(self, t: float) -> float:
        low, high = self.data.x_range
        return self.left + (t - low) / (high - low) * (self.right - self.left)

    def y(self, value: float) -> float:
        low, high = self.data.y_range
        return self.bottom - (value - low) / (high - low) * (self.bottom - self.top)

    def text(self, xy, text: str, size: int = 12, anchor: str = "la", fill=COLOURS["text"]):
        self.draw.text(xy, text, font=_font(size), anchor=anchor, fill=fill)


def _draw_axes(canvas: _Canvas, title: str) -> None:
    data, draw, s = canvas.data, canvas.draw, SCALE
    for t in data.x_ticks:
        x = canvas.x(t)
        draw.line([(x, canvas.top), (x, canvas.bottom)], fill=COLOURS["grid"], width=s)
        canvas.text((x, canvas.bottom + 6 * s), f"{t:g}", anchor="ma")
    for position, label in data.y_ticks:
        y = canvas.y(position)
        draw.line([(canvas.left, y), (canvas.right, y)], fill=COLOURS["grid"], width=s)
        canvas.text((canvas.left - 6 * s, y), label, anchor="rm")
    draw.rectangle([canvas.left, canvas.top, canvas.right, canvas.bottom], outline=COLOURS["frame"], width=s)
    canvas.text(((canvas.left + canvas.right) / 2, canvas.bottom + 24 * s),
                f"timestep t (0 = least noise, {data.x_range[1]:g} = most noise)", anchor="ma")
    canvas.text(((canvas.left + canvas.right) / 2, 14 * s), title, size=15, anchor="mm")
    label = Image.new("RGBA", (int(_font(13).getlength(data.y_label)) + 8 * s, 20 * s), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((4 * s, 10 * s), data.y_label, font=_font(13), anchor="lm", fill=COLOURS["text"])
    label = label.rotate(90, expand=True)
    canvas.image.paste(label, (8 * s, int((canvas.top + canvas.bottom - label.height) / 2)), label)


def _polyline_runs(canvas: _Canvas, t: torch.Tensor, y: torch.Tensor) -> list[list[tuple[float, float]]]:
    """Pixel polylines over the finite stretches of a curve (SNR-0 points are drawn separately)."""
    runs, current = [], []
    for ti, yi in zip(t.tolist(), y.tolist(), strict=True):
        if np.isfinite(yi):
            current.append((canvas.x(ti), canvas.y(yi)))
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def _draw_curve(canvas: _Canvas, t, y, colour, dashed: bool) -> None:
    for run in _polyline_runs(canvas, t, y):
        if not dashed:
            canvas.draw.line(run, fill=colour, width=3 * SCALE, joint="curve")
            continue
        dash = 12  # points per dash: one point per timestep, about 10 px at T = 1000
        for start in range(0, len(run) - 1, 2 * dash):
            canvas.draw.line(run[start:start + dash + 1], fill=colour, width=2 * SCALE)


def _draw_snr_zero(canvas: _Canvas, curve, colour) -> None:
    """SNR = 0 at t = T-1: an arrow to the plot edge where the value is infinite, a ring where
    it is finite (sqrt(alphā) = 0), and the label; never a clipped number."""
    data, draw, s = canvas.data, canvas.draw, SCALE
    for t in curve.snr_zero_timesteps:
        x, value = canvas.x(t), float(curve.y[t])
        if np.isfinite(value):
            tip = canvas.y(value)
            draw.ellipse([x - 7 * s, tip - 7 * s, x + 7 * s, tip + 7 * s], outline=colour, width=2 * s)
            # the curve runs into this corner: label it from the empty space above, with a leader
            label_y = canvas.y(data.y_range[0] + 0.45 * (data.y_range[1] - data.y_range[0]))
            draw.line([(x - 8 * s, label_y), (x, label_y), (x, tip - 8 * s)], fill=colour, width=s)
        else:
            before = curve.y[:t][torch.isfinite(curve.y[:t])]
            start = canvas.y(float(before[-1])) if len(before) else canvas.y(sum(data.y_range) / 2)
            tip = canvas.bottom - 2 * s if value < 0 else canvas.top + 2 * s
            head = 9 * s if value < 0 else -9 * s
            draw.line([(x, start), (x, tip - head)], fill=colour, width=2 * s)
            draw.polygon([(x, tip), (x - 6 * s, tip - head), (x + 6 * s, tip - head)], fill=colour)
            label_y = tip - 14 * s if value < 0 else tip + 14 * s
        canvas.text((x - 10 * s, label_y), data.snr_zero_label, size=12, anchor="rm", fill=colour)


def _draw_marks(canvas: _Canvas) -> None:
    data, draw, s, colour = canvas.data, canvas.draw, SCALE, COLOURS["marks"]
    for t, value in zip(data.marked_timesteps.tolist(), data.marked_y.tolist(), strict=True):
        x = canvas.x(t)
        draw.line([(x, canvas.bottom - 8 * s), (x, canvas.bottom)], fill=colour, width=2 * s)
        if np.isfinite(value):
            y, r = canvas.y(value), 5 * s
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline="white", width=s)
        else:  # a step at SNR 0: a triangle on the edge the arrow points to
            edge = canvas.bottom - 10 * s if value < 0 else canvas.top + 10 * s
            draw.regular_polygon((x, edge, 7 * s), 3, rotation=180 if value < 0 else 0, fill=colour)


def _draw_legend(canvas: _Canvas, entries: list[tuple[str, tuple, str]]) -> None:
    s, x = SCALE, canvas.left
    y = (HEIGHT - 26) * s
    for label, colour, kind in entries:
        if kind == "dot":
            canvas.draw.ellipse([x + 8 * s, y - 5 * s, x + 18 * s, y + 5 * s], fill=colour)
        else:
            canvas.draw.line([(x, y), (x + 26 * s, y)], fill=colour, width=(2 if kind == "dash" else 3) * s)
        canvas.text((x + 32 * s, y), label, anchor="lm")
        x += 32 * s + _font(12).getlength(label) + 22 * s


def render_plot(data: PlotData, title: str) -> torch.Tensor:
    """IMAGE [1, HEIGHT, WIDTH, 3] float32 in 0..1."""
    canvas = _Canvas(data)
    _draw_axes(canvas, title)
    sampling, *original = data.curves
    for curve in original:
        _draw_curve(canvas, curve.t, curve.y, COLOURS["original"], dashed=True)
    _draw_curve(canvas, sampling.t, sampling.y, COLOURS["sampling"], dashed=False)
    _draw_snr_zero(canvas, sampling, COLOURS["snr_zero"])
    _draw_marks(canvas)
    legend = [(sampling.label, COLOURS["sampling"], "line")]
    legend += [(curve.label, COLOURS["original"], "dash") for curve in original]
    legend.append((f"sampling steps ({len(data.marked_timesteps)})", COLOURS["marks"], "dot"))
    _draw_legend(canvas, legend)
    image = canvas.image.resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).unsqueeze(0)


def _size_note(spacing: str, latent_size) -> str:
    """The latent size a size-aware spacing was drawn for, for the title; the others read none."""
    if spacing not in SIZE_AWARE_SPACINGS:
        return ""
    height, width = latent_size or REFERENCE_LATENT_SIZE
    return f", {height}x{width} latent" + ("" if latent_size else " (reference)")


class ZSNRSchedulePlot(SchemaCheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_ID,
            display_name="Schedule Plot (zsnr)",
            category="zsnr/diagnostics",
            **search_aliases("schedule plot", "snr plot", "sigma plot", "log snr"),
            description="Plot the model's noise schedule (log-SNR, sqrt(alphā) or sigma against the timestep), "
                        "the original one when it was rescaled to zero terminal SNR (Lin et al. 2023, §3.1), and "
                        "the timesteps a sampler visits (§3.3, Table 2).",
            is_output_node=True,
            inputs=[
                io.Model.Input("model", tooltip="A discrete-schedule model (SD 1.x/2.x/XL family), plain or "
                                                "patched by Zero Terminal SNR (zsnr)."),
                io.Combo.Input("spacing", options=list(SPACINGS), default="trailing",
                               tooltip="Which timesteps to mark when 'sigmas' is not connected (the rule of "
                                       "Timestep Spacing Scheduler (zsnr))."),
                io.Int.Input("steps", default=20, min=1, max=1000,
                             tooltip="Number of marked steps when 'sigmas' is not connected."),
                io.Combo.Input("y_axis", options=list(Y_AXES), default="log_snr",
                               tooltip="log_snr: log(alphā/(1-alphā)), -inf at SNR 0; sqrt_alphas_cumprod: "
                                       "the signal coefficient, 0 at SNR 0; sigma: the host's noise level, "
                                       "log scale, inf at SNR 0."),
                io.Sigmas.Input("sigmas", optional=True,
                                tooltip="Optional: mark the steps of this SIGMAS schedule (any scheduler) "
                                        "instead of spacing/steps; each sigma is mapped to its timestep."),
            ],
            outputs=[io.Image.Output(tooltip="The plot as an IMAGE (800×450), also shown in the node.")],
        )

    @classmethod
    def execute(cls, model, spacing="trailing", steps=20, y_axis="log_snr", sigmas=None) -> io.NodeOutput:
        check_arguments(cls, model=model, spacing=spacing, steps=steps, y_axis=y_axis, sigmas=sigmas)
        current, original, table = model_schedules(model)
        if sigmas is not None:
            check_sigmas(NODE_ID, "sigmas", sigmas)  # what a SIGMAS tensor must hold: no schema says
        try:  # the core's own contract errors (schedules/plot_data.py), named after this node
            if sigmas is not None:
                marked = timesteps_from_sigmas(sigmas, table)
                source = f"{len(marked)} steps from the SIGMAS input"
            else:  # the size ZSNRSamplingResolution recorded, as the KSampler list takes it
                latent_size = recorded_latent_size(model.get_model_object("model_sampling"))
                marked = selected_timesteps(spacing, steps, len(table), latent_size=latent_size)
                source = f"{spacing} spacing, {steps} steps" + _size_note(spacing, latent_size)
        except ValueError as error:
            raise ValueError(f"{NODE_ID}: {error}") from error
        label = "zero terminal SNR (sampling)" if original is not None else "model schedule"
        data = build_plot_data(current, y_axis, marked, original, label=label,
                               original_label="original (before rescale)")
        image = render_plot(data, f"{data.y_label} vs timestep: {source}")
        return io.NodeOutput(image, ui=ui.PreviewImage(image, cls=cls))


NODES = [ZSNRSchedulePlot]
