"""The one error type the data layer raises for bad input: its message is shown as is."""


class DataError(ValueError):
    """Bad or missing data: a malformed file, a checksum mismatch, an unknown data set."""
