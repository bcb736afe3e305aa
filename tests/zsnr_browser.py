"""Headless Chromium on the server's frontend: the harness of the browser tier. tests/e2e/
test_browser.py, test_templates_browser.py and test_blueprints.py load it as a plugin
(pytest_plugins) for the fixtures below (test_browser.py keeps a page fixture of its own).

Debian's /usr/bin/chromium, never a downloaded browser; both renderers through the setting
Comfy.VueNodes.Enabled; a screenshot of every test in test_output/browser/.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from zsnr_testlib import TEST_OUTPUT

CHROMIUM = next((Path(p) for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and Path(p).is_file()), Path("/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
SCREENSHOTS = TEST_OUTPUT / "browser"
RENDERERS = ["classic", "vue"]


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


@pytest.fixture(params=RENDERERS)
def renderer(request) -> str:
    return request.param


@pytest.fixture
def page(browser, server, request, renderer, requested_frontend):
    """A fresh page, ready once the pack's node types are registered, on the renderer asked for.
    Page errors go to page.zsnr_errors."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.zsnr_errors = []
    page.on("pageerror", lambda e: page.zsnr_errors.append(f"{e}"))
    # a server's first page for a new user opens the template browser (the frontend's
    # loadDefaultWorkflow when Comfy.TutorialCompleted is unset), which takes the keys the tests type:
    # the first browser test of a fresh clone typed its node search into it and opened a template
    status, _ = server.client().post_json("/settings/Comfy.TutorialCompleted", True)
    assert status == 200, status
    page.goto(server.url)
    page.wait_for_function("() => window.app?.graph && window.app.canvas"
                           " && window.LiteGraph?.registered_node_types?.ZeroTerminalSNR", timeout=120_000)
    if requested_frontend:  # the page must really run the release the run asked for
        assert page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__") == requested_frontend
    page.evaluate("""async (vue) => {
        const setting = app.extensionManager?.setting;
        if (setting?.set) await setting.set('Comfy.VueNodes.Enabled', vue);
        else await app.ui.settings.setSettingValueAsync('Comfy.VueNodes.Enabled', vue);
    }""", renderer == "vue")
    page.wait_for_function(f"() => LiteGraph.vueNodesMode === {json.dumps(renderer == 'vue')}", timeout=20_000)
    try:
        yield page
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"))
        context.close()



@pytest.fixture
def node_search(page):
    """type(query): open the node search box (the command its keybinding and a double-click on the
    canvas run, Workspace.SearchBox.Toggle) and type into it, once its results are listed."""
    def type_query(query: str) -> None:
        page.evaluate("() => app.extensionManager.command.execute('Workspace.SearchBox.Toggle')")
        page.wait_for_function("() => document.activeElement?.tagName === 'INPUT'", timeout=20_000)
        page.keyboard.type(query, delay=20)
        page.get_by_role("option").first.wait_for(timeout=20_000)
        page.wait_for_timeout(500)  # the list settles once the last key is filtered
    return type_query
