"""The README and docs/: their worked examples keep working as written, the generated reference
matches the registries, and every link between the pages lands on a page and a heading."""

import re

from builder import build_model

from .conftest import ROOT

DOCS = ROOT / "docs"


def test_readme_tour_spec_builds_and_its_quoted_error_is_the_real_one(tmp_path):
    from builder import SpecError, load_spec

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    spec_text = readme.split("```yaml\n# my_net.yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my_net.yaml"
    path.write_text(spec_text, encoding="utf-8")
    model = build_model(path)
    assert model.output.shape == (None, 10) and model.get_layer("predictions").units == 10
    path.write_text(spec_text.replace('filters: "${width * 2}"', 'filter: "${width * 2}"'), encoding="utf-8")
    try:
        load_spec(path)
    except SpecError as error:
        quoted = " ".join(readme.split("in the residual: `", 1)[1].split("`)", 1)[0].split())
        assert str(error).replace(str(path), "my_net.yaml") == quoted
    else:
        raise AssertionError("the misspelt argument was accepted")


def test_mobilenet_example_builds(tmp_path):
    guide = (DOCS / "spec-language.md").read_text(encoding="utf-8")
    spec_text = guide.split("# specs/my_mobilenet.yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my_mobilenet.yaml"
    path.write_text(spec_text, encoding="utf-8")
    model = build_model(path, {"alpha": 0.5, "size": 32})
    assert model.output.shape == (None, 10)
    assert model.get_layer("depthwise_separable2_conv1").filters == 64  # int(128 * 0.5)


def test_train_section_example_is_valid():
    import yaml

    from builder.language.train_section import resolve_train

    training = (DOCS / "training.md").read_text(encoding="utf-8")
    block = training.split("## The `train:` section\n\n```yaml\n", 1)[1].split("```", 1)[0]
    config = resolve_train(yaml.safe_load(block)["train"])
    assert config["performance"]["jit_compile"] == "auto" and config["augment"][2] == {"crop": {"padding": 4}}
    assert config["data"]["normalize"] == "imagenet" and config["checkpoint_every_steps"] == 500
    assert config["distribution"] == {"data_parallel": "auto"}


def test_the_reference_page_is_generated_from_the_registries():
    from builder.language.reference import reference_markdown

    assert (DOCS / "reference.md").read_text(encoding="utf-8") == reference_markdown(), \
        "docs/reference.md drifted: run `python -m builder reference -o docs/reference.md`"


def test_every_layer_type_argument_and_setting_is_described():
    from builder.language.layer_registry import LAYER_TYPES
    from builder.language.train_section import TRAINERS

    for name, entry in LAYER_TYPES.items():
        assert entry.doc, name
        for arg_name, arg in entry.args.items():
            assert arg.doc, f"{name}.{arg_name}"
    for name, entry in TRAINERS.items():
        for key, schema in entry.schema()["properties"].items():
            assert key == "trainer" or schema.get("description"), f"{name}.{key}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_pages_land():
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    checked = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(((?!https?:)[^)#\s]*)(?:#([^)\s]+))?\)", text):
            linked = (page.parent / target).resolve() if target else page
            assert linked.exists(), f"{page.name} links to a missing {target}"
            if anchor and linked.suffix == ".md":
                body = re.sub(r"```.*?```", "", linked.read_text(encoding="utf-8"), flags=re.S)
                headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", body, flags=re.M)}
                assert anchor in headings, f"{page.name}: #{anchor} is no heading of {linked.name}"
            checked += 1
    assert checked >= 15
