"""Configuration: declared defaults per model, strict loading, params.yaml.

- factory.config_generator(model): validated defaults of 'retinanet', 'mask_rcnn'
  or 'faster_rcnn'.
- loader.load_config(model, config_file, params_override, forced) and
  loader.write_config(config, model_dir); loader.ConfigError.
- base_config, detection_config, retinanet_config, maskrcnn_config: the keys,
  each declared once with its default and a one-line doc.
- schema (Field, Section), rules (cross-field Rule), config (the read-only Config).

This package does not import TensorFlow.
"""
