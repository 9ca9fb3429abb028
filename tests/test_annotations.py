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
    ("a.png\t-1\n", r":1: label -1 outside"),
    ("\n\n", "holds no images"),
])
def test_malformed_lines_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        read_annotations(str(path), class_num=3)
    assert "bad.txt" in str(info.value)


def test_group_by_label_requires_every_class():
    assert group_by_label([("a", 0), ("b", 1), ("c", 0)], 2) == [["a", "c"], ["b"]]
    with pytest.raises(ValueError, match=r"classes \[2\] have no training image"):
        group_by_label([("a", 0), ("b", 1)], 3)
