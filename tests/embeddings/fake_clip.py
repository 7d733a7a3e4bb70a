"""Tiny ONNX stand-ins for a CLIP image tower, built with onnx.helper, so the real loader runs on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# The stand-in's only weight: embedding = mean colour of the preprocessed image @ PROJECTION.
PROJECTION_SEED = 1234


def projection(out_dim: int) -> np.ndarray:
    return np.random.default_rng(PROJECTION_SEED).standard_normal((3, out_dim)).astype(np.float32)


def write_fake_clip(
    path: Path, *, out_dim: int = 512, tokens: bool = False, input_name: str = "pixel_values"
) -> np.ndarray:
    """[N,3,224,224] -> GlobalAveragePool -> Flatten -> MatMul(3 x out_dim) -> [N, out_dim] (or [N, 1, out_dim]).

    Returns the projection, so a test can compute the expected embedding by hand.
    """
    weight = projection(out_dim)
    nodes = [
        helper.make_node("GlobalAveragePool", [input_name], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["means"], axis=1),
        helper.make_node("MatMul", ["means", "projection"], ["embeds"]),
    ]
    initializers = [numpy_helper.from_array(weight, "projection")]
    output_name = "image_embeds"
    output_shape: list[str | int] = ["N", out_dim]
    if tokens:
        nodes.append(helper.make_node("Unsqueeze", ["embeds", "token_axis"], ["last_hidden_state"]))
        initializers.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "token_axis"))
        output_name, output_shape = "last_hidden_state", ["N", 1, out_dim]
    else:
        nodes.append(helper.make_node("Identity", ["embeds"], [output_name]))
    graph = helper.make_graph(
        nodes,
        "fake_clip_image_tower",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, output_shape)],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return weight
