"""Callback and map steps of the data path: the Dash app, its pages and components."""
