"""The REST API: dependencies (``deps``), the versioned router (``main``) and route modules."""
