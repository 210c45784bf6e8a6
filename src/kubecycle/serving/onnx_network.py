"""ONNX converters for family torch's network (kubecycle.neural), registered with skl2onnx.

The graph is the estimator's numpy forward pass: numeric columns as they are, each code column
through its embedding table (unknown and unseen codes to row 0), then the layers with ReLU
between them; softmax and the label for a classifier, the target's scale for a regressor.
The Pipeline casts the features to float32 before it (onnx_export), as the estimator does.
"""

from __future__ import annotations

import functools

import numpy as np

FLOAT = 1  # onnx TensorProto.FLOAT
INT64 = 7  # onnx TensorProto.INT64


class _Graph:
    """Adds named nodes and float32/int64 constants to skl2onnx's container."""

    def __init__(self, scope, container) -> None:
        self.scope, self.container = scope, container

    def const(self, name: str, value: np.ndarray) -> str:
        unique = self.scope.get_unique_variable_name(name)
        kind = INT64 if value.dtype.kind in "iu" else FLOAT
        value = value.astype(np.int64 if kind == INT64 else np.float32)
        self.container.add_initializer(unique, kind, list(value.shape), value.ravel().tolist())
        return unique

    def node(self, op: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        output = output or self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(op, inputs, [output], name=self.scope.get_unique_operator_name(op),
                                **attributes)
        return output


def _embedded(graph: _Graph, source: str, column: int, table: np.ndarray) -> str:
    """One code column's embedding rows, shape (rows, dim)."""
    code = graph.node("Gather", [source, graph.const("column", np.array([column]))], axis=1)
    shifted = graph.node("Add", [code, graph.const("one", np.array([1.0]))])
    index = graph.node("Cast", [shifted], to=INT64)
    low = graph.node("GreaterOrEqual", [index, graph.const("zero", np.array([0]))])
    high = graph.node("Less", [index, graph.const("levels", np.array([len(table)]))])
    valid = graph.node("And", [low, high])
    safe = graph.node("Where", [valid, index, graph.const("unknown", np.array([0]))])
    rows = graph.node("Gather", [graph.const("embedding", table), safe], axis=0)
    return graph.node("Reshape", [rows, graph.const("shape", np.array([-1, table.shape[1]]))])


def _logits(graph: _Graph, source: str, net) -> str:
    pieces = []
    if net.numeric_columns_:
        pieces.append(graph.node("Gather", [source, graph.const(
            "numeric", np.array(net.numeric_columns_))], axis=1))
    pieces += [_embedded(graph, source, column, table)
               for column, table in zip(net.categorical_columns_, net.embeddings_, strict=True)]
    hidden = pieces[0] if len(pieces) == 1 else graph.node("Concat", pieces, axis=1)
    for position, (weight, bias) in enumerate(net.layers_):
        product = graph.node("MatMul", [hidden, graph.const("weight", weight.T)])
        hidden = graph.node("Add", [product, graph.const("bias", bias)])
        if position < len(net.layers_) - 1:
            hidden = graph.node("Relu", [hidden])
    return hidden


def _convert_classifier(scope, operator, container) -> None:
    net, graph = operator.raw_operator, _Graph(scope, container)
    logits = _logits(graph, operator.inputs[0].full_name, net)
    graph.node("Softmax", [logits], operator.outputs[1].full_name, axis=1)
    best = graph.node("ArgMax", [logits], axis=1, keepdims=0)
    classes = net.classes_
    if classes.dtype.kind in "iub":
        graph.node("Gather", [graph.const("classes", classes.astype(np.int64)), best],
                   operator.outputs[0].full_name, axis=0)
    else:
        unique = scope.get_unique_variable_name("classes")
        container.add_initializer(unique, 8, [len(classes)],  # STRING
                                  [str(c).encode() for c in classes])
        graph.node("Gather", [unique, best], operator.outputs[0].full_name, axis=0)


def _convert_regressor(scope, operator, container) -> None:
    net, graph = operator.raw_operator, _Graph(scope, container)
    logits = _logits(graph, operator.inputs[0].full_name, net)
    scaled = graph.node("Mul", [logits, graph.const("scale", np.array([net.y_scale_]))])
    graph.node("Add", [scaled, graph.const("mean", np.array([net.y_mean_]))],
               operator.outputs[0].full_name)


@functools.cache
def register_network_converters() -> None:
    """Register the converters with skl2onnx (once)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from kubecycle.neural import TabularNetClassifier, TabularNetRegressor

    update_registered_converter(TabularNetClassifier, "KubecycleTabularNetClassifier",
                                calculate_linear_classifier_output_shapes, _convert_classifier,
                                options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(TabularNetRegressor, "KubecycleTabularNetRegressor",
                                calculate_linear_regressor_output_shapes, _convert_regressor)
