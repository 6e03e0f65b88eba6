"""Models for the rotate_keys tests and benchmark (app label ``rotapp``)."""
