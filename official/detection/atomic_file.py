"""Writing a file so that a reader sees the old file or the whole new one, never a part.

Every file this project writes for another process or a later run to read
(params.yaml, evaluation results, training summaries, generated datasets) goes
through `write_atomically`. Imports no TensorFlow.
"""

import binascii
import os


def write_atomically(path, data):
    """Writes `data` (bytes, or str as UTF-8) to `path`; returns `path`.

    The data goes to a hidden temporary file in the directory of `path` (a rename
    within one file system is atomic, across file systems it is a copy), is flushed
    and synced to disk, and the file is renamed to `path`, replacing what was there.
    On any failure the temporary file is removed and `path` keeps its old content.
    The directory is created if missing; the file gets the usual mode (0666 less the
    umask).
    """
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    suffix = binascii.hexlify(os.urandom(4)).decode("ascii")
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.{suffix}.tmp")
    try:
        with open(temporary, "xb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path
