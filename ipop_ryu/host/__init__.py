"""The site host, below both cli/ and lab/: OVS's tools (ovsctl) and the site's files (site).

CommandError lives here because the host helpers raise it; the CLI prints it as one line.
"""


class CommandError(Exception):
    """An operator-facing error: printed as one line, exit status 2 (or .status)."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status
