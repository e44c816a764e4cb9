"""Service logic behind the routes: model registry, recommendations, retrain jobs, metrics."""
