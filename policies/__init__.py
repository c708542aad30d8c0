"""Arbiter's policy language: model, CEL compiler, decision engine. Pure: no I/O, no clock."""
