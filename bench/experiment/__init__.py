"""Experiments as data (``spec``), read from a user's TOML file (``toml_file``), turned into jobs (``graph``)."""
