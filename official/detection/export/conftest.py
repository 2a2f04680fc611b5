"""The checkpoints the export tests export, made once per test process."""

import pytest

from official.detection.testing import exports, shapes_records


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    records = shapes_records.write_shapes_records(
        str(root / "shapes"), num_train=4, num_val=3, image_size=96
    )
    return exports.Checkpoints(str(root), records)
