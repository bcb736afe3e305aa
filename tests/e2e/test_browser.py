"""The real frontend (comfyui-frontend-package) in headless Chromium, driven by Playwright: our
extension loads cleanly, every example workflow loads with no missing node types, the live preview
follows the widgets, the model chain (also across subgraph boundaries) and the terminal mode, and a
schedule-plot workflow queued from the page shows its image in the node.

Every live-preview test runs on both renderers of the frontend: the classic LiteGraph canvas and
"Nodes 2.0" (setting Comfy.VueNodes.Enabled). On the canvas a widget edit is made as the frontend
makes it (BaseWidget.setValue); on Nodes 2.0 through the node's own DOM controls (typing into the
number field, picking a combo option, flipping a switch), so the test sees what a user's edit does.

Chromium is Debian's (/usr/bin/chromium, installed by the test setup); Playwright never downloads
a browser here. Screenshots of every test go to test_output/browser/ (git-ignored).

Longer than 250 lines: the fixtures and the helpers that drive the two renderers serve only this
tier, and splitting them into a module of their own would hide what each test does.
"""
from __future__ import annotations

import io
import json
import math
import re
import time
import urllib.parse
from pathlib import Path

import pytest
from build_example_workflows import OUT as EXAMPLES_DIR
from example_graphs import SCHEDULE_PLOT
from PIL import Image
from workflow_format import api_to_ui, strip_meta, ui_to_api
from zsnr_browser import SCREENSHOTS
from zsnr_core.schedules import plot_data, spacing

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
EXTENSION_NAME = "zsnr.livePreview"
OUR_CODE = re.compile(r"/extensions/zsnr/|zsnr preview|zsnr\.livePreview")
REFERENCE = {"class_type": "ZSNRReferenceModel", "inputs": {
    "dataset": "brightness_ramp", "trained_schedule": "scaled_linear_zsnr", "prediction": "v_prediction"}}
# the terminal alphā of the clamps (nodes/zsnr_sampling.py, README "How exact SNR 0 works"):
# ComfyUI's zsnr option and diffusers' Euler/DPM/UniPC schedulers with rescale_betas_zero_snr
CLAMPS = {"clamp_comfy": 4.8973451890853435e-08, "clamp_diffusers": 2.0**-24}
# a widget row in a Nodes 2.0 node: frontend 1.32 marks it by class, 1.49 by test id
VUE_WIDGET_ROW = '.lg-node-widget, [data-testid="node-widget"]'
# a toast of app.extensionManager.toast: PrimeVue's Toast up to 1.49, the frontend's own <li role=alert
# data-testid="toast"> in 1.58 (PrimeVue's class is not in its bundle)
TOAST = '.p-toast-message, [data-testid="toast"]'
# web/js/zsnr_settings.js: Settings → zsnr, through the frontend's settings API
LIVE_PREVIEW_SETTING = "zsnr.LivePreview.Enabled"
TOAST_SECONDS_SETTING = "zsnr.PredictionWarning.ToastSeconds"


def clamp_log_snr(alphas_cumprod_terminal: float) -> float:
    """log-SNR = log(alphā / (1 - alphā)) (paper §2, SNR = alphā / (1 - alphā))."""
    return math.log(alphas_cumprod_terminal / (1 - alphas_cumprod_terminal))


def preview_graph(model_node: dict | None = None) -> dict:
    """reference model → node 2 (ZeroTerminalSNR exact unless given) → Timestep Spacing Scheduler."""
    node_2 = model_node or {"class_type": "ZeroTerminalSNR", "inputs": {"terminal": "exact"}}
    return {
        "1": dict(REFERENCE),
        "2": {"class_type": node_2["class_type"], "inputs": {"model": ["1", 0], **node_2["inputs"]}},
        "3": {"class_type": "TimestepSpacingScheduler", "inputs": {
            "model": ["2", 0], "spacing": "trailing", "steps": 20, "denoise": 1.0, "steps_offset": 0}},
    }


def _open_page(browser, server, request, vue: bool, frontend: str | None):
    """A fresh page on the server's frontend, ready once our extension and node types are in and
    the renderer is the one asked for (the setting is stored per user on the server, so it is set
    on every page). Console messages go to page.zsnr_messages, our route's requests (as query
    dicts) to page.zsnr_requests; a screenshot is saved afterwards."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    messages: list[dict] = []
    requests: list[dict] = []
    page.on("console", lambda m: messages.append({"type": m.type, "text": m.text, "url": m.location.get("url", "")}))
    page.on("pageerror", lambda e: messages.append({"type": "pageerror", "text": f"{e}\n{e.stack or ''}", "url": ""}))
    page.on("request", lambda r: requests.append(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.url).query)))
            if "/zsnr/timesteps" in r.url else None)
    page.zsnr_messages, page.zsnr_requests = messages, requests
    page.goto(server.url)
    page.wait_for_function(
        "() => window.app?.graph && window.app.canvas && window.LiteGraph?.registered_node_types?.ZSNRSchedulePlot"
        " && (window.app.extensions || []).some(e => e.name === 'zsnr.livePreview')", timeout=120_000)
    if frontend:  # make test FRONTEND=<version>: the page must really run that release
        assert page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__") == frontend
    # the frontend's settings API: app.extensionManager.setting (1.32 and 1.49), else the older dialog's
    page.evaluate("""async (vue) => {
        const setting = app.extensionManager?.setting;
        if (setting?.set) await setting.set('Comfy.VueNodes.Enabled', vue);
        else await app.ui.settings.setSettingValueAsync('Comfy.VueNodes.Enabled', vue);
    }""", vue)
    # our own settings at their defaults, whatever a test stopped half-way left on the server
    page.evaluate("""async (defaults) => {
        for (const [id, value] of Object.entries(defaults))
            if (app.extensionManager.setting.get(id) !== value) await app.extensionManager.setting.set(id, value);
    }""", {LIVE_PREVIEW_SETTING: True, TOAST_SECONDS_SETTING: 20})
    page.wait_for_function(f"() => LiteGraph.vueNodesMode === {json.dumps(vue)}", timeout=20_000)
    try:
        yield page
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
        context.close()


@pytest.fixture
def page(browser, server, request, renderer, requested_frontend):
    yield from _open_page(browser, server, request, renderer == "vue", requested_frontend)


@pytest.fixture
def classic_page(browser, server, request, requested_frontend):
    yield from _open_page(browser, server, request, False, requested_frontend)


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


def load_preview_graph(page, object_info, renderer: str, graph: dict | None = None) -> None:
    assert load_workflow(page, api_to_ui(graph or preview_graph(), object_info)) == []
    show_all_nodes(page)
    assert_renderer(page, renderer)


def show_all_nodes(page) -> None:
    """Scroll the canvas (zoom 0.8) so every node is inside the window and can be clicked."""
    page.evaluate("""() => {
        const nodes = app.canvas.graph.nodes, ds = app.canvas.ds;
        ds.scale = 0.8;
        ds.offset = [80 - Math.min(...nodes.map(n => n.pos[0])), 140 - Math.min(...nodes.map(n => n.pos[1]))];
        app.canvas.setDirty(true, true);
    }""")
    page.wait_for_timeout(300)  # a frame: Nodes 2.0 moves its node elements with the canvas transform


def assert_renderer(page, renderer: str) -> None:
    """Nodes 2.0 draws every node as a DOM element; the classic canvas draws none."""
    if renderer == "vue":
        page.wait_for_selector('[data-node-id="3"]', timeout=20_000)
    else:
        assert page.locator("[data-node-id]").count() == 0


NODE = "app.graph.getNodeById({})"


def preview(page, node: str = "app.graph.getNodeById(3)", query: dict | None = None, drawn: bool = True,
            **expected) -> dict:
    """The preview state of `node` (a JS expression) once its answer is in (and drawn, unless the
    node is in a graph not shown), its fields equal `expected` and its route query holds `query`."""
    state = None
    for _ in range(200):
        state = page.evaluate(f"""() => {{ const s = ({node})?.zsnrPreview;
            return s && {{status: s.status, steps: s.steps, spacing: s.spacing, terminal: s.terminal, params: s.params,
                     timesteps: s.timesteps, snr_zero: s.answer?.snr_zero, requests: s.requests, drawn: s.drawn,
                     shown: s.canvas.isConnected && s.canvas.getBoundingClientRect().width > 0}}; }}""")
        if (state and state["status"] == "ok" and (not drawn or (state["drawn"] or {}).get("status") == "ok")
                and all(state.get(key) == value for key, value in expected.items())
                and (query or {}).items() <= (state["params"] or {}).items()):
            return state
        page.wait_for_timeout(100)
    raise AssertionError(f"preview never reached {expected} {query or ''}; last state: "
                         f"{ {k: v for k, v in (state or {}).items() if k not in ('drawn', 'timesteps')} }")


def requested(page, **params) -> None:
    """Wait until the page has asked our route with these parameters (strings, as in the URL)."""
    wanted = {k: str(v) for k, v in params.items()}
    for _ in range(100):
        if any(wanted.items() <= query.items() for query in page.zsnr_requests):
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"no GET /zsnr/timesteps with {wanted}; sent: {page.zsnr_requests[-5:]}")


def widget_value(page, node_id: int, name: str):
    return page.evaluate("([id, name]) => app.canvas.graph.getNodeById(id).widgets.find(w => w.name === name).value",
                         [node_id, name])


def edit_widget(page, renderer: str, node_id: int, name: str, value) -> None:
    """Change a widget of a node in the graph shown (app.canvas.graph) as a user would."""
    if renderer == "classic":
        # BaseWidget.setValue: what the canvas runs on an edit (value, callback, onWidgetChanged)
        page.evaluate(
            """([id, name, value]) => {
                const node = app.canvas.graph.getNodeById(id);
                node.widgets.find(w => w.name === name).setValue(value, {e: null, node, canvas: app.canvas});
                app.canvas.setDirty(true, true);
            }""", [node_id, name, value])
    else:
        edit_vue_widget(page, node_id, name, value)
    assert widget_value(page, node_id, name) == (pytest.approx(value, abs=1e-9) if isinstance(value, float) else value)


def edit_vue_widget(page, node_id: int, name: str, value) -> None:
    node = page.locator(f'[data-node-id="{node_id}"]')
    row = node.locator(VUE_WIDGET_ROW).filter(has=page.get_by_text(name, exact=True))
    advanced = node.locator('[data-testid="advanced-inputs-button"]')  # 1.49 folds advanced inputs away
    if row.count() == 0 and advanced.count():
        advanced.click()
    if isinstance(value, bool):
        if widget_value(page, node_id, name) != value:
            row.locator("[role=switch]").click(force=True)  # 1.32's switch is a transparent checkbox
    elif isinstance(value, str):
        row.locator("[role=combobox]").first.click()
        page.get_by_role("option", name=value, exact=True).click()
        page.get_by_role("listbox").wait_for(state="hidden")  # it fades out over the widgets below
    else:
        # 1.49 lays a drag-to-scrub layer over the field; a click on it starts text editing
        row.locator("input[role=spinbutton]").click(force=True)
        if isinstance(value, int):
            page.keyboard.press("Control+a")
            page.keyboard.type(str(value))
            page.keyboard.press("Enter")
            return
        # 1.32's field takes no decimal point (its InputNumber gets no fraction digits), so a
        # fraction is reached with the arrow keys, one widget step per press, in both frontends
        step = page.evaluate("([id, name]) => { const w = app.canvas.graph.getNodeById(id).widgets"
                             ".find(w => w.name === name); return w.options.step2 ?? w.options.round; }", [node_id, name])
        presses = round((widget_value(page, node_id, name) - value) / step)
        for _ in range(abs(presses)):
            page.keyboard.press("ArrowDown" if presses > 0 else "ArrowUp")
        page.keyboard.press("Enter")


def preview_pixels(page, node: str = "app.graph.getNodeById(3)") -> str:
    return page.evaluate(f"""() => {{
        const c = ({node}).zsnrPreview.canvas;
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let hash = 0;
        for (let i = 0; i < data.length; i += 7) hash = (hash * 31 + data[i]) >>> 0;
        return `${{c.width}}x${{c.height}}:${{hash}}`;
    }}""")


def node_screenshot(page, renderer: str, node_id: int, path: Path) -> None:
    """A screenshot of just that node (on the canvas: centred at zoom 1.25)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if renderer == "vue":
        page.locator(f'[data-node-id="{node_id}"]').screenshot(path=str(path))
        return
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
    page.screenshot(path=str(path), clip=box)


def test_page_loads_with_no_errors_from_our_extension(page, object_info, renderer):
    load_preview_graph(page, object_info, renderer)
    assert preview(page)["shown"], "the preview canvas is not on the page"
    names = page.evaluate("() => app.extensions.map(e => e.name)")
    assert EXTENSION_NAME in names
    node_screenshot(page, renderer, 3, SCREENSHOTS / f"live_preview_{renderer}.png")
    assert our_problems(page.zsnr_messages) == []


EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_workflow_loads_with_no_missing_node_types(classic_page, object_info, path):
    page = classic_page
    workflow = json.loads(path.read_text())
    assert load_workflow(page, workflow) == []
    loaded = page.evaluate("() => app.graph.nodes.map(n => [n.id, n.type, n.type in LiteGraph.registered_node_types])")
    # frontend 1.49 keeps node ids as strings, 1.32 as numbers
    assert sorted(str(n[0]) for n in loaded) == sorted(str(n["id"]) for n in workflow["nodes"])
    assert all(registered for _, _, registered in loaded), loaded
    # what the frontend would queue and what it would save are the workflow's own graph: our
    # preview widget adds no input and no widget value
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    assert strip_meta(prompt) == strip_meta(ui_to_api(workflow, object_info))
    saved = page.evaluate("() => app.graph.serialize()")
    assert strip_meta(ui_to_api(saved, object_info)) == strip_meta(ui_to_api(workflow, object_info))
    assert our_problems(page.zsnr_messages) == []


def test_live_preview_follows_the_widgets_without_queueing(page, object_info, client, renderer):
    load_preview_graph(page, object_info, renderer)
    first = preview(page, steps=20)
    # the model input comes from the reference model (SD family) through ZeroTerminalSNR exact
    assert first["params"] == {"spacing": "trailing", "steps": 20, "denoise": 1, "steps_offset": 0,
                               "schedule": "scaled_linear", "terminal": "exact"}
    assert first["timesteps"] == spacing.select_timesteps("trailing", 20, 1000).tolist()
    assert len(first["drawn"]["marks"]) == 19 and first["drawn"]["snrZeroMarks"] == 1
    pixels = preview_pixels(page)
    queue_before = client.get_json("/queue")

    edit_widget(page, renderer, 3, "steps", 10)
    requested(page, steps=10, spacing="trailing", terminal="exact")
    after = preview(page, steps=10)
    # paper Table 2, trailing, 0-indexed: 999, 899, …, 99; the first is the SNR-0 step
    assert after["timesteps"] == [float(t) for t in range(999, 0, -100)]
    assert after["snr_zero"] == [True] + [False] * 9
    assert len(after["drawn"]["marks"]) == 9 and after["drawn"]["snrZeroMarks"] == 1
    assert "10 steps" in after["drawn"]["header"]
    assert preview_pixels(page) != pixels, "the preview canvas was not redrawn"
    node_screenshot(page, renderer, 3, SCREENSHOTS / f"live_widget_{renderer}.png")

    edit_widget(page, renderer, 3, "spacing", "leading")
    edit_widget(page, renderer, 3, "steps_offset", 1)
    requested(page, spacing="leading", steps=10, steps_offset=1)
    leading = preview(page, spacing="leading", steps=10)
    assert leading["timesteps"] == spacing.select_timesteps("leading", 10, 1000, steps_offset=1).tolist()
    edit_widget(page, renderer, 3, "denoise", 0.9)
    denoise = widget_value(page, 3, "denoise")  # 0.9 up to the frontend's stepping
    requested(page, spacing="leading", denoise=denoise)
    partial = preview(page, query={"spacing": "leading", "denoise": denoise})
    # BasicScheduler's rule: int(10 / 0.9) = 11 leading steps, of which the last 10 are kept
    assert partial["timesteps"] == plot_data.selected_timesteps("leading", 10, 1000, denoise, 1).tolist()
    assert partial["timesteps"] != leading["timesteps"]

    # an upstream edit (the model's training family) is picked up too
    edit_widget(page, renderer, 1, "trained_schedule", "cosine")
    requested(page, schedule="cosine", denoise=denoise)
    assert preview(page, query={"schedule": "cosine", "denoise": denoise})["drawn"]["header"].endswith("cosine")
    assert client.get_json("/queue") == queue_before == {"queue_running": [], "queue_pending": []}
    assert our_problems(page.zsnr_messages) == []


def route_answer(client, params: dict) -> dict:
    """GET /zsnr/timesteps with a preview's own query (its state.params)."""
    status, body = client.request("GET", "/zsnr/timesteps?" + urllib.parse.urlencode(params))
    assert status == 200, body
    return json.loads(body)


def assert_drawn_as_route(state: dict, answer: dict) -> None:
    """The preview drew the route's steps: every timestep as a mark, x proportional to t."""
    drawn = state["drawn"]
    assert state["timesteps"] == answer["timesteps"] == drawn["markTimesteps"]
    assert drawn["latentSize"] == answer["latent_size"]
    finite = [t for t, zero in zip(answer["timesteps"], answer["snr_zero"], strict=True) if not zero]
    assert len(drawn["marks"]) == len(finite) and drawn["snrZeroMarks"] == len(answer["timesteps"]) - len(finite)
    (x0, _), (x1, _) = drawn["marks"][0], drawn["marks"][-1]
    for (x, _), t in zip(drawn["marks"], finite, strict=True):  # x = left + t/(T-1)·width, drawn to 0.1 px
        assert x == pytest.approx(x0 + (t - finite[0]) * (x1 - x0) / (finite[-1] - finite[0]), abs=0.15)


def spaced_for_latent(page, client, height: int, width: int) -> dict:
    """The preview of node 3 once it is drawn for a height x width latent (20 logsnr_resolution
    steps): the header names the size and the marks are the route's and the spacing's."""
    state = preview(page, query={"latent_height": height, "latent_width": width})
    assert state["drawn"]["header"].endswith(f"· {height}×{width} latent")
    assert_drawn_as_route(state, route_answer(client, state["params"]))
    assert state["timesteps"] == plot_data.selected_timesteps("logsnr_resolution", 20, 1000,
                                                              latent_size=(height, width)).tolist()
    return state


def test_live_preview_spaces_for_the_size_of_the_linked_latent(page, object_info, client, renderer):
    graph = preview_graph()
    graph["4"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}}
    graph["5"] = {"class_type": "LatentUpscaleBy", "inputs": {
        "samples": ["4", 0], "upscale_method": "nearest-exact", "scale_by": 1.5}}
    graph["3"]["inputs"].update(spacing="logsnr_resolution", latent=["4", 0])
    load_preview_graph(page, object_info, renderer, graph)
    queue_before = client.get_json("/queue")
    # EmptyLatentImage's latent is height // 8 x width // 8 (upstream nodes.py): 1024 pixels, 128 positions
    square = preview(page, spacing="logsnr_resolution", query={"latent_height": 128, "latent_width": 128})
    assert square["drawn"]["latentSize"] == [128, 128] and square["drawn"]["header"].endswith("· 128×128 latent")
    answer = route_answer(client, square["params"])
    assert_drawn_as_route(square, answer)
    assert answer["timesteps"] == plot_data.selected_timesteps("logsnr_resolution", 20, 1000,
                                                               latent_size=(128, 128)).tolist()
    reference = plot_data.selected_timesteps("logsnr_resolution", 20, 1000).tolist()
    assert square["timesteps"] != reference
    pixels = preview_pixels(page)

    # the upstream width widget: 768 pixels are 96 positions, the preview asks again and re-draws
    edit_widget(page, renderer, 4, "width", 768)
    requested(page, latent_height=128, latent_width=96)
    wide = spaced_for_latent(page, client, 128, 96)
    assert wide["timesteps"] not in (square["timesteps"], reference)
    assert preview_pixels(page) != pixels, "the preview canvas was not redrawn"
    node_screenshot(page, renderer, 3, SCREENSHOTS / f"live_latent_size_{renderer}.png")

    # a latent sized only at run time (LatentUpscaleBy): the reference size, and the header says so
    page.evaluate("""() => { const scheduler = app.graph.getNodeById(3);
        app.graph.getNodeById(5).connect(0, scheduler, scheduler.findInputSlot('latent'));
        app.canvas.setDirty(true, true); }""")
    unknown = preview(page, timesteps=reference)
    assert "latent_height" not in unknown["params"] and unknown["drawn"]["latentSize"] is None
    assert unknown["drawn"]["header"].endswith("· 64×64 reference (latent sized at run time)")
    # unlinked: the node's own reference size
    page.evaluate("""() => { const scheduler = app.graph.getNodeById(3);
        scheduler.disconnectInput(scheduler.findInputSlot('latent')); app.canvas.setDirty(true, true); }""")
    page.wait_for_function("() => app.graph.getNodeById(3).zsnrPreview.drawn?.header.endsWith('· 64×64 reference')",
                           timeout=20_000)
    assert preview(page, timesteps=reference)["drawn"]["latentSize"] is None
    assert client.get_json("/queue") == queue_before == {"queue_running": [], "queue_pending": []}
    assert our_problems(page.zsnr_messages) == []


def test_live_preview_follows_a_primitive_feeding_the_latent_width(page, object_info, client, renderer):
    """A width linked from the host's PrimitiveInt (comfy_extras/nodes_primitive.py): editing the
    primitive's own value widget re-spaces the preview on both renderers, no graph change needed."""
    if "PrimitiveInt" not in object_info:
        pytest.skip("this host has no PrimitiveInt node")
    graph = preview_graph()
    graph["6"] = {"class_type": "PrimitiveInt", "inputs": {"value": 1024}}
    graph["4"] = {"class_type": "EmptyLatentImage", "inputs": {"width": ["6", 0], "height": 1024, "batch_size": 1}}
    graph["3"]["inputs"].update(spacing="logsnr_resolution", latent=["4", 0])
    load_preview_graph(page, object_info, renderer, graph)
    square = preview(page, spacing="logsnr_resolution", query={"latent_height": 128, "latent_width": 128})
    assert square["drawn"]["header"].endswith("· 128×128 latent")
    edit_widget(page, renderer, 6, "value", 512)
    requested(page, latent_height=128, latent_width=64)
    spaced_for_latent(page, client, 128, 64)
    assert our_problems(page.zsnr_messages) == []


def test_live_preview_spaces_for_the_size_recorded_on_the_model(page, object_info, client, renderer):
    if "ZSNRSamplingResolution" not in object_info:
        pytest.skip("this host has no ZSNRSamplingResolution node")
    # reference model → ZSNRSamplingResolution → ZeroTerminalSNR (keeps the recorded size) → scheduler
    graph = preview_graph()
    graph["4"] = {"class_type": "ZSNRSamplingResolution", "inputs": {"model": ["1", 0], "width": 1024, "height": 512}}
    graph["2"]["inputs"]["model"] = ["4", 0]
    graph["3"]["inputs"]["spacing"] = "logsnr_resolution"
    # a plot node's own spacing reads the recorded size too (nodes/schedule_plot.py)
    graph["5"] = {"class_type": "ZSNRSchedulePlot", "inputs": {
        "model": ["2", 0], "spacing": "logsnr_resolution", "steps": 20, "y_axis": "log_snr"}}
    load_preview_graph(page, object_info, renderer, graph)
    plot_node = "app.graph.getNodeById(5)"
    # nodes/sampling_resolution.py records (height // 8, width // 8)
    for node in ("app.graph.getNodeById(3)", plot_node):
        recorded = preview(page, node, query={"latent_height": 64, "latent_width": 128})
        assert recorded["drawn"]["header"].endswith("· 64×128 latent")
        assert_drawn_as_route(recorded, route_answer(client, recorded["params"]))
    edit_widget(page, renderer, 4, "height", 768)
    requested(page, latent_height=96, latent_width=128)
    preview(page, query={"latent_height": 96, "latent_width": 128})
    preview(page, plot_node, query={"latent_height": 96, "latent_width": 128})
    # bypassed, it records nothing: the reference size
    page.evaluate("() => { app.graph.getNodeById(4).mode = 4; app.canvas.setDirty(true, true); }")
    reference = plot_data.selected_timesteps("logsnr_resolution", 20, 1000).tolist()
    assert "latent_height" not in preview(page, timesteps=reference)["params"]
    assert "latent_height" not in preview(page, plot_node, timesteps=reference)["params"]
    assert our_problems(page.zsnr_messages) == []


def test_live_preview_shows_route_errors_inside_the_widget(page, object_info, renderer):
    load_preview_graph(page, object_info, renderer)
    preview(page)
    edit_widget(page, renderer, 3, "steps", 5000)  # the widget allows it; the model has 1000 timesteps
    page.wait_for_function("() => app.graph.getNodeById(3).zsnrPreview.drawn?.status === 'error'", timeout=20_000)
    error = page.evaluate("() => app.graph.getNodeById(3).zsnrPreview.error")
    assert "'steps'" in error and "from 1 to 1000" in error
    edit_widget(page, renderer, 3, "steps", 8)
    assert len(preview(page, steps=8)["timesteps"]) == 8
    assert not [m for m in page.zsnr_messages if m["type"] == "pageerror"]
    assert our_problems(page.zsnr_messages) == []


def test_live_preview_draws_each_terminal_mode(page, object_info, renderer):
    load_preview_graph(page, object_info, renderer)
    exact = preview(page, terminal="exact")
    assert exact["drawn"]["snrZeroArrow"] and exact["drawn"]["topLogSnr"] is None
    for mode, terminal_alphas_cumprod in CLAMPS.items():
        edit_widget(page, renderer, 2, "terminal", mode)
        requested(page, terminal=mode, steps=20)
        clamped = preview(page, terminal=mode)
        # a clamped top is drawn at its finite log-SNR, every step as a point on the curve
        assert clamped["drawn"]["topLogSnr"] == pytest.approx(clamp_log_snr(terminal_alphas_cumprod), rel=1e-9)
        assert not clamped["drawn"]["snrZeroArrow"] and clamped["drawn"]["snrZeroMarks"] == 0
        assert len(clamped["drawn"]["marks"]) == 20 and clamped["snr_zero"] == [False] * 20
    # bypassing the ZeroTerminalSNR node (Ctrl+B on the selected node) passes the model on unchanged
    if renderer == "vue":
        page.locator('[data-node-id="2"] [data-testid="node-title"]').click()
    else:
        page.evaluate("() => { app.canvas.selectNode(app.graph.getNodeById(2)); app.canvas.canvas.focus(); }")
    page.keyboard.press("Control+b")
    assert page.evaluate("() => app.graph.getNodeById(2).mode") == 4
    requested(page, terminal="none")
    plain = preview(page, terminal="none")
    # the model's own schedule: SD's terminal SNR 0.004682 (paper Table 1)
    assert math.exp(plain["drawn"]["topLogSnr"]) == pytest.approx(0.004682, rel=1e-3)
    assert our_problems(page.zsnr_messages) == []


def drag(page, source: str, target: str) -> None:
    """Press on the centre of `source`, move to `target` in steps and release (the mouse alone:
    1.49 lays a wider hit area over a slot's dot)."""
    start, end = (page.locator(selector).bounding_box() for selector in (source, target))
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def test_live_preview_follows_an_upstream_relink(page, object_info, renderer):
    graph = preview_graph()
    graph["4"] = {"class_type": "ZSNRReferenceModel", "inputs": {**REFERENCE["inputs"], "trained_schedule": "cosine"}}
    load_preview_graph(page, object_info, renderer, graph)
    preview(page, query={"schedule": "scaled_linear", "terminal": "exact"})
    # ZeroTerminalSNR's model now comes from the cosine reference model: the scheduler's own link is
    # unchanged, only the chain above it
    if renderer == "vue":  # dragged from the output's dot to the input's dot, as a user does
        drag(page, '[data-slot-key="4-out-0"]', '[data-slot-key="2-in-0"]')
    else:
        page.evaluate("""() => { app.graph.getNodeById(4).connect(0, app.graph.getNodeById(2), 0);
                                 app.canvas.setDirty(true, true); }""")
    assert page.evaluate("() => app.graph.getNodeById(2).getInputNode(0).id") in (4, "4")
    requested(page, schedule="cosine", terminal="exact")
    assert preview(page, query={"schedule": "cosine", "terminal": "exact"})["drawn"]["snrZeroArrow"]
    assert our_problems(page.zsnr_messages) == []


def test_live_preview_reads_the_hosts_zsnr_option_as_clamp_comfy(page, object_info, renderer):
    sampling = {"class_type": "ModelSamplingDiscrete", "inputs": {"sampling": "v_prediction", "zsnr": False}}
    load_preview_graph(page, object_info, renderer, preview_graph(sampling))
    assert preview(page, terminal="none")["drawn"]["topLogSnr"] is not None
    edit_widget(page, renderer, 2, "zsnr", True)
    requested(page, terminal="clamp_comfy")
    clamped = preview(page, terminal="clamp_comfy")
    assert clamped["drawn"]["topLogSnr"] == pytest.approx(clamp_log_snr(CLAMPS["clamp_comfy"]), rel=1e-9)
    assert our_problems(page.zsnr_messages) == []


def convert_to_subgraph(page, node_ids: list[int]) -> None:
    """The frontend's "Convert to Subgraph" (LGraph.convertToSubgraph); window.zsnrSubgraph is
    the new subgraph node."""
    supported = page.evaluate("() => [window.__COMFYUI_FRONTEND_VERSION__, typeof app.graph.convertToSubgraph]")
    if supported[1] != "function":
        pytest.skip(f"frontend {supported[0]} cannot build a subgraph programmatically (no convertToSubgraph)")
    page.evaluate("""(ids) => {
        window.zsnrSubgraph = app.graph.convertToSubgraph(new Set(ids.map(id => app.graph.getNodeById(id)))).node;
    }""", node_ids)


INNER = "window.zsnrSubgraph.subgraph.nodes.find(n => n.type === '{}')"


def inner_id(page, node_type: str) -> int:
    return page.evaluate(f"() => {INNER.format(node_type)}.id")


def test_live_preview_follows_a_model_that_comes_out_of_a_subgraph(page, object_info, renderer):
    load_preview_graph(page, object_info, renderer)
    preview(page, terminal="exact")
    convert_to_subgraph(page, [1, 2])  # reference model → ZeroTerminalSNR inside, the scheduler outside
    requests_before = len(page.zsnr_requests)
    page.evaluate("() => app.canvas.openSubgraph(window.zsnrSubgraph.subgraph, window.zsnrSubgraph)")
    show_all_nodes(page)
    zero_snr = inner_id(page, "ZeroTerminalSNR")
    if renderer == "vue":
        page.wait_for_selector(f'[data-node-id="{zero_snr}"]', timeout=20_000)
    edit_widget(page, renderer, zero_snr, "terminal", "clamp_diffusers")
    edit_widget(page, renderer, inner_id(page, "ZSNRReferenceModel"), "trained_schedule", "cosine")
    page.evaluate("() => app.canvas.setGraph(app.graph)")
    requested(page, terminal="clamp_diffusers", schedule="cosine")
    assert len(page.zsnr_requests) > requests_before
    outside = preview(page, terminal="clamp_diffusers", query={"schedule": "cosine"})
    assert outside["drawn"]["topLogSnr"] == pytest.approx(clamp_log_snr(CLAMPS["clamp_diffusers"]), rel=1e-9)
    assert our_problems(page.zsnr_messages) == []


def test_live_preview_inside_a_subgraph_follows_the_model_outside(page, object_info, renderer):
    load_preview_graph(page, object_info, renderer)
    preview(page, terminal="exact")
    convert_to_subgraph(page, [3])  # the scheduler inside; its model enters through the subgraph input
    inside = INNER.format("TimestepSpacingScheduler")
    # not shown (its graph is not open), it still follows: the answer is drawn once it is shown
    assert preview(page, inside, drawn=False, terminal="exact")["params"]["schedule"] == "scaled_linear"
    edit_widget(page, renderer, 2, "terminal", "clamp_comfy")
    requested(page, terminal="clamp_comfy")
    preview(page, inside, drawn=False, terminal="clamp_comfy")
    # opened, the subgraph shows the preview and its widgets drive it
    page.evaluate("() => app.canvas.openSubgraph(window.zsnrSubgraph.subgraph, window.zsnrSubgraph)")
    show_all_nodes(page)
    scheduler = inner_id(page, "TimestepSpacingScheduler")
    if renderer == "vue":
        page.wait_for_selector(f'[data-node-id="{scheduler}"]', timeout=20_000)
    edit_widget(page, renderer, scheduler, "steps", 4)
    requested(page, terminal="clamp_comfy", steps=4)
    shown = preview(page, inside, steps=4, terminal="clamp_comfy")
    assert shown["shown"] and len(shown["drawn"]["marks"]) == 4
    assert shown["drawn"]["topLogSnr"] == pytest.approx(clamp_log_snr(CLAMPS["clamp_comfy"]), rel=1e-9)
    if renderer == "vue":
        node_screenshot(page, renderer, scheduler, SCREENSHOTS / f"subgraph_preview_{renderer}.png")
    else:
        page.screenshot(path=str(SCREENSHOTS / f"subgraph_preview_{renderer}.png"))
    assert our_problems(page.zsnr_messages) == []


def test_queued_schedule_plot_shows_its_image_in_the_node(page, object_info, client, renderer):
    workflow = json.loads((EXAMPLES_DIR / f"{SCHEDULE_PLOT}.json").read_text())  # the shipped template
    assert load_workflow(page, workflow) == []
    plot_id = page.evaluate("() => app.graph.nodes.find(n => n.type === 'ZSNRSchedulePlot').id")
    preview(page, NODE.format(plot_id))
    page.evaluate("""() => {
        window.zsnrExecuted = [];
        window.comfyAPI.api.api.addEventListener('executed', (e) => window.zsnrExecuted.push(e.detail));
        return app.queuePrompt(0, 1);
    }""")
    page.wait_for_function(f"() => window.zsnrExecuted.some(e => String(e.node) === '{plot_id}')", timeout=180_000)
    executed = page.evaluate("() => window.zsnrExecuted")
    ours = [e for e in executed if str(e["node"]) == str(plot_id)]
    assert len(ours) == 1 and len(ours[0]["output"]["images"]) == 1
    image = Image.open(io.BytesIO(client.view(ours[0]["output"]["images"][0])))
    assert image.size == (800, 450) and image.mode == "RGB"
    if renderer == "vue":  # Nodes 2.0 shows outputs as an <img> inside the node's element
        shown = page.locator(f'[data-node-id="{plot_id}"] img')
        shown.first.wait_for(timeout=60_000)
        page.wait_for_function(f"""() => [...document.querySelectorAll('[data-node-id="{plot_id}"] img')]
                                         .some(i => i.complete && i.naturalWidth === 800)""", timeout=60_000)
    else:
        page.wait_for_function(
            f"""() => {{ const n = app.graph.getNodeById({plot_id});
                         return n.imgs?.length > 0 && n.imgs[0].complete && n.imgs[0].naturalWidth > 0; }}""",
            timeout=60_000)
        size = page.evaluate(f"() => [{NODE.format(plot_id)}.imgs[0].naturalWidth, {NODE.format(plot_id)}.imgs[0].naturalHeight]")
        assert size == [800, 450]
    node_screenshot(page, renderer, plot_id, SCREENSHOTS / f"schedule_plot_node_{renderer}.png")
    assert our_problems(page.zsnr_messages) == []


def mismatched_prediction_graph(trained_schedule: str) -> dict:
    """A v-prediction reference model declared epsilon after ZeroTerminalSNR: node 2 reports its
    patch, node 3 (VPredictionAdapter) declares the wrong prediction and gets the warning."""
    return {
        "1": {"class_type": "ZSNRReferenceModel", "inputs": {**REFERENCE["inputs"], "dataset": "colour_blobs",
                                                             "trained_schedule": trained_schedule}},
        "2": {"class_type": "ZeroTerminalSNR", "inputs": {"model": ["1", 0], "terminal": "exact"}},
        "3": {"class_type": "VPredictionAdapter", "inputs": {"model": ["2", 0], "prediction": "epsilon"}},
        "4": {"class_type": "ZSNRReferenceCondition", "inputs": {"subset": "all"}},
        "5": {"class_type": "EmptyChromaRadianceLatentImage", "inputs": {"width": 16, "height": 16, "batch_size": 1}},
        "6": {"class_type": "KSampler", "inputs": {
            "model": ["3", 0], "seed": 0, "steps": 3, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple",
            "positive": ["4", 0], "negative": ["4", 0], "latent_image": ["5", 0], "denoise": 1.0}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["9", 0]}},
        "9": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
    }


def test_patch_report_and_prediction_warning_show_on_the_node(page, object_info, renderer):
    """nodes/patch_report.py and nodes/prediction_check.py through web/js/zsnr_report.js: after a
    run both patch nodes show what they did; the wrongly declared one shows the warning, and a toast
    names the node to use."""
    # a model no other test of this module queues, one per renderer: the server runs for the whole
    # module and answers a node it already ran from its cache, without running (or reporting) it
    schedule = {"classic": "scaled_linear_zsnr", "vue": "scaled_linear"}[renderer]
    load_preview_graph(page, object_info, renderer, mismatched_prediction_graph(schedule))
    page.evaluate("""() => {
        window.zsnrWarnings = [];
        window.comfyAPI.api.api.addEventListener('zsnr.prediction_mismatch', (e) => window.zsnrWarnings.push(e.detail));
        return app.queuePrompt(0, 1);
    }""")
    page.wait_for_function("() => window.zsnrWarnings.length > 0 && app.graph.getNodeById(3).zsnrReport?.warning"
                           " && app.graph.getNodeById(2).zsnrReport?.text", timeout=180_000)
    warning = page.evaluate("() => window.zsnrWarnings[0]")
    assert warning["node_id"] == "3" and warning["declared"] == "epsilon" and warning["looks_like"] == "v_prediction"
    assert "prediction = v_prediction" in warning["message"]
    report = page.evaluate("() => app.graph.getNodeById(2).zsnrReport.element.textContent")
    assert "terminal SNR:" in report and "exactly 0" in report and "ReferenceModelConfig" in report
    shown = page.evaluate("() => app.graph.getNodeById(3).zsnrReport.element.textContent")
    assert shown.startswith("⚠") and "VPredictionAdapter (node 3) declares epsilon" in shown
    toast = page.locator(TOAST).filter(has_text="wrong prediction type")
    toast.first.wait_for(state="visible", timeout=20_000)
    assert "VPredictionAdapter" in toast.first.inner_text()
    page.wait_for_timeout(300)
    node_screenshot(page, renderer, 2, SCREENSHOTS / f"patch_report_{renderer}.png")
    node_screenshot(page, renderer, 3, SCREENSHOTS / f"prediction_warning_{renderer}.png")
    page.screenshot(path=str(SCREENSHOTS / f"prediction_warning_toast_{renderer}.png"))
    assert our_problems(page.zsnr_messages) == []


def set_setting(page, setting_id: str, value) -> None:
    """As the settings dialog does: app.extensionManager.setting.set, which stores it on the server."""
    page.evaluate("async ([id, value]) => { await app.extensionManager.setting.set(id, value); }", [setting_id, value])


def test_live_preview_can_be_turned_off_in_the_settings(page, object_info, client, renderer):
    """Settings → zsnr → Live preview off: the node says it is off and the page asks the server
    nothing, whatever is edited; on again, it asks for what the graph now holds."""
    load_preview_graph(page, object_info, renderer)
    preview(page, steps=20, terminal="exact")
    assert page.evaluate(f"() => app.extensionManager.setting.get('{LIVE_PREVIEW_SETTING}')") is True
    try:
        set_setting(page, LIVE_PREVIEW_SETTING, False)
        # stored per user on the server (the host's /settings route), as the dialog stores it
        assert client.get_json(f"/settings/{LIVE_PREVIEW_SETTING}") is False
        page.wait_for_function("() => app.graph.getNodeById(3).zsnrPreview.drawn?.status === 'off'", timeout=20_000)
        asked = len(page.zsnr_requests)
        edit_widget(page, renderer, 3, "steps", 10)
        edit_widget(page, renderer, 2, "terminal", "clamp_comfy")
        page.wait_for_timeout(1500)  # several of zsnr.js's 200 ms debounce periods
        assert len(page.zsnr_requests) == asked, page.zsnr_requests[asked:]
        assert page.evaluate("() => app.graph.getNodeById(3).zsnrPreview.drawn.status") == "off"
        node_screenshot(page, renderer, 3, SCREENSHOTS / f"live_preview_off_{renderer}.png")
    finally:
        set_setting(page, LIVE_PREVIEW_SETTING, True)
    requested(page, steps=10, terminal="clamp_comfy")
    assert len(preview(page, steps=10, terminal="clamp_comfy")["drawn"]["marks"]) == 10
    assert our_problems(page.zsnr_messages) == []


def test_prediction_toast_stays_as_long_as_the_setting_says(page, object_info, renderer):
    """Settings → zsnr → Prediction warning → 2 seconds: the toast shows and is gone well before
    the default 20 seconds."""
    # a model no other test queues (the server answers nodes it already ran from its cache)
    schedule = {"classic": "linear", "vue": "cosine"}[renderer]
    load_preview_graph(page, object_info, renderer, mismatched_prediction_graph(schedule))
    try:
        set_setting(page, TOAST_SECONDS_SETTING, 2)
        page.evaluate("() => app.queuePrompt(0, 1)")
        toast = page.locator(TOAST).filter(has_text="wrong prediction type")
        toast.first.wait_for(state="visible", timeout=180_000)
        shown = time.monotonic()
        page.screenshot(path=str(SCREENSHOTS / f"prediction_toast_2s_{renderer}.png"))
        toast.first.wait_for(state="hidden", timeout=10_000)
        assert 1.0 < time.monotonic() - shown < 10.0
        # the warning stays on the node
        assert page.evaluate("() => app.graph.getNodeById(3).zsnrReport.warning").startswith("VPredictionAdapter")
    finally:
        set_setting(page, TOAST_SECONDS_SETTING, 20)
    assert our_problems(page.zsnr_messages) == []


def test_replaced_model_sampling_is_shown_on_the_sampler_node(page, object_info, renderer):
    """nodes/replaced_sampling.py through web/js/zsnr_report.js: the host's ModelSamplingDiscrete
    after ZeroTerminalSNR replaces its sampling; the KSampler that ran without it shows the warning
    and a toast says so."""
    graph = mismatched_prediction_graph("scaled_linear")
    graph["3"] = {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["2", 0], "sampling": "v_prediction",
                                                                     "zsnr": False}}
    graph["6"]["inputs"]["seed"] = {"classic": 11, "vue": 12}[renderer]  # the server caches a KSampler it ran
    load_preview_graph(page, object_info, renderer, graph)
    page.evaluate("() => app.queuePrompt(0, 1)")
    page.wait_for_function("() => app.graph.getNodeById(6).zsnrReport?.warning", timeout=180_000)
    shown = page.evaluate("() => app.graph.getNodeById(6).zsnrReport.element.textContent")
    assert shown.startswith("⚠") and "replaced the model's ModelSampling" in shown
    toast = page.locator(TOAST).filter(has_text="ModelSampling replaced")
    toast.first.wait_for(state="visible", timeout=20_000)
    node_screenshot(page, renderer, 6, SCREENSHOTS / f"sampling_replaced_{renderer}.png")
    assert our_problems(page.zsnr_messages) == []
