"""Use cases, split by what they change, behind the one `Services` facade the adapters use.

- `unit.py`: the unit of work (`Services.change`), who may change a pilot, `Outcome`
- `pilots.py`: register a pilot; its owner, go-live, check-in cadence and escalation channel
- `metrics.py`: baselines and measurements
- `evals.py`: the acceptance bar and eval runs (and the alerts a run raises)
- `path.py`: the production-path checklist
- `checkin_answer.py`: the weekly check-in's form and its answer
- `reads.py`: reports, the portfolio, history and the audit log
- `lifecycle.py`: ship (through the gate), pause, resume, retire
- `corrections.py`: void the latest eval, measurement or baseline

Every write is `with self.change(actor, slug, action) as uow:` followed by its own rules.
"""

from __future__ import annotations

from bot.services.checkin_answer import CheckinAnswers
from bot.services.corrections import Corrections
from bot.services.evals import EvalChanges, add_eval
from bot.services.lifecycle import LifecycleChanges
from bot.services.metrics import MetricChanges
from bot.services.path import PathChanges
from bot.services.pilots import PilotChanges
from bot.services.reads import Reads
from bot.services.unit import Outcome, UnitOfWork, find_pilot, mention_platform, snapshot

__all__ = ["Outcome", "Services", "UnitOfWork", "add_eval", "find_pilot", "mention_platform", "snapshot"]


class Services(
    PilotChanges, MetricChanges, EvalChanges, PathChanges, CheckinAnswers, Reads, LifecycleChanges, Corrections
):
    """Every use case of the core; built once per process by bot.core.build_core."""
