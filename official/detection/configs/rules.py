"""Cross-field rules: conditions between keys, written as Python callables with messages.

A rule that fails makes `load_config` raise one ConfigError listing every
failed rule, with each key's value and where it came from. A rule marked
`warn=True` describes a legal but suspicious setting and is only logged.
"""

import logging

from official.detection.configs.errors import ConfigError, show, where

LOGGER = logging.getLogger("official.detection.configs")

# Feature levels each backbone produces (stride 2**level).
BACKBONE_LEVELS = {"resnet": (2, 5), "spinenet": (3, 7)}


class Rule:
    """A consistency condition between keys.

    Args:
      paths: dotted keys whose values `check` receives, in this order.
      check: fn(*values) -> bool, True when the values are consistent.
      message: what must hold, in words; a str or fn(*values) -> str.
      warn: only log a warning when `check` fails.
    """

    def __init__(self, paths, check, message, *, warn=False):
        self.paths = tuple(paths)
        self.check = check
        self.message = message
        self.warn = warn

    def violation(self, config):
        """None if `config` satisfies the rule, else the text describing the failure."""
        values = [config.lookup(path) for path in self.paths]
        if self.check(*values):
            return None
        text = self.message(*values) if callable(self.message) else self.message
        settings = ", ".join(
            f"{path} = {show(value)}{where(config.source_of(path))}"
            for path, value in zip(self.paths, values)
        )
        return f"{text} [{settings}]"


def validate(config, rules):
    """Checks every rule; logs warnings and raises one ConfigError for all failures."""
    problems = []
    failed_paths = []
    for rule in rules:
        text = rule.violation(config)
        if text is None:
            continue
        if rule.warn:
            LOGGER.warning("Config warning: %s", text)
        else:
            problems.append(text)
            failed_paths.append(rule.paths[0])
    if len(problems) == 1:
        raise ConfigError(f"Inconsistent config: {problems[0]}", path=failed_paths[0])
    if problems:
        raise ConfigError(
            f"Inconsistent config ({len(problems)} problems):\n"
            + "\n".join(f"  - {text}" for text in problems),
            path=failed_paths[0],
        )


def _levels_fit(backbone, multilevel_features, min_level, max_level):
    low, high = BACKBONE_LEVELS[backbone]
    if backbone == "resnet" and multilevel_features == "fpn":
        # FPN builds the levels above ResNet's top with stride-2 convs (p6, p7).
        return low <= min_level <= high
    return low <= min_level and max_level <= high


def _levels_message(backbone, multilevel_features, min_level, max_level):
    low, high = BACKBONE_LEVELS[backbone]
    if backbone == "resnet" and multilevel_features == "fpn":
        return (
            f"FPN starts from a ResNet output, so architecture.min_level must be in {low}..{high}"
        )
    if backbone == "resnet":
        return (
            f"ResNet gives levels {low}..{high} and multilevel_features 'identity' adds none, so "
            f"min_level..max_level must lie within {low}..{high} (use 'fpn' for higher levels)"
        )
    return f"SpineNet gives levels {low}..{high}, so min_level..max_level must lie within them"


LEVEL_RULES = [
    Rule(
        ("architecture.min_level", "architecture.max_level"),
        lambda low, high: low <= high,
        "architecture.min_level must not exceed architecture.max_level",
    ),
    Rule(
        (
            "architecture.backbone",
            "architecture.multilevel_features",
            "architecture.min_level",
            "architecture.max_level",
        ),
        _levels_fit,
        _levels_message,
    ),
]

SCHEDULE_RULES = [
    Rule(
        (
            "train.learning_rate.type",
            "train.learning_rate.learning_rate_levels",
            "train.learning_rate.learning_rate_steps",
        ),
        lambda kind, levels, steps: kind != "step" or len(levels) == len(steps),
        "the step schedule switches to learning_rate_levels[i] at learning_rate_steps[i], "
        "so both lists need the same length",
    ),
    Rule(
        ("train.learning_rate.type", "train.learning_rate.learning_rate_steps"),
        lambda kind, steps: kind != "step" or all(a < b for a, b in zip(steps, steps[1:])),
        "learning_rate_steps must be strictly increasing",
    ),
    Rule(
        ("train.learning_rate.warmup_steps", "train.total_steps"),
        lambda warmup_steps, total_steps: warmup_steps <= total_steps,
        "training stops before the learning-rate warm-up ends",
        warn=True,
    ),
    Rule(
        ("train.frozen_variable_prefix", "train.checkpoint.path"),
        lambda frozen, path: not frozen or bool(path),
        "train.frozen_variable_prefix freezes variables but train.checkpoint.path is empty, "
        "so the frozen variables keep their random initial values (unless model_dir already "
        "holds a checkpoint to resume from)",
        warn=True,
    ),
]


def anchors_per_location_rule(head):
    """The ancestor's deprecated `<head>.anchors_per_location`: null or the derived count."""
    return Rule(
        (f"{head}.anchors_per_location", "anchor.num_scales", "anchor.aspect_ratios"),
        lambda count, scales, ratios: count is None or count == scales * len(ratios),
        f"{head}.anchors_per_location is derived as anchor.num_scales * "
        "len(anchor.aspect_ratios); leave it null or set it to that product",
    )


def parser_rules(parser, match_key, unmatched_key):
    """Threshold order and scale-jitter range of a parser section."""
    return [
        Rule(
            (f"{parser}.{unmatched_key}", f"{parser}.{match_key}"),
            lambda unmatched, matched: unmatched <= matched,
            f"{parser}.{unmatched_key} must not exceed {parser}.{match_key}",
        ),
        Rule(
            (f"{parser}.aug_scale_min", f"{parser}.aug_scale_max"),
            lambda low, high: low <= high,
            f"{parser}.aug_scale_min must not exceed {parser}.aug_scale_max",
        ),
    ]
