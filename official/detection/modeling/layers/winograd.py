"""3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3).

Each 2x2 block of outputs comes from a 4x4 input tile: the tile and the kernel
are moved to a 4x4 "Winograd domain" by fixed +-1 / 0.5 transforms, multiplied
there as 16 independent GEMMs over channels, and moved back. That is 16
multiplies per 4 outputs instead of 36, so the forward pass and both gradients
do 2.25x fewer multiply-adds than a direct convolution, at the cost of
element-wise transforms that only pay off on large enough feature maps (see
`cpu_kernels.py` for when it is used and docs/BENCHMARKS.md for figures).

The gradient is written out rather than left to autodiff: autodiff of the
strided tile slices scatters into zero tensors once per slice and was 2-3x
slower than the direct convolution. The backward pass recomputes the input
tiles instead of keeping them, so training memory is that of `tf.nn.conv2d`.

Results equal `tf.nn.conv2d(inputs, kernel, 1, 'SAME')` to float32 rounding
(relative error about 1e-6).
"""

import numpy as np
import tensorflow.compat.v1 as tf

# F(2, 3): output = A^T [(G g) * (B^T d)], for a 4-tap input d and a 3-tap kernel g.
_KERNEL_TRANSFORM = np.array(
    [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]], np.float32
)


def _take(pairs, axis, start, which, tiles):
    """pairs[..., start:start + tiles, which, ...] with the pair axis at `axis + 1`."""
    begin = [0] * pairs.get_shape().ndims
    size = pairs.get_shape().as_list()
    begin[axis], begin[axis + 1] = start, which
    size[axis], size[axis + 1] = tiles, 1
    return tf.squeeze(tf.slice(pairs, begin, size), [axis + 1])


def _split_pairs(x, axis, pairs):
    shape = x.get_shape().as_list()
    return tf.reshape(x, shape[:axis] + [pairs, 2] + shape[axis + 1 :])


def _merge_pairs(x, axis):
    shape = x.get_shape().as_list()
    return tf.reshape(x, shape[:axis] + [shape[axis] * 2] + shape[axis + 2 :])


def _input_transform_1d(x, axis, tiles):
    """B^T along `axis`: x has 2 * tiles + 2 entries there; tile t covers 2t..2t+3.

    Returns the four transformed components, each with `tiles` entries on `axis`.
    """
    pairs = _split_pairs(x, axis, tiles + 1)
    d0, d1 = _take(pairs, axis, 0, 0, tiles), _take(pairs, axis, 0, 1, tiles)
    d2, d3 = _take(pairs, axis, 1, 0, tiles), _take(pairs, axis, 1, 1, tiles)
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def _input_transform_1d_adjoint(components, axis):
    """The adjoint of `_input_transform_1d`: overlapping tiles add up."""
    g0, g1, g2, g3 = components
    first = tf.stack([g0, g1 - g2 + g3], axis + 1)  # entries 2t, 2t+1 of tile t
    second = tf.stack([g1 + g2 - g0, -g3], axis + 1)  # entries 2t+2, 2t+3
    ndims = first.get_shape().ndims
    pad_after = [[0, 0]] * ndims
    pad_before = [[0, 0]] * ndims
    pad_after[axis], pad_before[axis] = [0, 1], [1, 0]
    return _merge_pairs(tf.pad(first, pad_after) + tf.pad(second, pad_before), axis)


# U[a, b] = sum_ij G[a, i] g[i, j] G[b, j] for all 16 (a, b) at once: row a * 4 + b
# of kron(G, G) holds G[a, i] G[b, j] at column i * 3 + j, the kernel's tap order.
_KERNEL_TRANSFORM_2D = np.kron(_KERNEL_TRANSFORM, _KERNEL_TRANSFORM)

# A^T: the 2x2 outputs of a tile are A^T M A for its 4x4 Winograd-domain products M.
_OUTPUT_TRANSFORM = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]], np.float32)
# Row i * 2 + j holds A^T[i, a] A^T[j, b] at column a * 4 + b, the order of the
# 16 Winograd components. One [4, 16] x [16, P * C] product moves every tile back
# in one pass (a third faster than the same sums as separate element-wise ops),
# and its transpose is the adjoint.
_OUTPUT_TRANSFORM_2D = np.kron(_OUTPUT_TRANSFORM, _OUTPUT_TRANSFORM)


def _tiles(padded, tiles_h, tiles_w):
    """[16, B * tiles_h * tiles_w, C] Winograd-domain tiles of the padded input."""
    components = []
    for row in _input_transform_1d(padded, 1, tiles_h):
        components.extend(_input_transform_1d(row, 2, tiles_w))
    channels = padded.get_shape().as_list()[-1]
    return tf.reshape(tf.stack(components), [16, -1, channels])


def conv2d_3x3(inputs, kernel):
    """`tf.nn.conv2d(inputs, kernel, strides=1, padding='SAME')` for a 3x3 kernel.

    Args:
      inputs: float32 tensor [B, H, W, C_in], fully static shape (NHWC).
      kernel: float32 tensor [3, 3, C_in, C_out].

    Returns:
      float32 tensor [B, H, W, C_out].
    """
    shape = inputs.get_shape()
    kernel_shape = kernel.get_shape()
    if not shape.is_fully_defined() or shape.ndims != 4:
        raise ValueError(f"winograd.conv2d_3x3: inputs need a static 4-D shape; got {shape}")
    if kernel_shape.as_list()[:3] != [3, 3, shape.as_list()[-1]]:
        raise ValueError(
            f"winograd.conv2d_3x3: kernel must be [3, 3, {shape.as_list()[-1]}, C_out]; "
            f"got {kernel_shape}"
        )
    batch, height, width, _ = shape.as_list()
    out_channels = kernel_shape.as_list()[-1]
    tiles_h, tiles_w = (height + 1) // 2, (width + 1) // 2
    # One row/column of 'SAME' zeros before; after, enough to fill the last tile.
    input_padding = [[0, 0], [1, 2 * tiles_h + 1 - height], [1, 2 * tiles_w + 1 - width], [0, 0]]
    output_padding = [[0, 0], [0, 2 * tiles_h - height], [0, 2 * tiles_w - width], [0, 0]]
    transform = tf.constant(_KERNEL_TRANSFORM_2D, dtype=inputs.dtype)  # [16, 9]
    in_channels = shape.as_list()[-1]

    output_transform = tf.constant(_OUTPUT_TRANSFORM_2D, dtype=inputs.dtype)  # [4, 16]

    def to_image(domain):
        """[16, P, C_out] Winograd-domain products -> [B, 2 tiles_h, 2 tiles_w, C_out]."""
        blocks = tf.matmul(output_transform, tf.reshape(domain, [16, -1]))
        blocks = tf.reshape(blocks, [2, 2, batch, tiles_h, tiles_w, out_channels])
        image = tf.transpose(blocks, [2, 3, 0, 4, 1, 5])
        return tf.reshape(image, [batch, 2 * tiles_h, 2 * tiles_w, out_channels])

    def to_domain(image_gradient):
        """The adjoint of `to_image`: [B, 2 tiles_h, 2 tiles_w, C_out] -> [16, P, C_out]."""
        blocks = tf.reshape(image_gradient, [batch, tiles_h, 2, tiles_w, 2, out_channels])
        blocks = tf.reshape(tf.transpose(blocks, [2, 4, 0, 1, 3, 5]), [4, -1])
        domain = tf.matmul(output_transform, blocks, transpose_a=True)
        return tf.reshape(domain, [16, -1, out_channels])

    @tf.custom_gradient
    def convolve(images, weights):
        taps = tf.reshape(weights, [9, in_channels * out_channels])
        domain_kernel = tf.reshape(tf.matmul(transform, taps), [16, in_channels, out_channels])
        products = tf.matmul(_tiles(tf.pad(images, input_padding), tiles_h, tiles_w), domain_kernel)
        outputs = to_image(products)[:, :height, :width, :]

        def gradient(output_gradient):
            domain_gradient = to_domain(tf.pad(output_gradient, output_padding))
            # The tiles are recomputed rather than kept from the forward pass.
            tiles = _tiles(tf.pad(images, input_padding), tiles_h, tiles_w)
            domain_kernel_gradient = tf.matmul(tiles, domain_gradient, transpose_a=True)
            kernel_gradient = tf.matmul(
                transform,
                tf.reshape(domain_kernel_gradient, [16, in_channels * out_channels]),
                transpose_a=True,
            )
            kernel_gradient = tf.reshape(kernel_gradient, [3, 3, in_channels, out_channels])
            tile_gradient = tf.matmul(domain_gradient, domain_kernel, transpose_b=True)
            tile_gradient = tf.reshape(tile_gradient, [4, 4, batch, tiles_h, tiles_w, -1])
            row_gradients = [
                _input_transform_1d_adjoint(tf.unstack(tile_gradient[a]), 2) for a in range(4)
            ]
            image_gradient = _input_transform_1d_adjoint(row_gradients, 1)
            return image_gradient[:, 1 : 1 + height, 1 : 1 + width, :], kernel_gradient

        return outputs, gradient

    return convolve(inputs, kernel)
