"""Label the file with its opset and IR version, refusing ops whose meaning would change."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import onnx
import onnx.defs

from compiler.build._targets import Target
from exploy_dsl import CompileError
from exploy_dsl.contract._graphs import default_opset, is_default_domain, iter_nodes

# Ops whose consecutive versions listed here differ ONLY by added element types: the inputs,
# outputs and attributes of the schemas are identical (names, optionality, variadicity), and
# each type constraint of the older version is a subset of the newer one's. So a node valid
# at one of these versions means the same at any newer one of them: the file may be labelled
# with a NEWER opset. Going to an OLDER one of them is valid when the node's element types are
# among the older version's; the full onnx.checker pass that ends every compile verifies that
# (strict type inference against the schema at the file's opset). Derived from onnx.defs
# (onnx 1.23) and reviewed by hand; tests/compiler/test_opset_targets.py re-derives every
# entry. Left out on purpose, although their signatures match: AveragePool-22 and MaxPool-22
# (ceil_mode windows starting in the right padding are now ignored), Pad-19 (adds mode
# 'wrap'), Resize-19 (adds a coordinate mode), ScatterElements-18 and ScatterND-18 (add
# reduction modes), OptionalGetElement-18 (accepts plain tensors), Loop-13 (body outputs
# matched by order), Quantize/DequantizeLinear (quantization semantics).
WIDENING_ONLY: dict[str, tuple[int, ...]] = {
    "Acos": (7, 22),
    "Acosh": (9, 22),
    "Add": (13, 14),
    "Asin": (7, 22),
    "Asinh": (9, 22),
    "Atan": (7, 22),
    "Atanh": (9, 22),
    "Cast": (13, 19, 21, 23, 24, 25),
    "CastLike": (15, 19, 21, 23, 24, 25),
    "Constant": (13, 19, 21, 23, 24, 25),
    "ConstantOfShape": (9, 20, 21, 23, 24, 25),
    "Conv": (11, 22),
    "ConvTranspose": (11, 22),
    "Cos": (7, 22),
    "Cosh": (9, 22),
    "CumSum": (11, 14),
    "DeformConv": (19, 22),
    "Det": (11, 22),
    "Div": (13, 14),
    "Dropout": (13, 22),
    "Elu": (6, 22),
    "Equal": (13, 19),
    "EyeLike": (9, 22),
    "Flatten": (13, 21, 23, 24, 25),
    "GRU": (14, 22),
    "GlobalAveragePool": (1, 22),
    "GlobalLpPool": (2, 22),
    "GlobalMaxPool": (1, 22),
    "GreaterOrEqual": (12, 16),
    "GridSample": (20, 22),
    "HardSigmoid": (6, 22),
    "HardSwish": (14, 22),
    "Identity": (14, 16, 19, 21, 23, 24, 25),
    "If": (13, 16, 19, 21, 23, 24, 25),
    "InstanceNormalization": (6, 22),
    "IsInf": (10, 20),
    "IsNaN": (13, 20),
    "LSTM": (14, 22),
    "LeakyRelu": (6, 16),
    "LessOrEqual": (12, 16),
    "Loop": (16, 19, 21, 23, 24, 25),
    "LpNormalization": (1, 22),
    "LpPool": (18, 22),
    "MaxRoiPool": (1, 22),
    "MaxUnpool": (11, 22),
    "Mish": (18, 22),
    "Mul": (13, 14),
    "PRelu": (9, 16),
    "Pad": (19, 21, 23, 24, 25),
    "Pow": (13, 15),
    "RNN": (14, 22),
    "ReduceMax": (18, 20),
    "ReduceMin": (18, 20),
    "Relu": (13, 14),
    "Reshape": (14, 19, 21, 23, 24, 25),
    "RoiAlign": (16, 22),
    "Round": (11, 22),
    "Scan": (16, 19, 21, 23, 24, 25),
    "Selu": (6, 22),
    "Shape": (15, 19, 21, 23, 24, 25),
    "Sin": (7, 22),
    "Sinh": (9, 22),
    "Size": (13, 19, 21, 23, 24, 25),
    "Softplus": (1, 22),
    "Softsign": (1, 22),
    "Squeeze": (13, 21, 23, 24, 25),
    "Sub": (13, 14),
    "Tan": (7, 22),
    "ThresholdedRelu": (10, 22),
    "TopK": (11, 24),
    "Transpose": (13, 21, 23, 24, 25),
    "Unsqueeze": (13, 21, 23, 24, 25),
    "Where": (9, 16),
}

# Attributes a version added that, by its specification, act only on element types the older
# version lacks (float8 conversions): a node without them means the same at both versions.
ADDED_ATTRIBUTES: dict[tuple[str, int], frozenset[str]] = {
    ("Cast", 19): frozenset({"saturate"}),
    ("Cast", 24): frozenset({"round_mode"}),
    ("CastLike", 19): frozenset({"saturate"}),
    ("CastLike", 24): frozenset({"round_mode"}),
}


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of the file built for one opset: a traced stage, the actor or the mode switch.

    ``recurse=False`` checks only the top-level nodes (the stitched file's own switch; its
    branches hold the other parts).
    """

    label: str
    model: onnx.ModelProto
    recurse: bool = True

    @property
    def opset(self) -> int:
        return default_opset(self.model)


def since(op_type: str, opset: int) -> int | None:
    """The version of ``op_type`` in effect at ``opset`` (None when it does not exist there)."""
    try:
        return int(onnx.defs.get_schema(op_type, opset, "").since_version)
    except onnx.defs.SchemaError:
        return None


def retarget(
    model: onnx.ModelProto,
    parts: Sequence[Part],
    *,
    opset: int,
    ir_version: int,
    target: Target | None = None,
) -> None:
    """Label ``model`` (in place) with ``opset``/``ir_version`` where every op keeps its meaning.

    A node keeps its meaning when its op's version at ``opset`` is the one it was built with,
    or when both versions lie in one WIDENING_ONLY run (element types then checked by the
    full onnx.checker pass of the compile). With a target,
    an op whose kernel that onnxruntime lacks is refused too. Errors name op and part.
    """
    if not 7 <= ir_version <= onnx.IR_VERSION:
        raise CompileError(
            f"IR version {ir_version} is not supported by onnx {onnx.__version__} "
            f"(7..{onnx.IR_VERSION}). Fix: choose --ir between 7 and {onnx.IR_VERSION}."
        )
    newest = onnx.defs.onnx_opset_version()
    if not 7 <= opset <= newest:
        raise CompileError(
            f"opset {opset} is not supported (7..{newest} with onnx {onnx.__version__}). "
            "Fix: choose --opset in that range, or a --target."
        )
    for part in parts:
        _check_part(part, opset)
    if target is not None:
        _check_kernels(model, parts, opset, target)
    _drop_default_added_attributes(model, opset)
    for entry in model.opset_import:
        if is_default_domain(entry.domain):
            entry.version = opset
    model.ir_version = ir_version


def _drop_default_added_attributes(model: onnx.ModelProto, opset: int) -> None:
    """Going down, remove added attributes that hold their default (Cast's saturate=1).

    ``_check_part`` has refused every node that sets one to another value, so what is left
    means the same without it; the older version does not know the attribute at all.
    """
    for node in iter_nodes(model.graph, True):
        if not is_default_domain(node.domain):
            continue
        want = since(node.op_type, opset)
        for (op_type, version), names in ADDED_ATTRIBUTES.items():
            if op_type != node.op_type or want is None or version <= want:
                continue
            kept = [
                a
                for a in node.attribute
                if a.name not in names or not _is_default(op_type, version, a)
            ]
            if len(kept) != len(node.attribute):
                del node.attribute[:]
                node.attribute.extend(kept)


def _check_part(part: Part, opset: int) -> None:
    built = part.opset
    for node in _nodes(part):
        have, want = since(node.op_type, built), since(node.op_type, opset)
        if want is None:
            raise CompileError(
                f"op {node.op_type} used by {part.label} does not exist at opset {opset}. "
                f"Fix: choose a newer opset/target, or avoid {node.op_type}."
            )
        if have is None or have == want:
            continue
        run = WIDENING_ONLY.get(node.op_type, ())
        added = ADDED_ATTRIBUTES.get((node.op_type, have), frozenset())
        uses_added = want < have and any(
            a.name in added and not _is_default(node.op_type, have, a) for a in node.attribute
        )
        if have not in run or want not in run or uses_added:
            newer = " beyond added element types"
            raise CompileError(
                f"op {node.op_type} used by {part.label} is {node.op_type}-{have}, but opset "
                f"{opset} has {node.op_type}-{want}, whose definition differs{newer}; "
                f"relabelling it (opset {min(have, want)} -> {max(have, want)}) could change "
                f"its meaning. Fix: choose an opset where it is {node.op_type}-{have} "
                f"(or a --target that has one), or avoid {node.op_type}."
            )


def _is_default(op_type: str, version: int, attribute: onnx.AttributeProto) -> bool:
    """Whether ``attribute`` holds its schema default (spox writes Cast's saturate=1 always)."""
    schema = onnx.defs.get_schema(op_type, version, "")
    default = schema.attributes[attribute.name].default_value
    if default.type == onnx.AttributeProto.UNDEFINED:
        return False
    return bool(
        onnx.helper.get_attribute_value(default) == onnx.helper.get_attribute_value(attribute)
    )


def _nodes(part: Part) -> Iterator[onnx.NodeProto]:
    for node in iter_nodes(part.model.graph, part.recurse):
        if is_default_domain(node.domain):
            yield node
    for function in part.model.functions:
        for node in function.node:
            if is_default_domain(node.domain):
                yield node


def _check_kernels(
    model: onnx.ModelProto, parts: Sequence[Part], opset: int, target: Target
) -> None:
    missing = target.support.missing_kernels
    lacking: dict[str, int] = {}
    for node in iter_nodes(model.graph):
        version = since(node.op_type, opset)
        if is_default_domain(node.domain) and version and (node.op_type, version) in missing:
            lacking[node.op_type] = version
    if not lacking:
        return
    uses = []
    for op_type, version in sorted(lacking.items()):
        users = [p.label for p in parts if any(n.op_type == op_type for n in _nodes(p))]
        uses.append(f"{op_type}-{version} (used by {', '.join(users) or 'the file'})")
    raise CompileError(
        f"{target.label} has no kernel for {'; '.join(uses)} (measured: it loads opset "
        f"{opset} but cannot run these ops). Every exploy-dsl file needs If and Equal for its "
        "two modes, so such a file cannot run there. Fix: target a newer onnxruntime "
        "(>= 1.16)."
    )
