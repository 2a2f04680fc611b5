"""Decodes one serialized detection `tf.train.Example` into tensors.

The record schema is that of the tensorflow/tpu detection code
(`dataloader/tf_example_decoder.py` there): JPEG or PNG bytes in `image/encoded`,
boxes as four float lists normalised to [0, 1], sparse COCO class ids, and optionally
one full-image PNG mask per object. Records written by the ancestor's converter and by
ours decode the same way.
"""

import tensorflow.compat.v1 as tf

_MAX_HASH_BUCKET = 2**63 - 1


def _dense(sparse_tensor):
    default = "" if sparse_tensor.dtype == tf.string else 0
    return tf.sparse.to_dense(sparse_tensor, default_value=default)


def decode_png_masks(pngs, height, width, dtype=tf.float32):
    """Decodes [N] single-channel PNG strings (N may be 0) into [N, height, width] masks.

    float32 masks are binarised to {0, 1} (some writers store {0, 255}); uint8 masks are
    returned as stored, without a full-size pass over them.
    """

    def decode_one(png):
        return tf.squeeze(tf.io.decode_png(png, channels=1), axis=-1)

    def decode_all():
        masks = tf.map_fn(decode_one, pngs, dtype=tf.uint8, back_prop=False)
        return tf.reshape(masks, [-1, height, width])

    masks = tf.cond(
        tf.size(pngs) > 0,
        decode_all,
        lambda: tf.zeros([0, height, width], tf.uint8),
    )
    if tf.as_dtype(dtype) == tf.float32:
        # Any non-zero value is on (TensorFlow 1.15 has no uint8 Minimum kernel).
        masks = tf.cast(tf.not_equal(masks, 0), tf.float32)
    masks.set_shape([None, None, None])
    return masks


def decode_image(encoded, jpeg_dct_method=""):
    """Encoded image string scalar -> uint8 [H, W, 3].

    JPEG through `decode_jpeg` (so the DCT method applies), anything else as PNG/GIF/BMP.
    """

    def decode_jpeg():
        return tf.io.decode_jpeg(encoded, channels=3, dct_method=jpeg_dct_method)

    def decode_other():
        return tf.io.decode_image(encoded, channels=3, expand_animations=False)

    image = tf.cond(tf.io.is_jpeg(encoded), decode_jpeg, decode_other)
    image.set_shape([None, None, 3])
    return image


class TfExampleDecoder:
    """Decoder for the COCO-style detection `tf.train.Example` schema.

    Args:
      include_mask: also parse `image/object/mask` and decode its PNG strings.
      regenerate_source_id: ignore `image/source_id` and use a hash of the encoded image
        instead (the hash is also used when a record has an empty source id).
      mask_dtype: dtype of `groundtruth_instance_masks`: float32 {0, 1} as in the
        ancestor, or uint8 as stored in the PNGs ({0, 1}, or {0, 255} from some writers),
        without a full-size pass over the masks, for parsers that only crop them.
      jpeg_dct_method: libjpeg DCT method for JPEG images ('' = library default,
        'INTEGER_FAST', 'INTEGER_ACCURATE').
      decode_masks: with include_mask, whether to decode the PNGs; False returns only
        `groundtruth_instance_masks_png` (evaluation needs the strings, not the pixels).
    """

    def __init__(
        self,
        include_mask=False,
        regenerate_source_id=False,
        *,
        mask_dtype=tf.float32,
        jpeg_dct_method="",
        decode_masks=True,
    ):
        if tf.as_dtype(mask_dtype) not in (tf.float32, tf.uint8):
            raise TypeError(
                f"TfExampleDecoder: mask_dtype must be tf.float32 or tf.uint8, got {mask_dtype!r}"
            )
        self._include_mask = include_mask
        self._regenerate_source_id = regenerate_source_id
        self._mask_dtype = tf.as_dtype(mask_dtype)
        self._jpeg_dct_method = jpeg_dct_method
        self._decode_mask_pngs = decode_masks
        self._features = {
            "image/encoded": tf.io.FixedLenFeature((), tf.string),
            "image/source_id": tf.io.FixedLenFeature((), tf.string, ""),
            "image/height": tf.io.FixedLenFeature((), tf.int64, -1),
            "image/width": tf.io.FixedLenFeature((), tf.int64, -1),
            "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
            "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
            "image/object/class/label": tf.io.VarLenFeature(tf.int64),
            "image/object/area": tf.io.VarLenFeature(tf.float32),
            "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
        }
        if include_mask:
            self._features["image/object/mask"] = tf.io.VarLenFeature(tf.string)

    def decode(self, serialized_example):
        """Decodes a scalar string tensor holding one serialized `tf.train.Example`.

        Returns:
          A dict of tensors:
          - image: uint8 [H, W, 3].
          - source_id: string scalar (hash of the image bytes if the record has none).
          - height, width: int32 scalars (the record's values, or the decoded image's when
            the record leaves them out).
          - groundtruth_classes: int32 [N], sparse COCO ids.
          - groundtruth_is_crowd: bool [N] (all False when the record has no is_crowd).
          - groundtruth_area: float32 [N] (box area in pixels when the record has none).
          - groundtruth_boxes: float32 [N, 4], normalised [ymin, xmin, ymax, xmax].
          With include_mask also:
          - groundtruth_instance_masks: `mask_dtype` [N, H, W] in {0, 1} (left out when
            decode_masks is False).
          - groundtruth_instance_masks_png: string [N], the undecoded PNGs.
        """
        parsed = tf.io.parse_single_example(serialized_example, self._features)
        parsed = {k: _dense(v) if isinstance(v, tf.SparseTensor) else v for k, v in parsed.items()}

        image = decode_image(parsed["image/encoded"], jpeg_dct_method=self._jpeg_dct_method)
        image_shape = tf.shape(image)
        height = tf.cast(parsed["image/height"], tf.int32)
        width = tf.cast(parsed["image/width"], tf.int32)
        size_missing = tf.logical_or(height < 0, width < 0)
        height = tf.where(size_missing, image_shape[0], height)
        width = tf.where(size_missing, image_shape[1], width)

        boxes = tf.stack(
            [
                parsed["image/object/bbox/ymin"],
                parsed["image/object/bbox/xmin"],
                parsed["image/object/bbox/ymax"],
                parsed["image/object/bbox/xmax"],
            ],
            axis=-1,
        )
        classes = tf.cast(parsed["image/object/class/label"], tf.int32)

        is_crowd = parsed["image/object/is_crowd"]
        is_crowd = tf.cond(
            tf.size(is_crowd) > 0,
            lambda: tf.cast(is_crowd, tf.bool),
            lambda: tf.zeros_like(classes, dtype=tf.bool),
        )

        area = parsed["image/object/area"]
        box_area = (
            (boxes[:, 2] - boxes[:, 0])
            * (boxes[:, 3] - boxes[:, 1])
            * tf.cast(height * width, tf.float32)
        )
        area = tf.cond(tf.size(area) > 0, lambda: area, lambda: box_area)

        image_hash = tf.strings.as_string(
            tf.strings.to_hash_bucket_fast(parsed["image/encoded"], _MAX_HASH_BUCKET)
        )
        if self._regenerate_source_id:
            source_id = image_hash
        else:
            source_id = parsed["image/source_id"]
            source_id = tf.cond(
                tf.strings.length(source_id) > 0, lambda: source_id, lambda: image_hash
            )

        decoded = {
            "image": image,
            "source_id": source_id,
            "height": height,
            "width": width,
            "groundtruth_classes": classes,
            "groundtruth_is_crowd": is_crowd,
            "groundtruth_area": area,
            "groundtruth_boxes": boxes,
        }
        if self._include_mask:
            pngs = parsed["image/object/mask"]
            decoded["groundtruth_instance_masks_png"] = pngs
            if self._decode_mask_pngs:
                decoded["groundtruth_instance_masks"] = decode_png_masks(
                    pngs, image_shape[0], image_shape[1], self._mask_dtype
                )
        return decoded
