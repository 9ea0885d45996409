"""Callback step's pages: each a folder of ids, layout, callbacks and pure view builders."""
