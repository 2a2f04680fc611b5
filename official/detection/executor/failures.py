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
