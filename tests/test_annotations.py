"""Annotation files: round trip and errors that name file and line."""
import pytest

from data.annotations import group_by_label, read_annotations, write_annotations


def test_round_trip(tmp_path):
    path = str(tmp_path / "a" / "list.txt")
    items = [("img/x.png", 0), ("/abs/y.png", 2)]
    write_annotations(path, items)
    assert read_annotations(path, class_num=3) == items
    write_annotations(path, items, with_labels=False)
    assert read_annotations(path, with_labels=False) == [("img/x.png", -1), ("/abs/y.png", -1)]


def test_missing_file():
    with pytest.raises(ValueError, match="annotation file not found.*generate_"):
        read_annotations("/nonexistent/list.txt")


@pytest.mark.parametrize("content, message", [
    ("a.png\t0\nb.png 1\n", r":2: expected 'path<TAB>label'"),
    ("a.png\tone\n", r":1: label 'one' is not an integer"),
    ("a.png\t0\n\nb.png\t5\n", r":3: label 5 outside 0..2"),
    ("a.png\t-2\n", r":1: label -2 outside"),
    ("a.png\t0\nb.png\t-1\n", r":2: label -1 means 'no known architecture'.*only in open-set lists"),
    ("\n\n", "holds no images"),
])
def test_malformed_lines_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read_annotations(str(path), class_num=3)
    assert "bad.txt" in str(info.value)


def test_unknown_label_only_when_allowed(tmp_path):
    path = str(tmp_path / "open_set.txt")
    write_annotations(path, [("a.png", -1), ("b.png", 2)])
    assert read_annotations(path, class_num=3, allow_unknown=True) == [("a.png", -1), ("b.png", 2)]
    with pytest.raises(ValueError, match=r"open_set.txt:1: label -1 means 'no known architecture'"):
        read_annotations(path, class_num=3)
    with pytest.raises(ValueError, match=r":2: label 2 outside 0..1"):
        read_annotations(path, class_num=2, allow_unknown=True)
    path_only = str(tmp_path / "pre.txt")
    write_annotations(path_only, [("a.png", -1)], with_labels=False)
    assert read_annotations(path_only, with_labels=False) == [("a.png", -1)]


def test_group_by_label_requires_every_class():
    assert group_by_label([("a", 0), ("b", 1), ("c", 0)], 2) == [["a", "c"], ["b"]]
    with pytest.raises(ValueError, match=r"classes \[2\] have no training image"):
        group_by_label([("a", 0), ("b", 1)], 3)
    with pytest.raises(ValueError, match="label -1, outside 0..1"):
        group_by_label([("a", 0), ("b", 1), ("c", -1)], 2)
