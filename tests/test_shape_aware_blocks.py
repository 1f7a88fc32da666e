"""Shape-aware blocks: `${input.channels}`, `${input.height}`, ... inside a block, resolved when
the model is built; `validate` (no backend) says how many arguments wait for the shapes."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from builder import SpecError, build_model, build_models, copy_weights, load_spec

from .conftest import ROOT, SPECS

SQUEEZE_EXCITE = """
functions:
  make_divisible:
    args: [value, divisor]
    defaults: {divisor: 8}
    returns: "${max(divisor, int(value + divisor / 2) // divisor * divisor)}"
blocks:
  squeeze_excite:
    params: {ratio: 0.25}
    layers:
      - global_avg_pool: {keepdims: true}
      - conv: {filters: "${make_divisible(input.channels * ratio)}", kernel: 1, activation: relu}
      - conv: {filters: "${input.channels}", kernel: 1, activation: sigmoid}
        name: gate
      - multiply: {}
        from: [input, gate]
  widen:
    params: {filters: "${input.channels * 2}"}
    layers:
      - conv: {filters: $filters, kernel: 3, padding: same}
      - squeeze_excite: {}
        name: se
input: [16, 16, 8]
layers:
  - widen
  - widen: {}
    name: second
  - avgpool: {pool: "${2}"}
  - widen: {filters: 24}
    name: third
"""


def test_blocks_read_their_input_shape_when_the_model_is_built(write_spec):
    model = build_model(write_spec(SQUEEZE_EXCITE))
    widths = {layer.name: layer.output.shape[-1] for layer in model.layers}
    assert widths["widen1_conv1"] == 16 and widths["second_conv1"] == 32 and widths["third_conv1"] == 24
    # the squeeze width follows each block's own input, through a declared function
    assert [widths[f"{name}_se_conv1"] for name in ("widen1", "second", "third")] == [8, 8, 8]
    assert [widths[f"{name}_se_gate"] for name in ("widen1", "second", "third")] == [16, 32, 24]


def test_height_width_rank_and_shape(write_spec):
    model = build_model(write_spec("""
        blocks:
          summarize:
            layers:
              - avgpool: {pool: ["${input.height}", "${input.width}"]}
              - reshape: {target_shape: ["${input.channels * (input.rank - 2)}"]}
              - dense: {units: "${input.shape[0] + input.shape[1]}"}
        input: [6, 4, 5]
        layers:
          - summarize
    """))
    assert model.output.shape == (None, 10)
    assert model.get_layer("summarize1_avgpool1").pool_size == (6, 4)


def test_validate_counts_what_waits_for_the_shapes_without_a_backend(write_spec):
    path = write_spec(SQUEEZE_EXCITE)
    code = ("import sys; from builder.cli.main import main; rc = main(['validate', sys.argv[1]]); "
            "print('LOADED', [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules]); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{path}: ok (" in result.stdout and "; 8 arguments read block input shapes, checked by `summary` " \
        "and `build`)" in result.stdout
    assert "LOADED []" in result.stdout
    assert load_spec(path).shape_dependent_arguments() == 8  # 3 per widen, 2 where `filters` is given


@pytest.mark.parametrize("layers, message, line", [
    ("  - repeat:\n      times: \"${input.channels}\"\n      layers: [relu]",
     "this value shapes the graph, so it cannot read the block's input shape", 6),
    ("  - conv: {filters: \"${input.channels - 3}\", kernel: 1}",
     "wrong value for argument 'filters' of conv: expected an integer >= 1, got 0", 5),
    ("  - conv: {filters: \"${input.chanels}\", kernel: 1}",
     "input has no 'chanels'; did you mean 'channels'? (it has: height, width, channels, rank, shape)", 5),
    ("  - conv: {filters: 2, kernel: 1}\n    name: \"c${input.channels}\"",
     "this value shapes the graph, so it cannot read the block's input shape", 6),
])
def test_shape_errors_are_located_in_the_block_with_the_call(write_spec, layers, message, line):
    path = write_spec("blocks:\n  probe:\n    params: {unused: 0}\n    layers:\n" + textwrap.indent(layers, "    ")
                      + "\ninput: [4, 4, 3]\nlayers:\n  - probe\n")
    with pytest.raises(SpecError) as caught:
        build_model(path)
    assert caught.value.location.line == line and message in str(caught.value), str(caught.value)
    assert str(caught.value).endswith(f"(in block 'probe' called at {path}:{layers.count(chr(10)) + 8}:5)")


def test_input_outside_a_block_and_as_a_param_name_are_explained(write_spec):
    with pytest.raises(SpecError, match="inside a block, `input.channels`"):
        load_spec(write_spec("input: [4, 4, 3]\nlayers:\n  - conv: {filters: '${input.channels}', kernel: 1}\n"))
    with pytest.raises(SpecError, match="a block param cannot be named `input`"):
        load_spec(write_spec("blocks:\n  b:\n    params: {input: 1}\n    layers: [relu]\n"
                             "input: [4]\nlayers: [b]\n", "param.yaml"))


EXPLICIT_DCGAN = """
params: {latent: 32, ngf: 32, ndf: 32, channels: 1}
include: [{library}]
models:
  generator:
    input: [$latent]
    layers:
      - reshape: {target_shape: [1, 1, $latent]}
      - up: {filters: "${ngf * 4}", strides: 1, padding: valid}
      - up: {filters: "${ngf * 2}"}
      - up: {filters: $ngf}
      - conv_transpose: {filters: $channels, kernel: 4, strides: 2, padding: same, use_bias: false}
      - tanh: {}
        name: image
  discriminator:
    input: [32, 32, $channels]
    layers:
      - conv: {filters: $ndf, kernel: 4, strides: 2, padding: same, use_bias: false}
      - leaky_relu: {negative_slope: 0.2}
      - down: {filters: "${ndf * 2}"}
      - down: {filters: "${ndf * 4}"}
      - conv: {filters: 1, kernel: 4, use_bias: false}
      - flatten: {}
        name: score
main: generator
"""


def test_the_dcgan_specs_no_longer_thread_channel_counts_and_build_the_same_networks(write_spec):
    import keras

    text = (SPECS / "dcgan_digits.yaml").read_text() + (SPECS / "dcgan.yaml").read_text()
    assert "ngf * 2" not in text and "ndf * 2" not in text
    shaped = build_models(load_spec(SPECS / "dcgan_digits.yaml"))
    explicit = build_models(write_spec(EXPLICIT_DCGAN.replace("{library}", str(SPECS / "blocks" / "dcgan.yaml"))))
    rng = np.random.default_rng(0)
    for name, probe in (("generator", rng.normal(size=(2, 32))), ("discriminator", rng.normal(size=(2, 32, 32, 1)))):
        a, b = shaped[name], explicit[name]
        assert [(layer.name, layer.get_config() | {"name": ""}) for layer in a.layers] == \
            [(layer.name, layer.get_config() | {"name": ""}) for layer in b.layers]
        assert a.count_params() == b.count_params()
        copy_weights(b, a)
        x = probe.astype("float32")
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a(x)), keras.ops.convert_to_numpy(b(x)), rtol=1e-6)
    assert shaped["generator"].count_params() - sum(
        np.prod(w.shape) for w in shaped["generator"].non_trainable_weights) == 230336


OPTIONAL_DROP_PATH = """
name: inverted_units
input: [8, 8, 4]
blocks:
  unit:
    params: {filters: 4, strides: 1, rate: 0.2}
    layers:
      - residual:
          shortcut: if_shapes_match
          layers:
            - conv: {filters: $filters, kernel: 3, strides: $strides, padding: same}
            - drop_path: {rate: $rate}
              when: "${input.channels == filters and strides == 1}"   # only where the skip is built
      - relu: {}
        when: "${input.rank == 3}"
layers:
  - unit: {}
  - unit: {filters: 8, strides: 2}
  - unit: {filters: 8}
"""


def test_when_reads_the_block_input_and_is_decided_per_call_when_the_model_is_built(write_spec):
    import keras

    path = write_spec(OPTIONAL_DROP_PATH)
    model = build_model(path)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("DropPath") == 2 and kinds.count("Add") == 2 and kinds.count("ReLU") == 3
    assert [layer.name for layer in model.layers if type(layer).__name__ == "DropPath"] == [
        "unit1_drop_path1", "unit3_drop_path1"]
    # the unit without a skip goes from its convolution straight to its ReLU
    second = model.get_layer("unit2_conv1")
    assert model.get_layer("unit2_relu1").input is second.output
    x = np.random.default_rng(0).random((2, 8, 8, 4)).astype("float32")
    first = np.maximum(np.asarray(model.get_layer("unit1_conv1")(x)) + x, 0)
    middle = np.maximum(np.asarray(second(first)), 0)
    third = np.maximum(np.asarray(model.get_layer("unit3_conv1")(middle)) + middle, 0)
    np.testing.assert_allclose(model.predict(x, verbose=0), third, atol=1e-5)  # drop path: the identity
    keras.backend.clear_session()

    result = subprocess.run([sys.executable, "-m", "builder", "validate", str(path)], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert "; 2 arguments read block input shapes" not in result.stdout
    assert "; 6 choices (`when`, `shortcut`) read block input shapes, decided when the model is built" in \
        result.stdout, result.stdout


def test_a_when_that_is_not_true_or_false_is_refused_at_its_line_when_built(write_spec):
    path = write_spec(OPTIONAL_DROP_PATH.replace('"${input.rank == 3}"', '"${input.channels}"'))
    with pytest.raises(SpecError) as caught:
        build_model(path)
    assert str(caught.value).startswith(f"{path}:14:15: blocks.unit.layers[1].when: `when` must be true or "
                                        "false; got 4"), str(caught.value)
