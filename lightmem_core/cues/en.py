"""English cues: the words and patterns the offline rules match.

Grouped by the question each group answers; a rule imports the group it needs by name.
"""

from __future__ import annotations

import re

# --- who is asking about whom --------------------------------------------------------------
# "the user" / "the assistant": in a user's own memory the role names nobody in particular
ROLE_WORDS = re.compile(r"\bthe\s+(user|assistant)(?:'s)?\b", re.I)
# a capitalised word that may name a speaker ("What did Caroline paint?")
CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?:[-'][A-Za-z]+)?\b")
# questions whose answer is a name: who / where, "which city", "what company", "the name of";
# "what kind of", "what does" ask for something else
NAME_QUESTION = re.compile(
    r"^\W*(who|whom|whose|where)\b|\bname\b|\b(which|what)\s+(?!(kind|kinds|type|types|sort|sorts|"
    r"does|do|did|is|are|was|were|has|have|had|can|could|will|would|should)\b)[a-z]+",
    re.I,
)
# "should I", "can I": the asker as the subject of the question itself
INVERTED_FIRST_PERSON = re.compile(r"\b(should|shall|can|could|do|did|would|will|am|may|might|must)\s+I\b", re.I)
FIRST_PERSON = re.compile(r"\b(I|I'm|I've|I'd|I'll|my|we|we're|we've|our)\b", re.I)

# --- present and past states ---------------------------------------------------------------
# a sentence reporting that a state has ended ("I'm no longer in London" only explains)
ENDED = re.compile(
    r"\b(no longer|not any ?more|moved out|broke up|split up|stopped|quit|gave up|"
    r"used to|ended|former(ly)?)\b",
    re.I,
)
# a sentence stating the present state; "for now" is a stopgap, not a state
SAID_NOW = re.compile(r"\b(?<!for )(now|these days|nowadays|currently|at the moment)\b", re.I)
