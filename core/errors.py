"""The project's error type: a message meant for the person using the app or the CLI."""


class StudioError(ValueError):
    """Bad input or an impossible request, with a message that names the input, the value and the fix.

    Pages show it with one ``st.error``; the command line prints it on one line and exits non-zero.
    """
