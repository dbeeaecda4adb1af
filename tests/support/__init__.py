"""Test helpers, one module per concern: import each from the module that defines it."""
