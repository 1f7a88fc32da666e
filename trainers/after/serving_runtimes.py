"""Each serving format's own runtime, loading an exported model and running it on a batch of
images (NumPy in, NumPy out): how `export` checks what it wrote, and how `bench/after_training.py`
times it. Each function imports its runtime when called, so a missing one is named then."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def _missing(package: str) -> DataError:
    return DataError(f"checking this format needs {package}: pip install 'keras-blueprint[export]'")


def saved_model(path: str):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)  # held by the closure: its functions need its variables alive
    return lambda images: np.asarray(loaded.serve(tf.constant(images)))


def onnx(path: str):
    try:
        import onnxruntime as runtime
    except ImportError:
        raise _missing("onnxruntime") from None
    options = runtime.SessionOptions()
    options.log_severity_level = 3  # errors only: the console is ours
    session = runtime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: images})[0]


def litert(path: str):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise _missing("ai-edge-litert") from None
    interpreter = Interpreter(model_path=path)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape = [None]

    def run(images):
        if shape[0] != images.shape:  # LiteRT allocates for one batch shape at a time
            interpreter.resize_tensor_input(source["index"], images.shape)
            interpreter.allocate_tensors()
            shape[0] = images.shape
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(target["index"]).copy()

    return run


def openvino(path: str):
    try:
        import openvino as runtime
    except ImportError:
        raise _missing("openvino") from None
    # f32: on CPUs with bfloat16 units the CPU plugin would otherwise compute in bfloat16
    # (differences of ~4e-3), which says nothing about whether the conversion was faithful
    compiled = runtime.Core().compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    output = compiled.outputs[0]
    return lambda images: np.asarray(compiled(images)[output])
