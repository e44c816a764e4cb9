"""Errors the services raise for a request they cannot honour; the API answers them with 422."""

from __future__ import annotations


class InvalidRequestError(ValueError):
    """A parameter or body the service cannot honour (unknown genre, a model that cannot
    recommend, an image of the wrong shape): ``{"detail": message}`` with status 422."""
