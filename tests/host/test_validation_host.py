"""Input checks derived from each node's schema (nodes/validation.py), on the pack's real nodes:
the message validate_inputs returns and the error execute raises are the same, for every kind."""
from __future__ import annotations

import math

import pytest
from zsnr_host_helpers import reference

pytestmark = pytest.mark.host
GOOD = {"multiplier": 0.7, "space": "auto", "terminal_step": "guided", "sigma_start": 1e9, "sigma_end": 0.0}


@pytest.fixture(scope="module")
def node(host):
    return host.node["ZSNRRescaleCFG"]


@pytest.mark.parametrize("name, value, allowed", [
    ("space", "velocity", "auto | v | x0 | eps"),
    ("multiplier", math.nan, "a finite number in 0.0..1.0"),
    ("multiplier", True, "a finite number in 0.0..1.0"),  # a bool is an int to Python, never typed
    ("multiplier", 1.5, "a finite number in 0.0..1.0"),
    ("sigma_end", -1.0, "a finite number in 0.0..1000000000.0"),
])
def test_validate_inputs_and_execute_give_the_same_message(host, node, name, value, allowed):
    inputs = {**GOOD, name: value}
    message = node.validate_inputs(model=None, **inputs)
    assert message == f"ZSNRRescaleCFG: input '{name}' = {value!r} is not allowed; expected {allowed}"
    with pytest.raises(ValueError) as raised:
        node.execute(model=reference(host), **inputs)
    assert str(raised.value) == message


def test_good_inputs_and_links_pass(node):
    assert node.validate_inputs(model=None, **GOOD) is True  # a link arrives as None


def test_a_literal_where_a_socket_belongs_is_refused(node):
    message = node.validate_inputs(model="v1-5.safetensors", **GOOD)
    assert "input 'model'" in message and "a link from a MODEL output" in message


def test_integer_inputs_refuse_fractions(host):
    scheduler = host.node["TimestepSpacingScheduler"]
    message = scheduler.validate_inputs(model=None, spacing="trailing", steps=2.5, denoise=1.0, steps_offset=0)
    assert message.startswith("TimestepSpacingScheduler: input 'steps' = 2.5") and "an integer" in message
