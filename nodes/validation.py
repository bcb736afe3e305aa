"""Input checks derived from a node's define_schema(): one source for what each input allows.

Each input kind of the schema gives one check (what upstream's comfy_api/latest/_io.py declares):
- Combo: the value is one of the declared options (ComfyUI 0.3.75's executor does not check V3
  combo values at all; 0.33.0 does, but not for inputs validate_inputs takes, see below);
- Int / Float: a number in the declared min..max, finite, never a bool (_number says why);
- any other input is a socket (MODEL, SIGMAS, IMAGE, …): in a graph it must be a link.

`validation_problem` serves validate_inputs, which every node inherits from SchemaCheckedNode as
`validate_inputs(cls, **inputs)` (the host finds it with first_real_override in
comfy_api/internal/__init__.py, which walks the class's MRO up to io.ComfyNode). What that
signature changes, in the host's execution.py (`validate_inputs`, 0.3.75 and 0.33.0 alike):
with a **kwargs parameter (argspec.varkw) the host
(1) passes every input of the prompt that the schema declares (get_input_data drops names the
schema does not have; 0.33.0 keeps them only for a node with accept_all_inputs, which ours leave
False), links as None; (2) skips its own min/max and combo-option checks for all of them;
(3) still checks link types (that depends only on an `input_types` parameter) and still reports
missing required inputs. So every declared input is checked here: the kinds above are all our
schemas hold, and a widget kind without a rule (String, Boolean) raises TypeError rather than
going unchecked.

`check_arguments` serves execute: in-process callers (tests, benchmarks, tools/pack_nodes.py) call
execute without the host's validation, and linked widget values (a PrimitiveFloat holding NaN)
reach execute unchecked, so the same rules run there, raising the same messages. A socket's value
is then the upstream object itself; what it must be (a MODEL, a decreasing SIGMAS tensor) is the
node's own run-time check (errors.require_model, errors.check_sigmas).
"""
from __future__ import annotations

import math
import numbers
import operator

from comfy_api.latest import io

from .errors import node_error

# The host's nodes.MAX_RESOLUTION: the largest width or height its latent nodes (EmptyLatentImage)
# take, in pixels. One constant for every input of ours bounded by an image side.
MAX_RESOLUTION = 16384


def _choice(spec, value) -> str | None:
    """The allowed text when value is not one of the options, else None."""
    options = tuple(spec.options)
    plain = isinstance(value, (str, int, float)) and not isinstance(value, bool)
    if plain and value in options:  # plain values only: `in` on an array or tensor would raise
        return None
    return " | ".join(map(str, options))


def _number(spec, value) -> str | None:
    """The allowed text when value is not a number in the declared range, else None.

    The host converts INT/FLOAT widget values before validate_inputs sees them, but float("nan")
    and float("inf") pass its min/max check; and once validate_inputs takes an input the host no
    longer checks that input's min/max at all, so the range is checked here. A bool is refused:
    it is an int to Python, but never a number a user typed. An Int input takes what
    operator.index takes (as the core's schedules/spacing.py does), so 2.5 steps are not truncated.
    """
    integer = isinstance(spec, io.Int.Input)
    low = -math.inf if spec.min is None else spec.min
    high = math.inf if spec.max is None else spec.max
    allowed = f"{'an integer' if integer else 'a finite number'} in {low}..{high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return allowed
    if integer:
        try:
            operator.index(value)
        except TypeError:
            return allowed
    elif not isinstance(value, numbers.Integral) and not math.isfinite(value):  # 10**400 is an Integral
        return allowed
    return None if low <= value <= high else allowed


def _rule(spec):
    """The value check of one schema input (value -> allowed text or None), None for a socket."""
    if isinstance(spec, io.Combo.Input):
        return _choice
    if isinstance(spec, (io.Int.Input, io.Float.Input)):
        return _number
    if isinstance(spec, io.WidgetInput):
        raise TypeError(f"nodes/validation.py has no rule for the {type(spec).__qualname__} input "
                        f"'{spec.id}': add one before a node declares it")
    return None


def _allowed(spec, value, run_time: bool) -> str | None:
    """What the input allows, when value is not that; else None."""
    if value is None and (spec.optional or not run_time):
        return None  # not connected, or (before run time) a link whose value does not exist yet
    rule = _rule(spec)
    if rule is not None:
        return rule(spec, value)
    if run_time:
        return None  # the upstream object itself: the node's own run-time check judges it
    return f"a link from a {spec.get_io_type()} output, [node_id, output_index]"


def validation_problem(node, inputs: dict) -> bool | str:
    """For validate_inputs(cls, **inputs): True, or the message the host shows on the node.

    A linked input arrives as None, as does an absent optional one; both pass here. A literal
    where a socket belongs is refused: the host would hand it to execute unchecked.
    """
    schema = node.define_schema()
    declared = {spec.id: spec for spec in schema.inputs}
    # a name the schema lacks comes only from an in-process caller's typo (the host drops them, above)
    for name in sorted(inputs.keys() - declared.keys()):
        return str(node_error(schema.node_id, name, inputs[name], f"one of the inputs {', '.join(declared)}"))
    for name, spec in declared.items():
        allowed = _allowed(spec, inputs.get(name), run_time=False)
        if allowed is not None:
            return str(node_error(schema.node_id, name, inputs[name], allowed))
    return True


def check_arguments(node, **arguments) -> None:
    """For the first line of execute: raise the node_error validate_inputs would have shown.

    Takes every schema input by name (a missing or extra name is a TypeError, so a new input
    cannot be left out here). None passes only for an optional input (not connected); a socket's
    object is left to the node's own run-time check.
    """
    schema = node.define_schema()
    declared = {spec.id: spec for spec in schema.inputs}
    if arguments.keys() != declared.keys():
        raise TypeError(f"{schema.node_id}: check_arguments takes exactly the schema's inputs "
                        f"{sorted(declared)}, got {sorted(arguments)}")
    for name, spec in declared.items():
        allowed = _allowed(spec, arguments[name], run_time=True)
        if allowed is not None:
            raise node_error(schema.node_id, name, arguments[name], allowed)


class SchemaCheckedNode(io.ComfyNode):
    """A V3 node whose validate_inputs is derived from its define_schema(); its execute starts with
    check_arguments(cls, ...) and keeps only the run-time checks no schema can express."""

    @classmethod
    def validate_inputs(cls, **inputs):
        return validation_problem(cls, inputs)
