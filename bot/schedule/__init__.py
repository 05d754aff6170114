"""Scheduled work (SPEC §5): weekly check-ins, reminders, missed-review escalations, eval alerts,
no-owner and owner-unreachable notes, the weekly digest. The database is the source of truth; each
tick (adapters/scheduling.py) runs the pipeline once:

    plan  ->  claim  ->  send  ->  mark

- plan (plan.py): create every row that is due under a unique key (a `CheckIn` per pilot and
  period, an `Escalation` outbox row per dedupe key), with ON CONFLICT DO NOTHING; eval alerts are
  planned when an eval run is recorded (alerts.py decides whether it warrants one). Rows hold facts
  and destination keys (`slack:user:U1`, bot.ports.Destination), never a sentence. Idempotent:
  every tick on every replica may plan.
- claim (deliver.py, storage/outbox.py): a conditional UPDATE sets `claimed_at`; only the ids it
  returns belong to this process, so two replicas never both win a row.
- send (deliver.py): word the message now (compose.py reads the facts, messages.py words them) and
  hand it to the platform's `bot.ports.Notifier` (one `send(dest, reply, in_reply_to)`); cadence.py
  says when a weekly moment falls, reach.py where a Teams user can be reached.
- mark: `sent_at` and the platform's `MessageRef`, in a group commit; a failed send releases the
  claim with backoff and becomes *undeliverable* after `outbox.MAX_ATTEMPTS` (operator.py shows it).

The crash window: a process that dies after the platform accepted a message and before its mark
committed leaves a claimed, unmarked row; after the lease another tick sends it again. That window
is milliseconds wide and is closed after the fact for Slack check-ins (the DM history is asked
first); storage/outbox.py explains it and its measured size.

Modules: plan.py (what is due), alerts.py (when an eval run warrants an alert), reopened.py (a
production pilot's gap that reopened, from the stored scorecard's transitions), deliver.py
(claim -> send -> mark), compose.py (row -> message at send time), messages.py (all wording of
scheduled messages), cadence.py (weekly moments, DST-correct), reach.py (stored conversation
references), channels.py (escalation channels that refuse posts: one DM per episode, the `status`
line), operator.py (`pilotbot schedule` and the undeliverable warning under `status`), verdicts.py
(each check-in counted missed or answered on time once, for /metrics).
"""
