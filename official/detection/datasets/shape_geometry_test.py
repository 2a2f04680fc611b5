import math

import numpy as np
import pytest

from official.detection.datasets import shape_geometry


def _square(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def _regular_polygon_area(num_vertices, radius_x, radius_y):
    return 0.5 * num_vertices * math.sin(2.0 * math.pi / num_vertices) * radius_x * radius_y


def test_polygon_area_hand_computed():
    assert shape_geometry.polygon_area(_square(0, 0, 3, 2)) == pytest.approx(6.0)
    # Clockwise order gives the same area.
    assert shape_geometry.polygon_area(_square(0, 0, 3, 2)[::-1]) == pytest.approx(6.0)
    triangle = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]])
    assert shape_geometry.polygon_area(triangle) == pytest.approx(6.0)


def test_clip_polygon_inside_is_unchanged():
    square = _square(1, 2, 5, 6)
    np.testing.assert_array_equal(shape_geometry.clip_polygon(square, 10, 10), square)


def test_clip_polygon_cuts_at_every_border():
    clipped = shape_geometry.clip_polygon(_square(-5, -3, 12, 14), 10, 8)
    assert shape_geometry.polygon_area(clipped) == pytest.approx(80.0)
    np.testing.assert_allclose(clipped.min(axis=0), [0, 0])
    np.testing.assert_allclose(clipped.max(axis=0), [10, 8])


def test_clip_polygon_diamond_over_corner():
    # A diamond centred on the corner (0, 0) keeps one quarter of its area.
    diamond = np.array([[4.0, 0.0], [0.0, 4.0], [-4.0, 0.0], [0.0, -4.0]])
    clipped = shape_geometry.clip_polygon(diamond, 20, 20)
    assert shape_geometry.polygon_area(clipped) == pytest.approx(8.0)


def test_clip_polygon_outside_leaves_nothing():
    assert len(shape_geometry.clip_polygon(_square(11, 1, 15, 5), 10, 10)) < 3


@pytest.mark.parametrize("name", sorted(shape_geometry.SHAPE_BUILDERS))
def test_make_shape_is_centred_and_within_max_extent(name):
    rng = np.random.RandomState(0)
    for _ in range(20):
        polygon = shape_geometry.make_shape(name, rng, 40.0, (100.0, 50.0), max_extent=45.0)
        extent = polygon.max(axis=0) - polygon.min(axis=0)
        assert extent.max() <= 45.0 + 1e-9
        assert shape_geometry.polygon_area(polygon) > 0.1 * 40.0**2
        # Every shape's centroid of vertices is near the requested centre.
        np.testing.assert_allclose(polygon.mean(axis=0), [100.0, 50.0], atol=12.0)


def test_circle_and_ellipse_areas():
    rng = np.random.RandomState(1)
    n = shape_geometry.CURVE_VERTICES
    circle = shape_geometry.make_shape("circle", rng, 30.0, (0.0, 0.0), max_extent=100.0)
    assert shape_geometry.polygon_area(circle) == pytest.approx(_regular_polygon_area(n, 15, 15))
    np.testing.assert_allclose(np.hypot(circle[:, 0], circle[:, 1]), 15.0)
    # Whatever its aspect and rotation, an ellipse of size s has the area of a circle of size s.
    for _ in range(5):
        ellipse = shape_geometry.make_shape("ellipse", rng, 30.0, (0.0, 0.0), max_extent=100.0)
        assert shape_geometry.polygon_area(ellipse) == pytest.approx(
            _regular_polygon_area(n, 15, 15)
        )
        extent = ellipse.max(axis=0) - ellipse.min(axis=0)
        assert extent.max() > 1.2 * 30.0 / math.sqrt(3.0)


def test_rectangle_area_is_size_squared():
    rng = np.random.RandomState(2)
    aspects = []
    for _ in range(30):
        rectangle = shape_geometry.make_shape("rectangle", rng, 20.0, (0.0, 0.0), max_extent=1e3)
        assert shape_geometry.polygon_area(rectangle) == pytest.approx(400.0)
        sides = np.hypot(*(rectangle[1:3] - rectangle[0:2]).T)
        aspects.append(sides[0] / sides[1])
    assert min(aspects) < 0.6 and max(aspects) > 1.7


def test_cross_area_hand_computed():
    cross = shape_geometry.make_shape(
        "cross", np.random.RandomState(3), 20.0, (0.0, 0.0), max_extent=1e3
    )
    arm = 0.55 * 20.0
    half = 0.36 * arm
    # Two bars of 2 arm x 2 half overlapping in a 2 half x 2 half square.
    expected = 2 * (2 * arm) * (2 * half) - (2 * half) ** 2
    assert len(cross) == 12
    assert shape_geometry.polygon_area(cross) == pytest.approx(expected)


def test_make_shape_scales_down_to_max_extent():
    rng = np.random.RandomState(4)
    circle = shape_geometry.make_shape("circle", rng, 100.0, (0.0, 0.0), max_extent=50.0)
    np.testing.assert_allclose(np.hypot(circle[:, 0], circle[:, 1]), 25.0)


def test_make_shape_unknown_name():
    with pytest.raises(ValueError, match=r"unknown shape 'hexagon'; known: \['circle'"):
        shape_geometry.make_shape("hexagon", np.random.RandomState(0), 10.0, (0, 0), 20.0)
