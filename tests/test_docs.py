"""The README and the documentation site: a first screen, no drift from the code.

The site itself is built with `mkdocs build --strict` by tools/test.sh (a broken link or a page
left out fails it); these tests check what the build cannot: that the generated CLI reference
says what `--help` says, that the README stays a first screen, and that the README's Python
example names what the package has.
"""

import html
import pathlib
import re

import markdown
from click.testing import CliRunner
from helpers import leaf_commands

from covgan.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A commit hash as the pages cite one: 7 to 40 hex digits with at least one letter and one digit.
COMMIT = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")


def generated_reference() -> str:
    """The CLI page's full reference as the site renders it (mkdocs-click), as plain text."""
    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    extensions = ["mkdocs-click", "tables", "attr_list", "pymdownx.superfences"]
    rendered = markdown.Markdown(extensions=extensions).convert(page)
    rendered = rendered[rendered.index("Full reference"):]
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


def help_options(path) -> list[str]:
    """The options `covgan PATH --help` lists, each as its first long (or only) name."""
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    listed = result.output[result.output.index("Options:"):]
    return re.findall(r"^\s{2}(?:-\w, )?(--[\w-]+)", listed, re.M)


def test_the_generated_cli_reference_lists_every_command_and_option():
    reference = generated_reference()
    usages = {m.group(1): m.start()
              for m in re.finditer(r"^(covgan[\w -]*?) \[OPTIONS\]", reference, re.M)}
    for path, _ in leaf_commands(main):
        name = " ".join(("covgan", *path))
        assert name in usages, f"the generated reference has no usage line for {name}"
        start = usages[name]
        later = [s for s in usages.values() if s > start]
        section = reference[start:min(later) if later else len(reference)]
        options = help_options(path)
        assert "--help" in options and len(options) > 1, (name, options)
        for option in options:
            assert re.search(rf"{re.escape(option)}\b", section), f"{name}: {option} missing"


def test_the_readme_is_a_first_screen_without_commit_hashes():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert not COMMIT.findall(readme), COMMIT.findall(readme)
    # The picture comes before the set-up commands, and both before any long section.
    assert readme.index("<img src=") < readme.index("## Set up") < readme.index("## Results")
    # The user guide says what commands do; its figures live on the Results pages.
    for page in [ROOT / "docs" / "getting-started.md", *(ROOT / "docs" / "guide").glob("*.md")]:
        assert not COMMIT.findall(page.read_text()), (page.name, COMMIT.findall(page.read_text()))


def test_every_link_of_the_readme_reaches_a_file():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    targets += re.findall(r'<img src="([^"]+)"', readme)
    assert len(targets) > 10
    for target in targets:
        if "://" not in target:
            assert (ROOT / target).exists(), target


def test_the_readme_python_example_runs(tiny_run, phantom_positives, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Use from Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert '"runs/demo/gan"' in code and '"chest.png"' in code
    code = code.replace('"runs/demo/gan"', repr(str(tiny_run)))
    code = code.replace('"chest.png"', repr(phantom_positives[0]))
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    default_map = namespace["default_map"]
    assert default_map.shape == (128, 128) and 0.0 <= default_map.min() <= default_map.max() <= 1.0
    assert namespace["result"]["probabilities"].shape == (1, 3)
    printed = capsys.readouterr().out.split()
    assert len(printed) == 5  # three probabilities, the SSIM and the verdict
