"""The README's worked example must keep working as written."""

from builder import build_model

from .conftest import ROOT


def test_readme_mobilenet_example_builds(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    spec_text = readme.split("# specs/my_mobilenet.yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my_mobilenet.yaml"
    path.write_text(spec_text, encoding="utf-8")
    model = build_model(path, {"alpha": 0.5, "size": 32})
    assert model.output.shape == (None, 10)
    assert model.get_layer("depthwise_separable2_conv1").filters == 64  # int(128 * 0.5)


def test_readme_train_section_example_is_valid():
    import yaml

    from builder.language.train_section import resolve_train

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("### The `train:` section\n\n```yaml\n", 1)[1].split("```", 1)[0]
    config = resolve_train(yaml.safe_load(block)["train"])
    assert config["performance"]["jit_compile"] == "auto" and config["augment"][2] == {"crop": {"padding": 4}}
    assert config["data"]["normalize"] == "imagenet" and config["checkpoint_every_steps"] == 500
    assert config["distribution"] == {"data_parallel": "auto"}
