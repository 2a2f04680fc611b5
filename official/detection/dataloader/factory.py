"""Maps the config to parsers and input functions; the only dataloader module that reads it.

Key names are the ancestor's: `architecture.parser`, `anchor.*`, `retinanet_parser.*`,
`maskrcnn_parser.*`, `train.train_file_pattern`, `eval.eval_samples`, ... Images are
float32 whatever `architecture.use_bfloat16` says: precision is the executor's business.
"""

from official.detection.dataloader import input_reader, maskrcnn_parser, mode_keys, retinanet_parser


def _anchor_kwargs(params):
    anchor = params.anchor
    return {
        "min_level": params.architecture.min_level,
        "max_level": params.architecture.max_level,
        "num_scales": anchor.num_scales,
        "aspect_ratios": list(anchor.aspect_ratios),
        "anchor_size": anchor.anchor_size,
    }


def _build_retinanet_parser(params, mode):
    p = params.retinanet_parser
    return retinanet_parser.Parser(
        output_size=list(p.output_size),
        match_threshold=p.match_threshold,
        unmatched_threshold=p.unmatched_threshold,
        aug_rand_hflip=p.aug_rand_hflip,
        aug_scale_min=p.aug_scale_min,
        aug_scale_max=p.aug_scale_max,
        skip_crowd_during_training=p.skip_crowd_during_training,
        max_num_instances=p.max_num_instances,
        regenerate_source_id=p.regenerate_source_id,
        mode=mode,
        box_convention=params.architecture.box_convention,
        **_anchor_kwargs(params),
    )


def _build_maskrcnn_parser(params, mode):
    p = params.maskrcnn_parser
    return maskrcnn_parser.Parser(
        output_size=list(p.output_size),
        rpn_match_threshold=p.rpn_match_threshold,
        rpn_unmatched_threshold=p.rpn_unmatched_threshold,
        rpn_batch_size_per_im=p.rpn_batch_size_per_im,
        rpn_fg_fraction=p.rpn_fg_fraction,
        aug_rand_hflip=p.aug_rand_hflip,
        aug_scale_min=p.aug_scale_min,
        aug_scale_max=p.aug_scale_max,
        skip_crowd_during_training=p.skip_crowd_during_training,
        max_num_instances=p.max_num_instances,
        include_mask=params.architecture.include_mask,
        mask_crop_size=p.mask_crop_size,
        regenerate_source_id=p.regenerate_source_id,
        mode=mode,
        box_convention=params.architecture.box_convention,
        **_anchor_kwargs(params),
    )


PARSERS = {
    "retinanet_parser": _build_retinanet_parser,
    "maskrcnn_parser": _build_maskrcnn_parser,
}


def parser_name(params):
    """`architecture.parser`, checked against `PARSERS`."""
    name = params.architecture.parser
    if name not in PARSERS:
        raise ValueError(
            f"architecture.parser: unknown parser {name!r}; allowed: {sorted(PARSERS)}"
        )
    return name


def parser_generator(params, mode):
    """The parser the config describes, for `mode` (see `mode_keys`)."""
    mode = mode_keys.canonical_mode(mode, "parser_generator")
    return PARSERS[parser_name(params)](params, mode)


def input_fn_generator(params, mode, **input_fn_kwargs):
    """An `input_reader.InputFn` over the train or eval files of the config.

    Training reads `train.train_file_pattern` in batches of `train.train_batch_size`;
    other modes read `eval.eval_file_pattern` in batches of `eval.eval_batch_size`, at
    most `eval.eval_samples` examples. `input_fn_kwargs` go to `InputFn` (e.g. shard,
    eval_batch_mode, num_threads).
    """
    mode = mode_keys.canonical_mode(mode, "input_fn_generator")
    if mode == mode_keys.TRAIN:
        file_pattern = params.train.train_file_pattern
        batch_size = params.train.train_batch_size
        key = "train.train_file_pattern"
    else:
        file_pattern = params.eval.eval_file_pattern
        batch_size = params.eval.eval_batch_size
        key = "eval.eval_file_pattern"
        input_fn_kwargs.setdefault("num_examples", params.eval.eval_samples or -1)
    if not file_pattern:
        raise input_reader.NoMatchingFilesError(f"{key} is empty; set it to the TFRecord files")
    return input_reader.InputFn(
        file_pattern, parser_generator(params, mode), mode, batch_size, **input_fn_kwargs
    )
