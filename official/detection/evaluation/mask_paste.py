"""Pastes fixed-size instance masks (e.g. 28x28 Mask R-CNN outputs) into the image.

Each mask is taken to cover its box exactly, cell (i, j) spanning 1/mh of the box
height and 1/mw of its width. An image pixel is sampled at its centre with bilinear
interpolation between cell centres, the mask being zero outside the box, and is on when
the value is above 0.5. This is a bilinear resize of the mask into its box that needs
no integer box rounding and no +1 pixel convention; unlike a resize of the bare mask it
fades to zero across the box border instead of repeating the border cells (Detectron's
reason for padding the mask by one cell before resizing it).

Pure NumPy: runs on the evaluation host, not in the graph.
"""

import numpy as np

MASK_THRESHOLD = 0.5


def _interpolation_weights(start, end, first_pixel, num_pixels, num_cells):
    """[num_pixels, num_cells] bilinear weights of mask cells at image pixel centres.

    The mask's num_cells cells span [start, end) along one axis; pixels are
    first_pixel, first_pixel + 1, ...; weights onto cells outside the mask are dropped
    (zero padding).
    """
    centres = first_pixel + np.arange(num_pixels, dtype=np.float64) + 0.5
    position = (centres - start) / (end - start) * num_cells - 0.5
    lower = np.floor(position)
    fraction = position - lower
    # Columns 0 and num_cells + 1 stand for the zero padding on either side.
    weights = np.zeros((num_pixels, num_cells + 2))
    rows = np.arange(num_pixels)
    lower_column = np.clip(lower.astype(np.int64) + 1, 0, num_cells + 1)
    upper_column = np.clip(lower.astype(np.int64) + 2, 0, num_cells + 1)
    np.add.at(weights, (rows, lower_column), 1.0 - fraction)
    np.add.at(weights, (rows, upper_column), fraction)
    return weights[:, 1:-1]


def paste_instance_masks(masks, boxes, image_height, image_width):
    """Binary full-image masks from per-box soft masks.

    Args:
      masks: float [N, mh, mw] mask probabilities, each covering its box.
      boxes: float [N, 4] [ymin, xmin, ymax, xmax] boxes in pixels of the target image.
      image_height, image_width: ints, size of the target image.

    Returns:
      uint8 [N, image_height, image_width] with values in {0, 1} (not C-contiguous: see
      below). Boxes with no area give empty masks; parts of a box outside the image are
      cut off.
    """
    masks = np.asarray(masks, np.float64)
    boxes = np.asarray(boxes, np.float64)
    if masks.ndim != 3 or boxes.shape != (masks.shape[0], 4):
        raise ValueError(
            "paste_instance_masks: need `masks` [N, mh, mw] and `boxes` [N, 4]; received "
            f"shapes {list(masks.shape)} and {list(boxes.shape)}."
        )
    image_height, image_width = int(image_height), int(image_width)
    num_masks, mask_height, mask_width = masks.shape
    # Laid out [N, W, H] and returned as an [N, H, W] view: its [H, W, N] transpose is
    # then the Fortran-ordered array pycocotools encodes, with no copy of N full images.
    pasted = np.zeros((num_masks, image_width, image_height), np.uint8).transpose(0, 2, 1)
    for index in range(num_masks):
        ymin, xmin, ymax, xmax = boxes[index]
        if not (ymax > ymin and xmax > xmin):
            continue
        # Only pixels whose centre is inside the box can reach the threshold.
        y0, y1 = max(int(np.floor(ymin)), 0), min(int(np.ceil(ymax)), image_height)
        x0, x1 = max(int(np.floor(xmin)), 0), min(int(np.ceil(xmax)), image_width)
        if y1 <= y0 or x1 <= x0:
            continue
        rows = _interpolation_weights(ymin, ymax, y0, y1 - y0, mask_height)
        cols = _interpolation_weights(xmin, xmax, x0, x1 - x0, mask_width)
        values = rows @ masks[index] @ cols.T
        pasted[index, y0:y1, x0:x1] = values > MASK_THRESHOLD
    return pasted
