"""Pydantic request and response bodies (``XBase`` / ``XCreate`` / ``XPublic``), with examples."""
