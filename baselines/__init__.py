"""Baseline registration methods: plug-ins, one public module per method.

Each public module ``baselines/foo.py`` defines a :class:`pcreg.methods.base.Method`
subclass with ``name = "foo"``; :mod:`pcreg.methods.registry` finds it by name.
Modules starting with ``_`` are private helpers (networks, losses) of these methods.
Baselines may import the pcreg core; the core never imports them directly.
"""
