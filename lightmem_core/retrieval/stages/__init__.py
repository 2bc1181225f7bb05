"""The read path's named stages, and the one registry that builds them from the config.

``retrieval.stages`` names the stages that run (all by default); each can be switched
off on its own, and ``retrieval.stage_settings`` gives one its typed settings.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from pydantic import ValidationError

from .base import BoostStage, HitStage, ReadState, Sources, Stage
from .boosts import Hierarchical, PeriodBoost, SpeakerBoost
from .current_state import CurrentStateFirst, CurrentStateSettings, current_state_first, rules_for
from .hydrate import Hydrate
from .neighbours import Neighbours
from .recency import Recency
from .sentence import PREFERENCES, ClosestSentence, SentencePreference, asks_only, choose_sentences, names_in
from .window import SentenceWindow, window_ids, with_windows

# In the order they run.
STAGES: tuple[type[Stage], ...] = (
    PeriodBoost,
    Hierarchical,
    SpeakerBoost,
    Neighbours,
    Recency,
    Hydrate,
    *PREFERENCES,
    ClosestSentence,
    CurrentStateFirst,
    SentenceWindow,
)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
_BY_NAME = {s.name: s for s in STAGES}


def check_stage_names(names: Sequence[str]) -> None:
    """Refuse unknown stage names when the config is made, not at the first query."""
    for i, name in enumerate(names):
        if name not in _BY_NAME:
            raise ValueError(f"[{i}]: unknown stage {name!r}; expected one of {list(STAGE_NAMES)}")


def check_stage_settings(settings: Mapping[str, Mapping[str, Any]]) -> None:
    for name, values in settings.items():
        if name not in _BY_NAME:
            raise ValueError(f"{name}: unknown stage; expected one of {list(STAGE_NAMES)}")
        try:
            _BY_NAME[name].Settings.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"{name}.{where}: {err['msg']}") from None


def build(names: Sequence[str], settings: Mapping[str, Mapping[str, Any]]) -> list[Stage]:
    """The enabled stages, in run order, each with its settings."""
    wanted = set(names)
    built: list[Stage] = []
    preferences: list[SentencePreference] = []
    for cls in STAGES:
        if cls.name not in wanted:
            continue
        stage: Stage
        if cls is ClosestSentence:
            stage = ClosestSentence(preferences=preferences)
        else:
            stage = cls(cls.Settings.model_validate(settings.get(cls.name, {})))
        if isinstance(stage, SentencePreference):
            preferences.append(stage)
        else:
            built.append(stage)
    return built


__all__ = [
    "STAGES",
    "STAGE_NAMES",
    "BoostStage",
    "ClosestSentence",
    "CurrentStateFirst",
    "CurrentStateSettings",
    "Hierarchical",
    "HitStage",
    "Hydrate",
    "Neighbours",
    "PeriodBoost",
    "ReadState",
    "Recency",
    "SentencePreference",
    "SentenceWindow",
    "Sources",
    "SpeakerBoost",
    "Stage",
    "asks_only",
    "build",
    "check_stage_names",
    "choose_sentences",
    "check_stage_settings",
    "current_state_first",
    "names_in",
    "rules_for",
    "window_ids",
    "with_windows",
]
