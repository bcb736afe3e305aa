"""The real frontend (comfyui-frontend-package) in headless Chromium, driven by Playwright: our
extension loads cleanly, every example workflow loads with no missing node types, the live preview
follows the widgets, and a schedule-plot workflow queued from the page shows its image in the node.

Chromium is Debian's (/usr/bin/chromium, installed by the test setup); Playwright never downloads
a browser here. Screenshots of every test go to test_output/browser/.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from build_example_workflows import OUT as EXAMPLES_DIR
from PIL import Image
from workflow_format import api_to_ui, strip_meta, ui_to_api
from zsnr_core.schedules import plot_data, spacing
from zsnr_testlib import ROOT, TEST_OUTPUT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
# Debian's package installs /usr/bin/chromium; older releases name it chromium-browser
CHROMIUM = next((Path(p) for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and Path(p).is_file()), Path("/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
SCREENSHOTS = TEST_OUTPUT / "browser"
README_SCREENSHOT = ROOT / "docs" / "live_widget.png"
EXTENSION_NAME = "zsnr.livePreview"
OUR_CODE = re.compile(r"/extensions/zsnr/|zsnr preview|zsnr\.livePreview")
REFERENCE = {"class_type": "ZSNRReferenceModel", "inputs": {
    "dataset": "brightness_ramp", "trained_schedule": "scaled_linear_zsnr", "prediction": "v_prediction"}}


def schedule_plot_graph() -> dict:
    """The graph the schedule_plot example holds: reference model → ZeroTerminalSNR → plot."""
    return {
        "1": dict(REFERENCE),
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": "exact"}},
        "3": {"class_type": "ZSNRSchedulePlot", "inputs": {
            "model": ["2", 0], "spacing": "trailing", "steps": 10, "y_axis": "log_snr"}},
    }


def preview_graph() -> dict:
    return {
        "1": dict(REFERENCE),
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": "exact"}},
        "3": {"class_type": "TimestepSpacingScheduler", "inputs": {
            "model": ["2", 0], "spacing": "trailing", "steps": 20, "denoise": 1.0, "steps_offset": 0}},
    }


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"browser tier cannot run in CI: {reason}")
    pytest.skip(f"browser tier skipped: {reason} (install Debian's chromium: apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} not found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser, server, request):
    """A fresh page on the server's frontend, ready once our extension and node types are in;
    its console messages are collected in page.zsnr_messages; a screenshot is saved afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    messages: list[dict] = []
    page.on("console", lambda m: messages.append({"type": m.type, "text": m.text, "url": m.location.get("url", "")}))
    page.on("pageerror", lambda e: messages.append({"type": "pageerror", "text": f"{e}\n{e.stack or ''}", "url": ""}))
    page.zsnr_messages = messages
    page.goto(server.url)
    page.wait_for_function(
        "() => window.app?.graph && window.app.canvas && window.LiteGraph?.registered_node_types?.ZSNRSchedulePlot"
        " && (window.app.extensions || []).some(e => e.name === 'zsnr.livePreview')", timeout=120_000)
    try:
        yield page
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        context.close()


def our_problems(messages: list[dict]) -> list[dict]:
    """Errors and warnings that come from our extension (the frontend's own 404s and registry
    look-ups, which fail offline, are not ours)."""
    return [m for m in messages if m["type"] in ("error", "warning", "pageerror")
            and (OUR_CODE.search(m["text"]) or OUR_CODE.search(m["url"]))]


def load_workflow(page, workflow: dict) -> list[str]:
    """Load through the frontend (app.loadGraphData); returns the node types it reported missing."""
    return page.evaluate(
        """async (workflow) => {
            const missing = [];
            const original = app.showMissingNodesError;
            app.showMissingNodesError = (types, ...rest) => { missing.push(...types.map(t => t.type ?? t)); };
            try { await app.loadGraphData(workflow); } finally { app.showMissingNodesError = original; }
            return missing;
        }""", workflow)


def wait_preview(page, node_id: int, **expected):
    condition = " && ".join(f"s.{key} === {json.dumps(value)}" for key, value in expected.items())
    page.wait_for_function(
        f"""() => {{ const s = app.graph.getNodeById({node_id})?.zsnrPreview;
                     return s && s.status === 'ok' && {condition or 'true'}; }}""", timeout=20_000)
    return page.evaluate(f"""() => {{ const s = app.graph.getNodeById({node_id}).zsnrPreview;
        return {{status: s.status, steps: s.steps, spacing: s.spacing, params: s.params, timesteps: s.timesteps,
                 snr_zero: s.answer.snr_zero, requests: s.requests}}; }}""")


def set_widget(page, node_id: int, name: str, value):
    """Change a widget the way the frontend does on a user edit (BaseWidget.setValue: value,
    callback, node.onWidgetChanged, graph version)."""
    page.evaluate(
        """([id, name, value]) => {
            const node = app.graph.getNodeById(id);
            node.widgets.find(w => w.name === name).setValue(value, {e: null, node, canvas: app.canvas});
            app.canvas.setDirty(true, true);
        }""", [node_id, name, value])


def preview_pixels(page, node_id: int) -> str:
    return page.evaluate(f"""() => {{
        const c = app.graph.getNodeById({node_id}).zsnrPreview.canvas;
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let hash = 0;
        for (let i = 0; i < data.length; i += 7) hash = (hash * 31 + data[i]) >>> 0;
        return `${{c.width}}x${{c.height}}:${{hash}}`;
    }}""")


def node_screenshot(page, node_id: int, path: Path) -> None:
    """Centre the node at zoom 1.25 and save a screenshot of just that node."""
    box = page.evaluate(f"""() => {{
        const node = app.graph.getNodeById({node_id}), ds = app.canvas.ds;
        const title = LiteGraph.NODE_TITLE_HEIGHT;
        ds.scale = 1.25;
        ds.offset = [-node.pos[0] + 240, -node.pos[1] + title + 140];
        app.canvas.setDirty(true, true);
        const rect = app.canvas.canvas.getBoundingClientRect();
        return {{x: rect.left + (node.pos[0] + ds.offset[0]) * ds.scale - 12,
                 y: rect.top + (node.pos[1] - title + ds.offset[1]) * ds.scale - 30,
                 width: node.size[0] * ds.scale + 24, height: (node.size[1] + title) * ds.scale + 42}};
    }}""")
    page.wait_for_timeout(500)  # two frames: the canvas and the DOM widget follow the new view
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), clip=box)


def test_page_loads_with_no_errors_from_our_extension(page, object_info):
    assert load_workflow(page, api_to_ui(preview_graph(), object_info)) == []
    wait_preview(page, 3)
    names = page.evaluate("() => app.extensions.map(e => e.name)")
    assert EXTENSION_NAME in names
    assert our_problems(page.zsnr_messages) == []


EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_workflow_loads_with_no_missing_node_types(page, object_info, path):
    workflow = json.loads(path.read_text())
    assert load_workflow(page, workflow) == []
    loaded = page.evaluate("() => app.graph.nodes.map(n => [n.id, n.type, n.type in LiteGraph.registered_node_types])")
    assert sorted(n[0] for n in loaded) == sorted(n["id"] for n in workflow["nodes"])
    assert all(registered for _, _, registered in loaded), loaded
    # what the frontend would queue and what it would save are the workflow's own graph: our
    # preview widget adds no input and no widget value
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    assert strip_meta(prompt) == strip_meta(ui_to_api(workflow, object_info))
    saved = page.evaluate("() => app.graph.serialize()")
    assert strip_meta(ui_to_api(saved, object_info)) == strip_meta(ui_to_api(workflow, object_info))
    assert our_problems(page.zsnr_messages) == []


def test_live_preview_follows_the_widgets_without_queueing(page, object_info, client):
    assert load_workflow(page, api_to_ui(preview_graph(), object_info)) == []
    first = wait_preview(page, 3, steps=20)
    # the model input comes from the reference model (SD family) through ZeroTerminalSNR
    assert first["params"] == {"spacing": "trailing", "steps": 20, "denoise": 1, "steps_offset": 0,
                               "schedule": "scaled_linear", "zsnr": True}
    assert first["timesteps"] == spacing.select_timesteps("trailing", 20, 1000).tolist()
    pixels = preview_pixels(page, 3)
    queue_before = client.get_json("/queue")

    set_widget(page, 3, "steps", 10)
    after = wait_preview(page, 3, steps=10)
    # paper Table 2, trailing, 0-indexed: 999, 899, …, 99; the first is the SNR-0 step
    assert after["timesteps"] == [float(t) for t in range(999, 0, -100)]
    assert after["snr_zero"] == [True] + [False] * 9
    assert preview_pixels(page, 3) != pixels, "the preview canvas was not redrawn"
    node_screenshot(page, 3, README_SCREENSHOT)

    set_widget(page, 3, "spacing", "leading")
    set_widget(page, 3, "steps_offset", 1)
    leading = wait_preview(page, 3, spacing="leading", steps=10)
    assert leading["timesteps"] == spacing.select_timesteps("leading", 10, 1000, steps_offset=1).tolist()
    set_widget(page, 3, "denoise", 0.5)
    page.wait_for_function("() => app.graph.getNodeById(3).zsnrPreview.params.denoise === 0.5 && "
                           "app.graph.getNodeById(3).zsnrPreview.status === 'ok'", timeout=20_000)
    half = wait_preview(page, 3)
    assert half["timesteps"] == plot_data.selected_timesteps("leading", 10, 1000, 0.5, 1).tolist()

    # an upstream edit (the model's training family) is picked up too
    set_widget(page, 1, "trained_schedule", "cosine")
    page.wait_for_function("() => app.graph.getNodeById(3).zsnrPreview.params.schedule === 'cosine' && "
                           "app.graph.getNodeById(3).zsnrPreview.status === 'ok'", timeout=20_000)
    assert client.get_json("/queue") == queue_before == {"queue_running": [], "queue_pending": []}
    assert our_problems(page.zsnr_messages) == []


def test_live_preview_shows_route_errors_inside_the_widget(page, object_info):
    assert load_workflow(page, api_to_ui(preview_graph(), object_info)) == []
    wait_preview(page, 3)
    set_widget(page, 3, "steps", 5000)  # the widget allows it; the model has 1000 timesteps
    page.wait_for_function("() => app.graph.getNodeById(3).zsnrPreview.status === 'error'", timeout=20_000)
    error = page.evaluate("() => app.graph.getNodeById(3).zsnrPreview.error")
    assert "'steps'" in error and "from 1 to 1000" in error
    set_widget(page, 3, "steps", 8)
    assert len(wait_preview(page, 3, steps=8)["timesteps"]) == 8
    assert not [m for m in page.zsnr_messages if m["type"] == "pageerror"]
    assert our_problems(page.zsnr_messages) == []


def test_queued_schedule_plot_shows_its_image_in_the_node(page, object_info, client):
    example = EXAMPLES_DIR / "schedule_plot.json"
    workflow = json.loads(example.read_text()) if example.is_file() else api_to_ui(schedule_plot_graph(), object_info)
    assert load_workflow(page, workflow) == []
    plot_id = page.evaluate("() => app.graph.nodes.find(n => n.type === 'ZSNRSchedulePlot').id")
    wait_preview(page, plot_id)
    page.evaluate("""() => {
        window.zsnrExecuted = [];
        window.comfyAPI.api.api.addEventListener('executed', (e) => window.zsnrExecuted.push(e.detail));
        return app.queuePrompt(0, 1);
    }""")
    page.wait_for_function(
        f"""() => {{ const n = app.graph.getNodeById({plot_id});
                     return n.imgs?.length > 0 && n.imgs[0].complete && n.imgs[0].naturalWidth > 0; }}""",
        timeout=180_000)
    executed = page.evaluate("() => window.zsnrExecuted")
    ours = [e for e in executed if str(e["node"]) == str(plot_id)]
    assert len(ours) == 1 and len(ours[0]["output"]["images"]) == 1
    size = page.evaluate(f"() => [app.graph.getNodeById({plot_id}).imgs[0].naturalWidth, "
                         f"app.graph.getNodeById({plot_id}).imgs[0].naturalHeight]")
    assert size == [800, 450]
    image = Image.open(io.BytesIO(client.view(ours[0]["output"]["images"][0])))
    assert image.size == (800, 450) and image.mode == "RGB"
    node_screenshot(page, plot_id, SCREENSHOTS / "schedule_plot_node.png")
    assert our_problems(page.zsnr_messages) == []
