"""Runs exported SavedModels and frozen graphs in a fresh process, as a user would.

    python -m official.detection.testing.saved_models JOBS.pkl RESULTS.pkl

JOBS.pkl holds a list of jobs, each `{'export_dir': ..., 'feeds': [input, ...]}`, a
SavedModel loaded (tag `serve`) and its `serving_default` signature run once per input
(the value of its one input tensor), or `{'graph_file': ..., 'input_name': ...,
'output_names': [...], 'feeds': [...]}`, a frozen graph imported with
`import_graph_def` and its named output nodes run once per input. RESULTS.pkl gets,
per job, `{'outputs': [dict of output name -> NumPy array, ...], 'input_dtype',
'input_shape', 'load_seconds', 'first_run_seconds'}`. Pickle is for this test helper
only: both files are written by the test itself.
"""

import os
import pickle
import subprocess
import sys
import time

import tensorflow.compat.v1 as tf


def save_initialised_checkpoint(params, model_dir):
    """The PREDICT graph's variables and a global step, initialised (random weights),
    saved as model_dir/model.ckpt-0; returns its prefix."""
    from official.detection.dataloader import factory as dataloader_factory
    from official.detection.dataloader import mode_keys
    from official.detection.export import saved_model
    from official.detection.modeling import factory as modeling_factory

    with tf.Graph().as_default():
        tf.set_random_seed(0)  # the same weights, so the same detections, every run
        tf.train.get_or_create_global_step()
        parser = dataloader_factory.parser_generator(params, mode_keys.PREDICT)
        images = tf.zeros([1] + parser.padded_size + [3])
        info = tf.constant([[[64.0, 64.0], [64.0, 64.0], [1.0, 1.0], [0.0, 0.0]]])
        saved_model.build_serving_outputs(
            modeling_factory.build_model(params), parser.anchor_boxes, images, info
        )
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return tf.train.Saver().save(sess, os.path.join(model_dir, "model.ckpt"), global_step=0)


def run_saved_model(export_dir, feeds):
    """Loads `export_dir` in a new graph and runs its signature on each of `feeds`."""
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        start = time.time()
        meta_graph = tf.saved_model.loader.load(
            sess, [tf.saved_model.tag_constants.SERVING], export_dir
        )
        load_seconds = time.time() - start
        signature = meta_graph.signature_def["serving_default"]
        (input_info,) = signature.inputs.values()
        fetches = {name: info.name for name, info in signature.outputs.items()}
        result = _run_feeds(sess, fetches, input_info.name, feeds)
    result["input_dtype"] = tf.as_dtype(input_info.dtype).name
    result["input_shape"] = [d.size for d in input_info.tensor_shape.dim]
    result["load_seconds"] = load_seconds
    return result


def run_frozen_graph(graph_file, input_name, output_names, feeds):
    """Imports the GraphDef of `graph_file` in a new graph and runs its `output_names`
    nodes on each of `feeds`, fed to the `input_name` node."""
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        start = time.time()
        graph_def = tf.GraphDef()
        with tf.io.gfile.GFile(graph_file, "rb") as f:
            graph_def.ParseFromString(f.read())
        tf.import_graph_def(graph_def, name="")
        load_seconds = time.time() - start
        placeholder = graph.get_tensor_by_name(f"{input_name}:0")
        fetches = {name: f"{name}:0" for name in output_names}
        result = _run_feeds(sess, fetches, placeholder.name, feeds)
    result["input_dtype"] = placeholder.dtype.name
    result["input_shape"] = placeholder.shape.as_list()
    result["load_seconds"] = load_seconds
    return result


def _run_feeds(sess, fetches, input_tensor, feeds):
    start = time.time()
    outputs = [sess.run(fetches, {input_tensor: feeds[0]})]
    first_run_seconds = time.time() - start
    outputs.extend(sess.run(fetches, {input_tensor: feed}) for feed in feeds[1:])
    return {"outputs": outputs, "first_run_seconds": first_run_seconds}


def run_in_fresh_process(jobs, work_dir, python=sys.executable, timeout=600):
    """`run_saved_model` of each job in one child process; returns the list of results."""
    jobs_path, results_path = f"{work_dir}/jobs.pkl", f"{work_dir}/results.pkl"
    with open(jobs_path, "wb") as f:
        pickle.dump(jobs, f)
    result = subprocess.run(
        [python, "-m", __name__, jobs_path, results_path],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"serving process failed:\n{result.stderr[-4000:]}")
    with open(results_path, "rb") as f:
        return pickle.load(f)


def main(jobs_path, results_path):
    with open(jobs_path, "rb") as f:
        jobs = pickle.load(f)
    results = [
        run_frozen_graph(**job) if "graph_file" in job else run_saved_model(**job) for job in jobs
    ]
    with open(results_path, "wb") as f:
        pickle.dump(results, f, protocol=2)


if __name__ == "__main__":
    main(*sys.argv[1:])
