import json

import pytest

from official.detection.export import label_map


def test_default_is_the_80_coco_2017_categories():
    labels = label_map.load_label_map(None)
    assert len(labels.names) == 80 and labels.image_ids == {}
    assert (labels.names[1], labels.names[13], labels.names[90]) == (
        "person",
        "stop sign",
        "toothbrush",
    )
    assert 12 not in labels.names and max(labels.names) == 90


def test_yaml_and_json_mappings(tmp_path):
    (tmp_path / "labels.yaml").write_text("1: square\n7: circle  # sparse ids are fine\n")
    (tmp_path / "labels.json").write_text(json.dumps({"1": "square", "7": "circle"}))
    for name in ("labels.yaml", "labels.json"):
        labels = label_map.load_label_map(str(tmp_path / name))
        assert labels == label_map.LabelMap({1: "square", 7: "circle"}, {}), name


def test_coco_annotation_file_gives_names_and_image_ids(tmp_path):
    path = tmp_path / "instances_val2017.json"
    path.write_text(
        json.dumps(
            {
                "images": [
                    {"id": 139, "file_name": "000000000139.jpg"},
                    {"id": 5, "file_name": "sub/dir/a.png"},
                ],
                "annotations": [],
                "categories": [{"id": 3, "name": "car", "supercategory": "vehicle"}],
            }
        )
    )
    labels = label_map.load_label_map(str(path))
    assert labels.names == {3: "car"}
    assert labels.image_ids == {"000000000139.jpg": 139, "a.png": 5}


@pytest.mark.parametrize(
    "content, what",
    [
        ("- square\n- circle\n", "holds a list, not a mapping of id to name"),
        ("0: background\n", "has the entry 0: 'background', not a positive id: name"),
        ("1: [square]\n", "has the entry 1: ['square'], not a positive id: name"),
        ("1: square\n  bad: indent\n", "cannot be read as YAML or JSON: mapping values"),
        ('{"categories": [{"name": "car"}]}', "is a COCO annotation file with a malformed entry"),
        ('{"categories": []}', "is a COCO annotation file without valid categories"),
        ("", "holds a NoneType, not a mapping of id to name"),
    ],
)
def test_bad_files_name_the_file_and_the_fix(content, what, tmp_path):
    path = tmp_path / "labels.yaml"
    path.write_text(content)
    with pytest.raises(label_map.LabelMapError) as info:
        label_map.load_label_map(str(path))
    message = str(info.value)
    assert message.startswith(f"label map {path} {what}"), message
    assert message.endswith(
        "(--label_map_file); give a YAML or JSON mapping of category id to name, such as "
        "'1: person', or a COCO annotation file"
    )
