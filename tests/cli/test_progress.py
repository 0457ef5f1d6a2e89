"""Progress off a terminal: one whole plain line per update, nothing under --quiet."""

from covgan.cli.progress import ImageProgress

LABEL = "auditing /a/prepared/folder/with/a/path/longer/than/a/terminal/line/is/wide/" + "x" * 40


def test_each_update_is_one_whole_line_with_the_count(capsys):
    with ImageProgress(6, LABEL) as progress:
        progress.advance(3)
        progress.advance(3)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(LABEL) and "3/6 images" in lines[0]
    assert "6/6 images" in lines[1] and "images/s" in lines[1] and lines[1].endswith("left")
    assert "\u2026" not in "".join(lines) and "\x1b[" not in "".join(lines)


def test_quiet_prints_nothing(capsys):
    with ImageProgress(2, LABEL, quiet=True) as progress:
        progress.advance(2)
    assert capsys.readouterr().err == ""
