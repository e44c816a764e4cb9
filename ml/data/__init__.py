"""Data sets: MovieLens ratings, digits images, id vocabularies and the protocol's splits."""
