"""Reading failure messages. Imports no TensorFlow, so main.py can report any failure,
one where TensorFlow itself does not import included."""


def error_headline(message):
    """The line of an error message that says what went wrong.

    TensorFlow's op errors put it before their `[[node ...]]` lines, after a "Graph
    execution error:" line on 2.x.
    """
    lines = [line.strip() for line in message.strip().splitlines()]
    nodes = [i for i, line in enumerate(lines) if line.startswith("[[")]
    meaningful = [
        line for line in lines[: nodes[0] if nodes else None]
        if line and line != "Graph execution error:"
    ]  # fmt: skip
    if not meaningful:
        return lines[0] if lines else ""
    return meaningful[-1] if nodes else meaningful[0]


def unexpected_failure(exc, report):
    """The one line for a failure no handler foresaw: its type, its headline and advice.

    `report` says what to send with a report (e.g. "the command and params.yaml").
    """
    return (
        f"{type(exc).__name__}: {error_headline(str(exc))} (unexpected failure); run again "
        f"with --verbose for the traceback, and report it with {report} if the message does "
        "not say what to change"
    )


def run_command(run, argv, *, verbose, report):
    """`run(argv)` of a command-line script, whose failures end in one line.

    `run` returns the exit code and reports the errors a user can cause itself (with
    `fail`); any other exception becomes an `unexpected_failure` line. `verbose()` tells
    whether to print tracebacks (read after the flags are parsed).
    """
    try:
        return run(argv)
    except Exception as exc:  # The last resort: one line, not a traceback.
        return fail(unexpected_failure(exc, report), verbose())


def fail(exc, verbose):
    """Prints `error: <exc>` to stderr and returns the exit code 1; the traceback of the
    exception being handled goes to the debug log, and with `verbose` to stderr first."""
    import sys
    import traceback

    from absl import logging

    details = traceback.format_exc()
    logging.debug("%s", details)
    if verbose:
        print(details, file=sys.stderr, end="")
    print(f"error: {exc}", file=sys.stderr)
    return 1
