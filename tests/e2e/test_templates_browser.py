"""The pack's templates and node search in the real frontend (headless Chromium, both renderers).

Templates: the template browser (command Comfy.BrowseTemplates) lists a pack's example_workflows
under the pack's name; a card's picture is <name>.jpg (workflowTemplatesStore.ts and
useTemplateWorkflows.ts in Comfy-Org/ComfyUI_frontend) and its title the file name. Each card must
show our 512×512 thumbnail (a broken or placeholder image has another size) and a click must load
that workflow as the file holds it.

Search: on a host whose V3 io.Schema has `search_aliases` (ComfyUI 0.11 on; nodes/schema_extras.py)
our nodes carry words their names lack, and the node search box (which searches name, display_name
and search_aliases: services/nodeSearchService.ts in the frontend) puts them first for "vpred" and
"ztsnr". On 0.3.75 the schema has no such field and the test skips.
"""
from __future__ import annotations

import json
import urllib.parse

import pytest
from build_example_workflows import OUT as EXAMPLES_DIR
from build_example_workflows import THUMBNAIL
from example_graphs import RECOMMENDED
from workflow_format import strip_meta, ui_to_api

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
PACK = "zsnr"  # the folder name the server loads the pack under (tools/comfy_server.py link_pack)
TEMPLATES = sorted(p.stem for p in EXAMPLES_DIR.glob("*.json"))
CARD = '[data-testid="template-workflow-{}"]'  # the card's test id in the dialog (1.32.9 to 1.58.1)


def open_pack_templates(page) -> None:
    """The template browser (its menu's command) on the pack's own section (under Extensions)."""
    page.evaluate("() => app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button").filter(has=page.get_by_text(PACK, exact=True)).first.click()
    page.locator(CARD.format(TEMPLATES[0])).wait_for(timeout=30_000)


def test_templates_are_served_with_a_jpg_thumbnail_each(client):
    listed = json.loads(client.request("GET", "/workflow_templates")[1])
    assert sorted(listed[PACK]) == TEMPLATES
    for name in TEMPLATES:
        status, body = client.request("GET", f"/api/workflow_templates/{PACK}/{urllib.parse.quote(name)}.jpg")
        assert status == 200 and body[:3] == b"\xff\xd8\xff", f"{name}.jpg is not served as a JPEG"


def test_every_template_card_shows_its_picture(page, renderer):
    open_pack_templates(page)
    cards = page.locator('[data-testid^="template-workflow-"]')
    assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.testid)")) == [
        f"template-workflow-{name}" for name in TEMPLATES]
    for name in TEMPLATES:
        card = page.locator(CARD.format(name))
        card.scroll_into_view_if_needed()  # the pictures load lazily, when the card is in view
        card.get_by_text(name, exact=True).first.wait_for()  # titled with the readable file name
        page.wait_for_function(
            """([selector, side]) => [...document.querySelector(selector).querySelectorAll('img')]
                   .some(i => i.complete && i.naturalWidth === side && i.naturalHeight === side)""",
            arg=[CARD.format(name), THUMBNAIL], timeout=30_000)
    assert page.zsnr_errors == []


def test_a_template_card_loads_its_workflow(page, renderer, object_info):
    workflow = json.loads((EXAMPLES_DIR / f"{RECOMMENDED}.json").read_text())
    open_pack_templates(page)
    page.locator(CARD.format(RECOMMENDED)).click()
    page.wait_for_function("(n) => app.graph.nodes.length === n && app.graph.nodes.some(x => x.type === 'Note')",
                           arg=len(workflow["nodes"]), timeout=30_000)
    types = page.evaluate("() => app.graph.nodes.map(n => n.type)")
    assert sorted(types) == sorted(node["type"] for node in workflow["nodes"])
    note = page.evaluate("() => app.graph.nodes.find(n => n.type === 'Note').widgets[0].value")
    assert note == next(n for n in workflow["nodes"] if n["type"] == "Note")["widgets_values"][0]
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    assert strip_meta(prompt) == strip_meta(ui_to_api(workflow, object_info))
    assert page.zsnr_errors == []


# what a user types → the node the search box must list first (blueprints aside, they are recipes)
SEARCHES = {"vpred": ("VPredictionAdapter", "V-Prediction Adapter (zsnr)"),
            "ztsnr": ("ZeroTerminalSNR", "Zero Terminal SNR (zsnr)")}


def search_results(page, node_search, query: str) -> list[str]:
    """The titles the node search box lists for `query`."""
    node_search(query)
    options = page.get_by_role("option")
    results = [text.split("\n") for text in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return [lines[0] for lines in results if not any(line.startswith("Subgraph Blueprints") for line in lines)]


@pytest.fixture
def served_aliases(object_info) -> dict[str, list[str]]:
    """Node id → the search_aliases /object_info lists; skips before a page is opened when none are
    (requested ahead of `page`, so it is set up first)."""
    aliases = {node_id: object_info[node_id].get("search_aliases") for node_id, _ in SEARCHES.values()}
    if not all(aliases.values()):
        pytest.skip("this host's V3 io.Schema has no search_aliases (a field from ComfyUI 0.11 on), "
                    "so /object_info lists none")
    return aliases


@pytest.mark.parametrize("query", sorted(SEARCHES))
def test_node_search_finds_our_nodes_by_their_aliases(served_aliases, page, node_search, renderer, query):
    node_id, title = SEARCHES[query]
    assert query in served_aliases[node_id]
    page.evaluate("() => app.graph.clear()")
    results = search_results(page, node_search, query)
    assert results and results[0] == title, results
    assert page.zsnr_errors == []
