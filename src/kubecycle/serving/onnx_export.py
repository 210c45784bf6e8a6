"""Convert a fitted kubecycle Pipeline to ONNX and check it reproduces the original.

scikit-learn pays milliseconds of per-call overhead to predict one row; onnxruntime runs the
same graph in a fraction of that. A converted graph is used for serving only if it predicts
the same as the scikit-learn model on the registered test rows; otherwise the service falls
back to scikit-learn and the reason is recorded.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kubecycle.errors import first_line
from kubecycle.modelling import is_booster
from kubecycle.registry import (
    SERVING_RUNTIME_REASON_TAG,
    SERVING_RUNTIME_TAG,
    ServingRuntime,
)
from kubecycle.serving.onnx_feed import (
    build_feed_from_frame,
    datetime_inputs,
    is_datetime,
    is_numeric,
    labels_as_classes,
)
from kubecycle.serving.onnx_network import register_network_converters
from kubecycle.transformers import (
    MISSING_TEXT,
    DatetimeExpander,
    TextColumns,
)

PROBABILITY_TOLERANCE = 1e-4  # float32 tree thresholds move probabilities by ~1e-7
REGRESSION_RTOL = 1e-4
OPSET = 21
ML_OPSET = 3  # onnxmltools' XGBoost and LightGBM converters stop at ai.onnx.ml 3


@dataclass(frozen=True)
class OnnxCheck:
    """The outcome of conversion and verification: the runtime the bento serves with, and why.

    The runtime is onnx when the graph reproduced the model, sklearn when it did not or could
    not be made.
    """

    runtime: ServingRuntime
    reason: str
    rows: int = 0

    def to_tags(self) -> dict[str, str]:
        """The version tags that record the check."""
        return {SERVING_RUNTIME_TAG: self.runtime, SERVING_RUNTIME_REASON_TAG: self.reason[:5000]}


class OnnxUnsupported(Exception):
    """The Pipeline (or part of it) cannot be expressed as an ONNX graph."""


class _NanFill:
    """Marker base for numeric imputers rewritten as IsNaN/Where (any float type).

    onnxruntime's Imputer kernel has no float64 implementation.
    """


def _nan_fill_shape(operator) -> None:
    width = len(operator.raw_operator.statistics_)
    operator.outputs[0].type = operator.inputs[0].type.__class__([None, width])


def _nan_fill_convert(scope, operator, container) -> None:
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.proto import onnx_proto

    values = operator.raw_operator.statistics_.astype(np.float64)
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    source = concatenate_variables(scope, operator.inputs, container)
    fill, missing = scope.get_unique_variable_name("fill"), scope.get_unique_variable_name("isnan")
    container.add_initializer(fill, onnx_proto.TensorProto.DOUBLE if double else
                              onnx_proto.TensorProto.FLOAT, [1, len(values)], values.tolist())
    container.add_node("IsNaN", [source], [missing], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node("Where", [missing, fill, source], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Where"))


def _nan_fill_class():
    """A SimpleImputer subclass with the IsNaN/Where converter registered (once)."""
    from skl2onnx import update_registered_converter
    from sklearn.impute import SimpleImputer

    if not hasattr(_nan_fill_class, "cls"):
        cls = type("KubecycleNanFill", (SimpleImputer, _NanFill), {})
        update_registered_converter(cls, "KubecycleNanFill", _nan_fill_shape, _nan_fill_convert)
        _nan_fill_class.cls = cls
    return _nan_fill_class.cls


def _rewrite(node):
    """The node as it should be converted to ONNX.

    Encoders see categories as text (the feed's spelling), text imputers treat their own fill
    value as missing (the feed spells a missing text that way; skl2onnx only converts string
    imputers), numeric imputers become IsNaN/Where.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if isinstance(node, OneHotEncoder | OrdinalEncoder):  # booleans arrive as "True"/"False"
        node.categories_ = [np.array([str(c) for c in cats], dtype=object) for cats in node.categories_]
        return node
    if not isinstance(node, SimpleImputer):
        return node
    if node.fill_value == MISSING_TEXT:
        node.missing_values = MISSING_TEXT
        return node
    if node.statistics_.dtype.kind == "f" and not np.isnan(node.statistics_).any():
        replacement = _nan_fill_class().__new__(_nan_fill_class())
        replacement.__dict__.update(node.__dict__)
        return replacement
    raise OnnxUnsupported("an imputer without a value for every column")


@functools.cache
def _register_boosters() -> None:
    """Register onnxmltools' XGBoost and LightGBM converters with skl2onnx (once).

    Only for the libraries that are installed; a model of a missing one cannot exist here.
    """
    import importlib.util

    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    if importlib.util.find_spec("xgboost"):
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor

        from kubecycle.estimators import XGBLabelClassifier

        for cls in (XGBClassifier, XGBLabelClassifier):
            update_registered_converter(cls, f"Kubecycle{cls.__name__}",
                                        calculate_linear_classifier_output_shapes, convert_xgboost,
                                        options=classifier_options)
        update_registered_converter(XGBRegressor, "KubecycleXGBRegressor",
                                    calculate_linear_regressor_output_shapes, convert_xgboost)
    if importlib.util.find_spec("lightgbm"):
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(LGBMClassifier, "KubecycleLGBMClassifier",
                                    calculate_linear_classifier_output_shapes, convert_lightgbm,
                                    options=classifier_options)
        update_registered_converter(LGBMRegressor, "KubecycleLGBMRegressor",
                                    calculate_linear_regressor_output_shapes, convert_lightgbm,
                                    options={"split": None})


def _casts_to_float32(estimator) -> bool:
    """Whether the graph must cast the estimator's features to float32.

    scikit-learn's tree ensembles compare float32 features, and family torch's network computes
    in float32; the graph must do the same.
    Histogram gradient boosting compares float64, but onnxruntime's tree kernels only emit
    float32, so it is cast too (the verification decides whether that is exact enough).
    """
    from sklearn.ensemble import (
        BaseEnsemble,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    from sklearn.tree import BaseDecisionTree

    from kubecycle.neural import TabularNetClassifier, TabularNetRegressor

    if isinstance(estimator, BaseDecisionTree | HistGradientBoostingClassifier
                  | HistGradientBoostingRegressor | TabularNetClassifier
                  | TabularNetRegressor) or is_booster(estimator):
        return True
    return isinstance(estimator, BaseEnsemble) and isinstance(
        getattr(estimator, "estimator_", None), BaseDecisionTree)


def _float64_after_encoders(steps: list) -> list:
    """The steps with a cast to float64 after every OrdinalEncoder but the last step.

    skl2onnx emits an OrdinalEncoder's codes as float32; a cast back keeps the scaler that
    follows in float64, as in scikit-learn.
    """
    from skl2onnx.sklapi import CastTransformer
    from sklearn.preprocessing import OrdinalEncoder

    rewritten = []
    for position, (name, step) in enumerate(steps):
        rewritten.append((name, step))
        if isinstance(step, OrdinalEncoder) and position < len(steps) - 1:
            cast = CastTransformer(dtype=np.float64)
            cast.fit(np.zeros((1, 1), dtype=np.float64))
            rewritten.append((f"{name}-float64", cast))
    return rewritten


def _without_datetime_expander(transformer, columns):
    """A ColumnTransformer entry whose DatetimeExpander is left to the feed.

    ONNX cannot parse dates, so the entry reads the feed's per-part inputs, in the expander's
    output order.
    """
    from sklearn.pipeline import Pipeline

    if isinstance(transformer, DatetimeExpander):
        transformer = "passthrough"
    elif isinstance(transformer, Pipeline) and isinstance(transformer.steps[0][1], DatetimeExpander):
        if len(transformer.steps) == 1:
            transformer = "passthrough"
        else:
            transformer.steps = transformer.steps[1:]
    else:
        return transformer, columns
    if not all(isinstance(column, str) for column in columns):
        raise OnnxUnsupported("datetime columns selected by position, not by name")
    return transformer, [name for column in columns for name in datetime_inputs(column)]


def prepare(pipeline):
    """A copy of the Pipeline that converts to a graph computing what the original does."""
    from skl2onnx.sklapi import CastTransformer
    from sklearn.pipeline import Pipeline

    clone = copy.deepcopy(pipeline)
    stack = [clone]
    while stack:
        node = stack.pop()
        if isinstance(node, Pipeline):  # the feed already sends categorical columns as text
            node.steps = [(name, _rewrite(step)) for name, step in node.steps
                          if not isinstance(step, TextColumns)]
            node.steps = _float64_after_encoders(node.steps)
            stack.extend(step for _, step in node.steps)
        for index, item in enumerate(getattr(node, "transformers_", None) or []):
            transformer, columns = _without_datetime_expander(item[1], item[2])
            node.transformers_[index] = (item[0], _rewrite(transformer), columns, *item[3:])
            stack.append(node.transformers_[index][1])
    if isinstance(clone, Pipeline) and _casts_to_float32(clone.steps[-1][1]):
        cast = CastTransformer(dtype=np.float32)
        cast.fit(np.zeros((1, 1), dtype=np.float64))
        clone.steps.insert(len(clone.steps) - 1, ("float32", cast))
    return clone


def _restore_input_names(graph, names: list[str]) -> None:
    """Give the graph's inputs the raw column names back, so the feed can use them as they are.

    skl2onnx rewrites input names into identifiers ("sepal length (cm)" -> "sepal_length__cm_").
    """
    declared = [node.name for node in graph.graph.input]
    if len(declared) != len(names):
        raise OnnxUnsupported(f"the graph has {len(declared)} inputs for {len(names)} columns")
    renamed = {old: new for old, new in zip(declared, names, strict=True) if old != new}
    for node in graph.graph.input:
        node.name = renamed.get(node.name, node.name)
    for node in graph.graph.node:
        for index, name in enumerate(node.input):
            node.input[index] = renamed.get(name, name)


def convert(model, fields: Mapping[str, Mapping[str, Any]]) -> bytes:
    """The serialized ONNX graph of a fitted Pipeline whose inputs are the raw columns."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from sklearn.base import is_classifier

    inputs = []
    for name, spec in fields.items():
        if is_datetime(spec):
            inputs.extend((part, DoubleTensorType([None, 1])) for part in datetime_inputs(name))
        else:
            inputs.append((name, DoubleTensorType([None, 1]) if is_numeric(spec)
                           else StringTensorType([None, 1])))
    names = [name for name, _ in inputs]
    if len(set(names)) < len(names):
        raise OnnxUnsupported(f"graph input names collide: {sorted(n for n in names if names.count(n) > 1)}")
    try:
        _register_boosters()
        register_network_converters()
        prepared = prepare(model)
        options = {id(prepared): {"zipmap": False}} if is_classifier(model) else None
        booster = is_booster(getattr(model, "steps", [(None, model)])[-1][1])
        opset = {"": OPSET, "ai.onnx.ml": ML_OPSET} if booster else OPSET  # some converters want an int
        graph = to_onnx(prepared, initial_types=inputs, options=options, target_opset=opset)
        _restore_input_names(graph, names)
    except Exception as exc:  # skl2onnx raises many types for unsupported parts
        raise OnnxUnsupported(f"{type(exc).__name__}: {first_line(exc)}"[:500]) from None
    return graph.SerializeToString()


def session(graph: bytes):
    """An onnxruntime session on the CPU."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def compare(model, graph: bytes, frame: pd.DataFrame, fields: Mapping[str, Mapping[str, Any]]
            ) -> str | None:
    """None when the graph predicts what the model predicts on frame, else how it differs."""
    expected = model.predict(frame)
    outputs = session(graph).run(None, build_feed_from_frame(frame, fields))
    predicted = np.asarray(outputs[0]).reshape(len(frame), -1)
    predicted = labels_as_classes(predicted, getattr(model, "classes_", []))
    if predicted.shape[1] != 1:
        return f"unexpected ONNX output shape {predicted.shape}"
    predicted = predicted[:, 0]
    if np.issubdtype(np.asarray(expected).dtype, np.floating) and not hasattr(model, "classes_"):
        scale = max(1.0, float(np.nanmax(np.abs(expected))))
        if not np.allclose(predicted, expected, rtol=REGRESSION_RTOL, atol=REGRESSION_RTOL * scale):
            worst = float(np.max(np.abs(predicted - expected)))
            return f"regression outputs differ by up to {worst:.3g}"
        return None
    differing = int(np.sum(predicted.astype(str) != np.asarray(expected).astype(str)))
    if differing:
        return f"{differing} of {len(frame)} predicted labels differ"
    if hasattr(model, "predict_proba") and len(outputs) > 1:
        gap = float(np.max(np.abs(np.asarray(outputs[1]) - model.predict_proba(frame))))
        if gap > PROBABILITY_TOLERANCE:
            return f"class probabilities differ by up to {gap:.3g}"
    return None


def export_onnx(model, fields: Mapping[str, Mapping[str, Any]], test: pd.DataFrame | None
                ) -> tuple[bytes | None, OnnxCheck]:
    """The ONNX graph to serve (None to fall back to scikit-learn) and the check's outcome.

    Args:
        model: the fitted scikit-learn Pipeline (raw columns in).
        fields: the request fields (name -> contract spec), in the model's column order.
        test: the registered test rows; without rows nothing can be verified, so no graph.
    """
    if test is None or test.empty:
        return None, OnnxCheck("sklearn", "no registered test rows to verify an ONNX graph against")
    missing = [name for name in fields if name not in test.columns]
    if missing:
        return None, OnnxCheck("sklearn", f"test rows lack the columns {missing}")
    frame = test[list(fields)]
    try:
        graph = convert(model, fields)
        problem = compare(model, graph, frame, fields)
    except OnnxUnsupported as exc:
        return None, OnnxCheck("sklearn", f"conversion failed: {exc}")
    except Exception as exc:  # onnxruntime rejecting the graph or the feed
        return None, OnnxCheck("sklearn", f"ONNX Runtime could not run the graph: {type(exc).__name__}: "
                                      f"{str(exc)[:300]}")
    if problem:
        return None, OnnxCheck("sklearn", f"ONNX graph rejected: {problem} on {len(frame)} test rows",
                               len(frame))
    return graph, OnnxCheck("onnx", f"identical predictions on {len(frame)} test rows", len(frame))
