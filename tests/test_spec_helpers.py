"""`functions:` (named helper expressions, from a spec or a block library) and spec-wide layer
`defaults:`."""

import json
import textwrap

import pytest

from builder import SpecError, build_model, load_spec
from builder.language.expressions import MAX_CALL_DEPTH, MAX_CALLS

from .conftest import SPECS

MAKE_DIVISIBLE = """
functions:
  make_divisible:
    args: [value, divisor]
    defaults: {divisor: 8}
    let: {rounded: "${max(divisor, int(value + divisor / 2) // divisor * divisor)}"}
    returns: "${rounded + divisor if rounded < 0.9 * value else rounded}"
"""


def reference_make_divisible(value, divisor=8):
    """MobileNet's rounding rule as the reference implementations write it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def test_a_declared_function_computes_what_its_python_original_does(write_spec):
    widths = [3, 7, 12, 16, 20, 33.6, 44.8, 67.2, 100, 134.4, 250, 1000.5]
    text = MAKE_DIVISIBLE + "params:\n" + "".join(
        f"  w{i}: \"${{make_divisible({w})}}\"\n  q{i}: \"${{make_divisible(divisor=4, value={w})}}\"\n"
        for i, w in enumerate(widths)) + "input: [8, 8, 1]\nlayers: [flatten]\n"
    params = load_spec(write_spec(text)).params
    for i, w in enumerate(widths):
        assert params[f"w{i}"] == reference_make_divisible(w)
        assert params[f"q{i}"] == reference_make_divisible(w, 4)


def test_functions_from_a_block_library_serve_its_blocks_and_the_spec(write_spec):
    write_spec(MAKE_DIVISIBLE + textwrap.dedent("""
        blocks:
          expand:
            params: {filters: 16, ratio: 1.0}
            layers:
              - conv: {filters: "${make_divisible(filters * ratio)}", kernel: 1}
    """), "lib/mobile.yaml")
    model = build_model(write_spec("""
        include: [lib/mobile.yaml]
        params: {alpha: 0.35}
        input: [8, 8, 3]
        layers:
          - conv: {filters: "${make_divisible(32 * alpha)}", kernel: 3}
            name: stem
          - expand: {filters: 96, ratio: 0.35}
            name: head
    """))
    assert model.get_layer("stem").filters == reference_make_divisible(32 * 0.35) == 16
    assert model.output.shape[-1] == reference_make_divisible(96 * 0.35) == 32


@pytest.mark.parametrize("functions, params, message", [
    ("f: {args: [x], returns: '${g(x)}'}\n  g: {args: [y], returns: '${f(y) + 1}'}", "{}",
     "functions.f: functions cannot recurse: f -> g -> f"),
    ("f: {args: [x], returns: '${f(x)}'}", "{}", "functions.f: functions cannot recurse: f -> f"),
    ("f: {args: [x], returns: '${x * width}'}", "{width: 2}",
     "functions.f.returns: function 'f' reads 'width', which it does not have; functions see only their "
     "arguments, `let` names and other functions, not the spec's params: pass it as an argument"),
    ("f: {args: [x], returns: '${roundd(x)}'}", "{}",
     "functions.f.returns: function 'f' calls 'roundd', which is not a function; did you mean 'round'?"),
    ("f: {args: [x], defaults: {y: 1}, returns: '$x'}", "{}",
     "functions.f.defaults: a default for 'y', which is not an argument (args: x)"),
    ("max: {args: [x], returns: '$x'}", "{}", "functions.max: 'max' is a built-in function; give yours another name"),
    ("f: {args: [x], returns: '$x'}", "{f: 1}", "params.f: 'f' is both a param and a function"),
    ("f: {args: [x], returns: '${x +}'}", "{}", "functions.f.returns: cannot parse expression 'x +'"),
    ("f: {args: [x], returns: '${x[3]}'}", "{n: '${f([1])}'}",
     "params.n: in function 'f' (SPEC:2:6): index 3 is out of range for [1] (1 items)"),
    ("f: {args: [x], returns: '$x'}", "{n: '${f(1, 2)}'}", "params.n: f() takes 1 argument(s) (x); got 2"),
    ("f: {args: [x], returns: '$x'}", "{n: '${f(y=1)}'}", "params.n: f() has no argument 'y' (it takes x)"),
    ("f: {args: [x], returns: '$x'}", "{n: '$f'}", "params.n: 'f' is a function: call it, e.g. f(x)"),
])
def test_a_bad_function_or_call_is_a_located_error(write_spec, functions, params, message):
    path = write_spec(f"functions:\n  {functions}\nparams: {params}\ninput: [8, 8, 1]\nlayers: [flatten]\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.location.file == str(path)
    text = str(caught.value).replace(str(path), "SPEC")
    assert message in text, text


def test_call_depth_and_call_count_are_bounded(write_spec):
    depth = MAX_CALL_DEPTH + 2
    chain = "".join(f"  f{k}: {{args: [x], returns: '${{f{k - 1}(x) + 1}}'}}\n" for k in range(1, depth))
    path = write_spec("functions:\n  f0: {args: [x], returns: '$x'}\n" + chain
                      + f"params: {{n: '${{f{depth - 1}(0)}}', m: '${{f{MAX_CALL_DEPTH - 2}(0)}}'}}\n"
                      + "input: [8, 8, 1]\nlayers: [flatten]\n")
    with pytest.raises(SpecError, match=f"function calls nest deeper than {MAX_CALL_DEPTH}"):
        load_spec(path)
    doubling = "".join(f"  f{k}: {{args: [x], returns: '${{f{k - 1}(x) + f{k - 1}(x)}}'}}\n" for k in range(1, 16))
    spec = "functions:\n  f0: {args: [x], returns: '$x'}\n" + doubling + "params: {n: '${f%d(1)}'}\n" \
        + "input: [8, 8, 1]\nlayers: [flatten]\n"
    assert load_spec(write_spec(spec % 8, "small.yaml")).params["n"] == 2 ** 8
    with pytest.raises(SpecError, match=f"more than {MAX_CALLS} function calls in one expression"):
        load_spec(write_spec(spec % 15, "large.yaml"))


DEFAULTS = """
params: {eps: 1.0e-5}
defaults:
  batchnorm: {epsilon: $eps, momentum: 0.9}
  conv: {use_bias: false, kernel_initializer: he_normal}
input: [8, 8, 3]
layers:
  - conv: {filters: 4, kernel: 3, padding: same}
    name: plain
  - batchnorm
  - conv: {filters: 4, kernel: 3, padding: same, use_bias: true}
    name: own_bias
  - batchnorm: {momentum: 0.5}
    name: own_momentum
  - residual:
      layers:
        - conv: {filters: 8, kernel: 3, padding: same}
"""


def test_defaults_apply_to_every_node_of_a_type_unless_it_sets_its_own(write_spec):
    model = build_model(write_spec(DEFAULTS))
    assert model.get_layer("plain").use_bias is False
    assert model.get_layer("own_bias").use_bias is True
    assert model.get_layer("batchnorm1").epsilon == pytest.approx(1e-5)
    assert model.get_layer("batchnorm1").momentum == pytest.approx(0.9)
    assert model.get_layer("own_momentum").momentum == pytest.approx(0.5)
    assert model.get_layer("own_momentum").epsilon == pytest.approx(1e-5)
    # The residual's default 1x1 projection is a conv too: it takes the bias and initializer.
    projection = model.get_layer("shortcut1_projection")
    assert projection.use_bias is False and type(projection.kernel_initializer).__name__ == "HeNormal"
    # convs without biases but `own_bias`; two batch norms of 4 channels; the projection 4 -> 8
    assert model.count_params() == 3 * 3 * 3 * 4 + (3 * 3 * 4 * 4 + 4) + 2 * (4 * 4) + 3 * 3 * 4 * 8 + 4 * 8


@pytest.mark.parametrize("defaults, message", [
    ("{batchnrom: {epsilon: 0.1}}", "defaults.batchnrom: unknown key 'batchnrom'; did you mean 'batchnorm'?"),
    ("{batchnorm: {epsilom: 0.1}}", "unknown argument 'epsilom' for batchnorm; did you mean 'epsilon'?"),
    ("{batchnorm: {epsilon: '${-1}'}}",
     "defaults.batchnorm.epsilon: wrong value for argument 'epsilon' of batchnorm: expected a number >= 0, got -1"),
    ("{conv: {use_bias: $nope}}", "defaults.conv.use_bias: unknown name 'nope'"),
])
def test_a_bad_default_is_located_where_it_is_written(write_spec, defaults, message):
    path = write_spec(f"defaults: {defaults}\ninput: [8, 8, 1]\nlayers: [flatten]\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.location.line == 1 and message in str(caught.value), str(caught.value)


@pytest.mark.parametrize("name, epsilon, momentum, bias", [
    ("resnet18", 1e-5, 0.9, False), ("resnet50", 1.001e-5, 0.99, True)])
def test_the_resnet_specs_set_batchnorm_and_bias_once(name, epsilon, momentum, bias):
    text = (SPECS / f"{name}.yaml").read_text() + (SPECS / "blocks" / "resnet.yaml").read_text()
    lines = [line for line in text.splitlines() if "epsilon" in line and not line.lstrip().startswith("#")]
    assert len(lines) == 2 and "epsilon: $epsilon" in lines[1]  # declared, defaulted once: not threaded
    graph = load_spec(SPECS / f"{name}.yaml", {"size": 32}).graph
    norms = [node.args for node in graph.nodes if node.type == "batchnorm"]
    convs = [node.args for node in graph.nodes if node.type == "conv"]
    assert norms and all(args["epsilon"] == epsilon and args["momentum"] == momentum for args in norms)
    assert convs and all(args["use_bias"] is bias for args in convs)
    assert json.dumps(graph.nodes[0].args)  # plain data
