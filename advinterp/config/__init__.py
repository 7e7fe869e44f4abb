"""Typed configuration: one module per method, one frozen model per ``params.yaml`` section.

Import the module you need (``advinterp.config.lan``); this package imports nothing, so a
stage depends only on the config modules it reads. See :mod:`advinterp.config.core`.
"""
