"""A detector run on image files: a picture per image and the COCO results of all.

    predictor = predictors.checkpoint_predictor(params, MODEL_DIR)  # or saved_model_predictor
    summary = run_inference(predictor, find_images('photos/*.jpg'), 'out',
                            label_map.load_label_map(None))

writes, for every image file that decodes:
  - `out/<name>.png`: the image with its detections drawn (`visualize.draw_image`):
    boxes, class names and scores, Mask R-CNN masks, at most `max_boxes_to_draw`
    detections with a score of at least `min_score_threshold`. `<name>` is the file name
    without its extension; when two files share it, their names keep the extension
    (`a.jpg.png`), and when they share that too (in two directories), the second gets
    its position in the sorted list of files (`a.jpg-2.png`).
  - `out/detections.json` (written atomically): every detection the model returns, in
    the COCO results format: `image_id`, `category_id`, `bbox` [x, y, width, height]
    in pixels, `score`, and for Mask R-CNN `segmentation`, the mask pasted into the image
    as RLE with str counts.
Image ids: when the label map file is a COCO annotation file that lists the file's name,
its id there; otherwise the file's position in the sorted list of files, from 1, plus
the largest image id of that annotation file (so ids never collide). Images are read
as evaluation reads them: RGB and grayscale JPEGs with TensorFlow's decoder, the others
with Pillow, converted to RGB (palette, CMYK; the alpha channel is dropped); in the
orientation they are stored in (EXIF rotation is not applied, as COCO annotations do
not apply it). A file that does not decode is skipped and listed.
"""

import collections
import concurrent.futures
import glob
import io
import json
import os
import time

import numpy as np
from PIL import Image, UnidentifiedImageError

from official.detection import visualize
from official.detection.atomic_file import write_atomically
from official.detection.evaluation import coco_evaluator

DETECTIONS_FILE = "detections.json"
PROGRESS_SECONDS = 10.0
# How many images wait for a batch of their size (image_tensor inputs) before the
# largest waiting group is run as it is.
_PENDING_BATCHES = 4

# images: decoded images; skipped: [(path, reason)]; seconds: from the first image read
# to the last picture written; model_seconds: inside the model.
Summary = collections.namedtuple(
    "Summary", ["images", "detections", "skipped", "seconds", "model_seconds"]
)


class InferenceError(ValueError):
    """A run the user asked for that cannot be done; the message says why and what to do."""


class NotAnImageError(InferenceError):
    """A file that does not decode as an image."""

    def __init__(self, path, reason):
        super().__init__(
            f"{path} is not a decodable image ({reason}) (--image_file_pattern); remove it, "
            "or run without --strict to skip it"
        )
        self.path = path
        self.reason = reason


def find_images(pattern):
    """The sorted files of directory `pattern` (not its subdirectories or hidden files),
    or those matching the glob `pattern`."""
    if os.path.isdir(pattern):
        names = [n for n in os.listdir(pattern) if not n.startswith(".")]
        paths = [os.path.join(pattern, n) for n in names]
    else:
        paths = glob.glob(pattern)
    paths = sorted(p for p in paths if os.path.isfile(p))
    if not paths:
        raise InferenceError(
            f"no files match {pattern!r} (--image_file_pattern); give a directory of images "
            "or a glob such as 'photos/*.jpg'"
        )
    return paths


def read_image(path, decode_jpeg=None):
    """uint8 [H, W, 3] RGB pixels of an image file; NotAnImageError if it does not decode.

    `decode_jpeg(bytes) -> pixels`, when given, decodes the RGB and grayscale JPEGs
    (those evaluation reads as they are, see `predictors.Predictor.decode_jpeg`).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
        with Image.open(io.BytesIO(data)) as image:
            if decode_jpeg and image.format == "JPEG" and image.mode in ("RGB", "L"):
                return decode_jpeg(data)
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                image = image.convert("RGBA")
            return np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        raise NotAnImageError(path, "not an image format Pillow knows") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise NotAnImageError(path, str(exc) or type(exc).__name__) from None


def output_names(paths):
    """{path: picture file name} (see the module docstring)."""
    stems = collections.Counter(os.path.splitext(os.path.basename(p))[0] for p in paths)
    basenames = collections.Counter(os.path.basename(p) for p in paths)
    names, taken = {}, set()
    for position, path in enumerate(paths, 1):
        basename = os.path.basename(path)
        stem = os.path.splitext(basename)[0]
        name = stem if stems[stem] == 1 else basename
        if basenames[basename] > 1 and name in taken:
            name = f"{basename}-{position}"
        taken.add(name)
        names[path] = name + ".png"
    return names


def image_ids(paths, known_ids):
    """{path: image id}; `known_ids` {file name: id} from a COCO annotation file."""
    offset = max(known_ids.values(), default=0)
    return {
        path: known_ids.get(os.path.basename(path), offset + position)
        for position, path in enumerate(paths, 1)
    }


def run_inference(
    predictor,
    paths,
    output_dir,
    label_map,
    *,
    batch_size=1,
    min_score_threshold=0.3,
    max_boxes_to_draw=20,
    strict=False,
    progress=print,
):
    """Writes the pictures and detections.json of `paths` (see the module docstring).

    Args:
      predictor: a `predictors.Predictor`.
      paths: image files.
      output_dir: where the outputs go (created if missing).
      label_map: a `label_map.LabelMap`.
      batch_size: images per model call.
      strict: raise NotAnImageError on the first file that does not decode.
      progress: called with a progress line (images, images/s) every PROGRESS_SECONDS.

    Returns:
      A Summary.
    """
    os.makedirs(output_dir, exist_ok=True)
    ids = image_ids(paths, label_map.image_ids)
    names = output_names(paths)
    results, skipped = {}, []
    start = last_report = time.time()
    model_seconds = 0.0
    pending = collections.OrderedDict()  # batch key -> [(path, image)]
    # Images whose results and picture are being made: (path, future of its results).
    finishing = collections.deque()

    def finish(predictions, b, path, image):
        detections = coco_evaluator.convert_detections(
            predictions, b, ids[path], include_mask=predictor.include_mask
        )
        drawn = visualize.select_detections(detections, min_score_threshold, max_boxes_to_draw)
        picture = visualize.draw_image(image, drawn, label_map.names)
        # The fastest zlib level: a fifth of the time of the default for files about a
        # third larger.
        picture.save(os.path.join(output_dir, names[path]), compress_level=1)
        return detections

    def collect(keep):
        while len(finishing) > keep:
            path, future = finishing.popleft()
            results[path] = future.result()

    def run(key, finisher):
        nonlocal model_seconds
        batch = pending.pop(key)
        began = time.time()
        predictions = predictor.predict([image for _, image in batch])
        model_seconds += time.time() - began
        predictions["image_info"] = np.array(
            [[image.shape[:2], image.shape[:2], [1, 1], [0, 0]] for _, image in batch],
            np.float32,
        )
        for b, (path, image) in enumerate(batch):
            finishing.append((path, finisher.submit(finish, predictions, b, path, image)))
        # Pictures are drawn and written while the model runs the next batch (both
        # release the interpreter lock), a batch behind at most.
        collect(len(batch))

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as finisher:
        for path in paths:
            try:
                image = read_image(path, predictor.decode_jpeg)
            except NotAnImageError as exc:
                if strict:
                    raise
                skipped.append((path, exc.reason))
                continue
            key = image.shape if predictor.same_size_batches else None
            pending.setdefault(key, []).append((path, image))
            if len(pending[key]) == batch_size:
                run(key, finisher)
            elif sum(len(group) for group in pending.values()) >= _PENDING_BATCHES * batch_size:
                run(max(pending, key=lambda k: len(pending[k])), finisher)
            if time.time() - last_report >= PROGRESS_SECONDS:
                last_report = time.time()
                progress(_progress_line(len(results), len(paths), last_report - start))
        while pending:
            run(next(iter(pending)), finisher)
        collect(0)
    seconds = time.time() - start
    detections = [d for path in paths for d in results.get(path, ())]
    write_atomically(os.path.join(output_dir, DETECTIONS_FILE), json.dumps(detections))
    return Summary(len(results), len(detections), skipped, seconds, model_seconds)


def _progress_line(done, total, seconds):
    return f"inference: {done}/{total} images, {done / max(seconds, 1e-9):.1f} images/s"
