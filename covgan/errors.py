"""The one exception type that the command line turns into a one-line message."""


class CovganError(Exception):
    """Bad input or a failed precondition a user can fix (missing file, wrong shape...).

    The CLI prints `Error: <message>` and exits non-zero; library callers catch it
    like any other exception. Messages say what was received.
    """
