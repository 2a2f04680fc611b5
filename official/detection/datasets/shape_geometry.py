"""Polygons of the shapes in the synthetic dataset, and clipping them to the image.

Polygons are float64 NumPy arrays [K, 2] of (x, y) vertices in pixels, the COCO
segmentation convention (x right, y down, origin at the top-left image corner).
Curved shapes (circle, ellipse) are fine regular polygons, so every mask in the
dataset is exactly the rasterisation of a polygon.
"""

import math

import numpy as np

# Vertices per curved outline: with radii below 100 px the chord never strays
# more than 0.12 px from the true curve.
CURVE_VERTICES = 64

_ELLIPSE_ASPECT_RANGE = (1.7, 3.0)
_RECTANGLE_ASPECT_RANGE = (1.0 / 3.0, 3.0)
_STAR_INNER_RATIO = 0.45
_CROSS_THICKNESS_RATIO = 0.36


def _ring(num_vertices, radius_x, radius_y, phase=0.0):
    angles = phase + np.arange(num_vertices) * (2.0 * math.pi / num_vertices)
    return np.stack([radius_x * np.cos(angles), radius_y * np.sin(angles)], axis=1)


def _rotate(points, angle):
    cos, sin = math.cos(angle), math.sin(angle)
    return points @ np.array([[cos, sin], [-sin, cos]])


def _circle(rng, size):
    return _ring(CURVE_VERTICES, size / 2.0, size / 2.0)


def _ellipse(rng, size):
    # Kept clearly elongated so that an ellipse never looks like a circle.
    aspect = rng.uniform(*_ELLIPSE_ASPECT_RANGE)
    outline = _ring(CURVE_VERTICES, size * math.sqrt(aspect) / 2.0, size / math.sqrt(aspect) / 2.0)
    return _rotate(outline, rng.uniform(0.0, math.pi))


def _rectangle(rng, size):
    aspect = math.exp(rng.uniform(*np.log(_RECTANGLE_ASPECT_RANGE)))
    half_w, half_h = size * math.sqrt(aspect) / 2.0, size / math.sqrt(aspect) / 2.0
    corners = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
    # Half of the rectangles stay axis-aligned: their box equals the shape.
    angle = 0.0 if rng.uniform() < 0.5 else rng.uniform(0.0, math.pi / 2.0)
    return _rotate(corners, angle)


def _triangle(rng, size):
    # A jittered equilateral triangle: irregular but never a sliver.
    radius = 0.62 * size * rng.uniform(0.85, 1.15, size=3)
    angles = rng.uniform(0.0, 2.0 * math.pi) + np.arange(3) * (2.0 * math.pi / 3.0)
    angles = angles + rng.uniform(-0.2, 0.2, size=3)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _star(rng, size):
    radius = np.tile([0.6 * size, 0.6 * size * _STAR_INNER_RATIO], 5)
    angles = rng.uniform(0.0, 2.0 * math.pi) + np.arange(10) * (math.pi / 5.0)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _cross(rng, size):
    arm = 0.55 * size
    half = _CROSS_THICKNESS_RATIO * arm
    quarter = np.array([[half, arm], [half, half], [arm, half]])
    # The other three quarters of the plus sign are the first one turned by 90 degrees.
    outline = np.concatenate([_rotate(quarter, -k * math.pi / 2.0) for k in range(4)])
    return _rotate(outline, rng.uniform(0.0, math.pi / 2.0))


SHAPE_BUILDERS = {
    "circle": _circle,
    "ellipse": _ellipse,
    "rectangle": _rectangle,
    "triangle": _triangle,
    "star": _star,
    "cross": _cross,
}


def make_shape(name, rng, size, center, max_extent):
    """Returns the polygon [K, 2] (x, y) of one shape placed in the image.

    Args:
      name: a key of SHAPE_BUILDERS.
      rng: numpy RandomState drawing the aspect ratio, rotation and jitter.
      size: float, about the geometric mean of the shape's width and height, pixels.
      center: (x, y) of the shape's centre, pixels; may lie outside the image.
      max_extent: float, the largest allowed width or height of the unrotated
        outline's box; larger shapes are scaled down to it.
    """
    if name not in SHAPE_BUILDERS:
        raise ValueError(f"make_shape: unknown shape {name!r}; known: {sorted(SHAPE_BUILDERS)}")
    outline = SHAPE_BUILDERS[name](rng, size)
    extent = float(np.max(outline.max(axis=0) - outline.min(axis=0)))
    if extent > max_extent:
        outline = outline * (max_extent / extent)
    return outline + np.asarray(center, np.float64)


def polygon_area(points):
    """Shoelace area of a simple polygon [K, 2], in square pixels (orientation ignored)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _clip_half_plane(points, axis, limit, keep_below):
    """Sutherland-Hodgman step: the part of the polygon with points[:, axis] <= or >= limit."""
    clipped = []
    count = len(points)
    for i in range(count):
        current, following = points[i], points[(i + 1) % count]
        current_in = current[axis] <= limit if keep_below else current[axis] >= limit
        following_in = following[axis] <= limit if keep_below else following[axis] >= limit
        if current_in:
            clipped.append(current)
        if current_in != following_in:
            t = (limit - current[axis]) / (following[axis] - current[axis])
            clipped.append(current + t * (following - current))
    return np.array(clipped).reshape([-1, 2])


def clip_polygon(points, width, height):
    """Clips a polygon [K, 2] to the image rectangle [0, width] x [0, height].

    Returns the clipped polygon [K', 2]; K' < 3 means nothing of it is inside.
    Clipping a concave polygon (star, cross) may leave zero-width slivers along
    the border; they rasterise to nothing and do no harm.
    """
    inside = (
        points[:, 0].min() >= 0
        and points[:, 1].min() >= 0
        and points[:, 0].max() <= width
        and points[:, 1].max() <= height
    )
    if inside:
        return points
    for axis, limit, keep_below in ((0, 0.0, False), (0, width, True), (1, 0.0, False)):
        points = _clip_half_plane(points, axis, float(limit), keep_below)
        if len(points) < 3:
            return points
    return _clip_half_plane(points, 1, float(height), True)
