"""Names: a named block call's output layer carries the call's name, counters never run into
names that end in digits or that the spec writes, and errors inside blocks name the call sites."""

import pytest

from builder import SpecError, build_model

BLOCKS = """
blocks:
  branch_3x3:
    params: {filters: 4}
    layers:
      - conv: {filters: $filters, kernel: 3, padding: same}
      - relu
  stage:
    params: {filters: 4}
    layers:
      - parallel:
          branches:
            - [branch_3x3: {filters: $filters}]
            - [conv: {filters: 2, kernel: 1}]
  passthrough:
    params: {enabled: false}
    layers:
      - relu: {}
        when: $enabled
"""


def names(model):
    return [layer.name for layer in model.layers]


def test_a_named_block_call_is_its_output_layer(write_spec):
    model = build_model(write_spec(BLOCKS + """
        input: [8, 8, 3]
        layers:
          - stage: {filters: 4}
            name: stage3
          - global_avg_pool: {}
            name: pooled
    """.replace("\n        ", "\n")))
    assert model.get_layer("stage3").output.shape == (None, 8, 8, 6)
    assert type(model.get_layer("stage3")).__name__ == "Concatenate"
    assert model.get_layer("pooled").input.shape == (None, 8, 8, 6)


def test_a_named_call_that_passes_its_input_through_gets_an_identity_of_that_name(write_spec):
    model = build_model(write_spec(BLOCKS + """
input: [8, 8, 3]
layers:
  - conv: {filters: 3, kernel: 1}
  - passthrough: {}
    name: tap
"""))
    assert type(model.get_layer("tap")).__name__ == "Identity"
    assert model.get_layer("tap").input.shape == (None, 8, 8, 3)


def test_counters_never_run_into_digit_endings_or_written_names(write_spec):
    model = build_model(write_spec(BLOCKS + """
input: [8, 8, 3]
layers:
  - branch_3x3
  - branch_3x3
  - conv: {filters: 3, kernel: 1}
  - conv1d_free: {}
    when: false
  - conv: {filters: 3, kernel: 1}
    name: conv1
""".replace("  - conv1d_free: {}\n    when: false\n", "")))
    assert names(model) == ["input", "branch_3x3_1_conv1", "branch_3x3_1_relu1", "branch_3x3_2_conv1",
                            "branch_3x3_2_relu1", "conv2", "conv1"]


def test_an_error_inside_blocks_names_every_call_site(write_spec):
    write_spec("""
        blocks:
          inner:
            params: {size: 3}
            layers:
              - conv: {filters: 2, kernel: $size}
          outer:
            params: {size: 3}
            layers:
              - inner: {size: $size}
                name: deep
    """, "lib.yaml")
    path = write_spec("""
        include: [lib.yaml]
        input: [4, 4, 3]
        layers:
          - outer: {size: 9}
    """)
    library = path.parent / "lib.yaml"
    with pytest.raises(SpecError) as caught:
        build_model(path)
    text = str(caught.value)
    assert text.startswith(f"{library}:5:9: blocks.inner.layers[0].conv: conv 'outer1_deep' cannot take input of "
                           "shape (None, 4, 4, 3)")
    assert text.endswith(f"(in block 'inner' called at {library}:9:9, in block 'outer' called at {path}:4:5)")
    typo = path.with_name("typo.yaml")
    typo.write_text(path.read_text().replace("size: 9", "size: '${9 +}'"))
    with pytest.raises(SpecError) as caught:  # an argument is evaluated at the call itself
        build_model(typo)
    assert str(caught.value).startswith(f"{typo}:4:") and "called at" not in str(caught.value)
    write_spec(library.read_text().replace("kernel: $size", 'kernel: "${size - 10}"'), "lib.yaml")
    with pytest.raises(SpecError) as caught:  # found while expanding, inside the blocks
        build_model(path)
    assert "wrong value for argument 'kernel' of conv" in str(caught.value)
    assert str(caught.value).endswith(f"(in block 'inner' called at {library}:9:9, in block 'outer' called at "
                                      f"{path}:4:5)")
