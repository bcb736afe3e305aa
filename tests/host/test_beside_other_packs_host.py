"""In the real host, in-process: which lists extend_copied_scheduler_lists extends, and
report_replaced_sampling's once-per-prompt rule (the server-side path is in
tests/e2e/test_beside_other_packs.py)."""
from __future__ import annotations

import logging
import sys

import pytest

pytestmark = pytest.mark.host


def pack_module(host, name):
    return sys.modules[f"{host.pack.__name__}.nodes.{name}"]


class _CopiesAtImport:
    """Node classes holding lists the way packs do (tests/fixture_packs/copied_scheduler_list cites the real packs)."""

    def __init__(self, builtin: list[str]):
        self.list_copy = [*builtin, "pack_own_scheduler"]
        self.tuple_copy = tuple(builtin)
        self.partial = builtin[:-1]  # not a scheduler list: one built-in name short

    def node(self, options):
        return type("PackNode", (), {"INPUT_TYPES": classmethod(lambda cls: {"required": {"scheduler": (options,)}})})


@pytest.fixture
def pack_nodes(host):
    """Three node classes registered as a pack's would be, removed afterwards."""
    import comfy.samplers

    schedulers = pack_module(host, "schedulers")
    ours = set(schedulers.HOST_LIST_SPACINGS)
    copies = _CopiesAtImport([name for name in comfy.samplers.SCHEDULER_NAMES if name not in ours])
    added = {"ZSNRTestListCopy": copies.node(copies.list_copy), "ZSNRTestTupleCopy": copies.node(copies.tuple_copy),
             "ZSNRTestPartial": copies.node(copies.partial)}
    host.node.update(added)
    try:
        yield copies, schedulers
    finally:
        for name in added:
            host.node.pop(name, None)


def test_only_copies_of_the_scheduler_list_are_extended(pack_nodes, caplog):
    copies, schedulers = pack_nodes
    partial_before, tuple_before = list(copies.partial), copies.tuple_copy
    with caplog.at_level(logging.WARNING, logger="zsnr"):
        extended = schedulers.extend_copied_scheduler_lists()
    assert extended == ["ZSNRTestListCopy.scheduler"]
    assert copies.list_copy[-len(schedulers.HOST_LIST_SPACINGS):] == list(schedulers.HOST_LIST_SPACINGS)
    assert "pack_own_scheduler" in copies.list_copy
    assert copies.partial == partial_before and copies.tuple_copy is tuple_before
    assert "ZSNRTestTupleCopy.scheduler holds a copy of the scheduler list as a tuple" in caplog.text
    assert schedulers.extend_copied_scheduler_lists() == []  # a second pass finds nothing missing


def test_replaced_sampling_is_reported_once_per_object_and_prompt(host, caplog):
    import comfy.model_base
    import comfy.model_sampling

    replaced = pack_module(host, "replaced_sampling")

    class Config:
        sampling_settings = {"beta_schedule": "sqrt_linear"}

    first, second = (comfy.model_base.model_sampling(Config(), comfy.model_base.ModelType.V_PREDICTION) for _ in range(2))
    with caplog.at_level(logging.WARNING, logger="zsnr"):
        message = replaced.report_replaced_sampling(first)
        again = replaced.report_replaced_sampling(first)
        other = replaced.report_replaced_sampling(second)
    assert isinstance(first, comfy.model_sampling.ModelSamplingDiscrete)
    assert "replaced the model's ModelSampling" in message and "ModelSamplingDiscrete/V_PREDICTION" in message
    assert again is None and other == message
    assert caplog.text.count("replaced the model's ModelSampling") == 2
