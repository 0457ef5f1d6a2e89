"""tools/compare_maps.py on a localisation.json written here: the means and the paired
intervals of one map against others, film by film."""

import json

import pytest
from helpers import load_tool


def rows(pointing, mass):
    return [{"pointing_game": p, "relevance_mass": m} for p, m in zip(pointing, mass)]


def test_one_map_against_others_film_by_film(tmp_path, capsys):
    scores = {"per_image": {
        "walk": rows([1, 1, 1, 0], [0.5, 0.4, 0.3, 0.2]),
        "always": rows([1, 1, 1, 1], [0.5, 0.4, 0.3, 0.2]),
        "never": rows([0, 0, 0, 0], [0.1, 0.0, 0.1, 0.0]),
    }}
    path = tmp_path / "localisation.json"
    path.write_text(json.dumps(scores))
    module = load_tool("compare_maps")
    result = module.compare_maps(scores, "walk", ["always", "never"])
    assert result["n"] == 4
    assert result["means"]["walk"] == {"pointing_game": 0.75, "relevance_mass": 0.35}
    # Against "never", every film is ahead on both scores: the interval lies above 0.
    low, high = result["minus"]["never"]["pointing_game"]
    assert 0 < low <= 0.75 <= high <= 1
    assert result["minus"]["never"]["relevance_mass"][0] > 0
    # Against "always", it is behind on one film and level on the rest, the mass the same.
    assert result["minus"]["always"]["pointing_game"][1] == 0
    assert result["minus"]["always"]["relevance_mass"] == [0, 0]

    module.main([str(path), "walk", "never"])
    assert json.loads(capsys.readouterr().out)["minus"]["never"] == result["minus"]["never"]
    with pytest.raises(SystemExit, match="no map 'film'"):
        module.compare_maps(scores, "film", ["never"])


def test_the_same_maps_of_two_runs_film_by_film(tmp_path, capsys):
    ours = {"images": ["a.png", "b.png"], "seeds": [0, 1], "per_image": {
        "walk": rows([1, 1, 1, 1], [0.5, 0.5, 0.5, 0.5]),
        "gradient": rows([0, 1, 0, 1], [0.2, 0.2, 0.2, 0.2])}}
    theirs = {**ours, "per_image": {**ours["per_image"],
                                    "walk": rows([0, 0, 0, 0], [0.1, 0.2, 0.1, 0.2])}}
    paths = [tmp_path / "ours.json", tmp_path / "theirs.json"]
    for path, scores in zip(paths, (ours, theirs)):
        path.write_text(json.dumps(scores))
    load_tool("compare_maps").main([str(paths[0]), "walk", "gradient", "--against",
                                    str(paths[1])])
    against = json.loads(capsys.readouterr().out)["against"]
    assert against["means"]["walk"] == {"pointing_game": 0.0, "relevance_mass": 0.15}
    assert against["minus"]["walk"]["pointing_game"] == [1, 1]  # ahead on every film
    assert against["minus"]["gradient"] == {"pointing_game": [0, 0], "relevance_mass": [0, 0]}
    paths[1].write_text(json.dumps({**theirs, "seeds": [0]}))
    with pytest.raises(SystemExit, match="differ in seeds"):
        load_tool("compare_maps").main([str(paths[0]), "walk", "gradient", "--against",
                                        str(paths[1])])


def test_folds_pooled_as_one_set_of_films(tmp_path, capsys):
    # Two folds of two films each: scored as one set of four, each fold also on its own.
    first = {"images": ["a.png", "b.png"], "seeds": [0], "per_image": {
        "walk": rows([1, 1], [0.5, 0.5]), "gradient": rows([0, 1], [0.2, 0.5]),
        "only_here": rows([0, 0], [0, 0])}}
    second = {"images": ["c.png", "d.png"], "seeds": [0], "per_image": {
        "walk": rows([1, 0], [0.4, 0.1]), "gradient": rows([0, 0], [0.1, 0.1])}}
    paths = [tmp_path / "fold0.json", tmp_path / "fold1.json"]
    for path, scores in zip(paths, (first, second)):
        path.write_text(json.dumps(scores))
    module = load_tool("compare_maps")
    module.main([str(paths[0]), "walk", "gradient", "--pool", str(paths[1])])
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 4
    assert result["means"]["walk"] == {"pointing_game": 0.75, "relevance_mass": 0.375}
    assert result["minus"]["gradient"] == module.rounded_intervals(
        rows([1, 1, 1, 0], [0.5, 0.5, 0.4, 0.1]), rows([0, 1, 0, 0], [0.2, 0.5, 0.1, 0.1]))
    assert [fold["n"] for fold in result["folds"]] == [2, 2]
    assert result["folds"][1]["means"]["gradient"]["relevance_mass"] == 0.1
    # A film in two folds is not two films.
    paths[1].write_text(json.dumps({**second, "images": ["b.png", "d.png"]}))
    with pytest.raises(SystemExit, match="share films"):
        module.main([str(paths[0]), "walk", "gradient", "--pool", str(paths[1])])


def test_only_the_films_the_classifier_calls_positive(tmp_path, capsys):
    # Film b reads p 0.3: left out of every file, and of --against's run by the first's call.
    def scores(walk, p_images):
        return {"images": ["a.png", "b.png", "c.png"], "seeds": [0],
                "inversion": {"per_image": [{"p_image": p} for p in p_images]},
                "per_image": {"walk": rows(walk, [0.5, 0.1, 0.3]),
                              "gradient": rows([0, 1, 0], [0.2, 0.2, 0.2])}}
    first = tmp_path / "first.json"
    first.write_text(json.dumps(scores([1, 0, 1], [0.9, 0.3, 0.5])))
    other = tmp_path / "other.json"
    other.write_text(json.dumps(scores([0, 1, 0], [0.2, 0.9, 0.8])))
    module = load_tool("compare_maps")
    module.main([str(first), "walk", "gradient", "--called-positive", "--against", str(other)])
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2 and result["called_positive"] is True
    assert result["means"]["walk"] == {"pointing_game": 1.0, "relevance_mass": 0.4}
    assert result["minus"]["gradient"]["pointing_game"] == [1, 1]
    assert result["against"]["means"]["walk"]["pointing_game"] == 0.0  # its a and c
    second = tmp_path / "second.json"
    second.write_text(json.dumps({**scores([1, 1, 0], [0.1, 0.1, 0.1]),
                                  "images": ["d.png", "e.png", "f.png"]}))
    with pytest.raises(SystemExit, match="calls none of these films positive"):
        module.main([str(first), "walk", "gradient", "--called-positive", "--pool", str(second)])
    bare = tmp_path / "bare.json"  # written before localise kept p per film
    bare.write_text(json.dumps({"images": ["a.png"], "seeds": [0], "per_image": {}}))
    with pytest.raises(SystemExit, match="no p\\(positive\\) per film"):
        module.main([str(bare), "walk", "gradient", "--called-positive"])
