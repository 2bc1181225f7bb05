"""The language cues the offline rules read: one module per language.

Every English word list and pattern that a rule matches lives in ``en``, so the rules
themselves hold no words, and another language could one day be a second module with
the same names.
"""

from . import en

__all__ = ["en"]
