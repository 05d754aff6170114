"""The one command grammar of SPEC §4: text -> typed Command. Pure; shared by every surface."""

from __future__ import annotations

import calendar
import difflib
import re
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot import limits
from bot.errors import UserError
from bot.gaps import PATH_ITEMS

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
METRIC_RE = re.compile(r"[a-z0-9_]{1,64}")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# One length rule per text field: the column lengths of storage/models.py (bot/limits.py).
MAX_NAME = limits.limit("pilot", "name")
MAX_NOTE = limits.limit("path_item", "note")
MAX_VERSION = limits.limit("eval_run", "version")
MAX_UNIT = limits.limit("metric", "unit")


@dataclass(frozen=True)
class UserRef:
    """A user as the command named them: a platform id, or a bare console name."""

    id: str
    name: str | None = None
    bare: bool = False  # typed as plain `@name`: an id only on the console


@dataclass(frozen=True)
class ChannelRef:
    id: str
    name: str | None = None
    bare: bool = False  # typed as plain `#name`: an id only on the console


@dataclass(frozen=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True)
class New:
    slug: str
    name: str | None


@dataclass(frozen=True)
class Status:
    slug: str | None
    filter: str | None = None  # the portfolio's filter (PORTFOLIO_FILTERS), when slug is None
    page: int = 1


PORTFOLIO_FILTERS = ("at-risk", "ready", "mine", "production", "retired")


@dataclass(frozen=True)
class SetOwner:
    slug: str
    user: UserRef


@dataclass(frozen=True)
class GoLive:
    slug: str
    day: date


@dataclass(frozen=True)
class Baseline:
    slug: str
    metric: str
    value: float
    unit: str | None
    direction: str | None
    at: date | None


@dataclass(frozen=True)
class Measure:
    slug: str
    metric: str
    value: float
    unit: str | None


@dataclass(frozen=True)
class Threshold:
    slug: str
    pct: float
    min_cases: int | None
    drop_alert: float | None
    read_as_fraction: bool = False
    kill_below: float | None = None  # an eval run below it turns the flag off (SPEC §9)


@dataclass(frozen=True)
class Eval:
    slug: str
    score: float
    cases: int
    version: str | None
    read_as_fraction: bool = False


@dataclass(frozen=True)
class Path:
    slug: str
    item: str
    state: str
    note: str | None


@dataclass(frozen=True)
class CheckinCadence:
    slug: str
    weekday: int
    time: str
    tz: str | None


@dataclass(frozen=True)
class Escalate:
    slug: str
    channel: ChannelRef


@dataclass(frozen=True)
class History:
    slug: str


@dataclass(frozen=True)
class Audit:
    slug: str


@dataclass(frozen=True)
class Cases:
    slug: str


@dataclass(frozen=True)
class Answer:
    """The weekly check-in in one line (SPEC §8): the same answer as the Slack modal and Teams card."""

    slug: str
    values: tuple[tuple[str, str], ...]  # (metric key, value as typed): the form's parser reads them
    eval_score: str | None
    note: str | None


@dataclass(frozen=True)
class Kill:
    slug: str
    reason: str


@dataclass(frozen=True)
class Restore:
    slug: str


# ---- the lifecycle and corrections (SPEC §8) ----


@dataclass(frozen=True)
class Ship:
    slug: str
    override: str | None = None  # the reason text when the command said `override` ("" if none given)


@dataclass(frozen=True)
class Pause:
    slug: str
    reason: str | None = None


@dataclass(frozen=True)
class Resume:
    slug: str


@dataclass(frozen=True)
class Retire:
    slug: str
    reason: str | None = None


@dataclass(frozen=True)
class Void:
    slug: str
    what: str  # "eval" | "measure" | "baseline"
    metric: str | None = None
    reason: str | None = None


Command = (
    Help
    | New
    | Status
    | SetOwner
    | GoLive
    | Baseline
    | Measure
    | Threshold
    | Eval
    | Path
    | CheckinCadence
    | Escalate
    | History
    | Audit
    | Cases
    | Answer
    | Kill
    | Restore
    | Ship
    | Pause
    | Resume
    | Retire
    | Void
)

# name, usage, example, summary — the help text and every "write it like this" come from here.
GRAMMAR: tuple[tuple[str, str, str, str], ...] = (
    ("help", "help", "help", "list commands with one example each"),
    ("new", "new <slug> [<name>]", "new support-drafts Support reply drafts", "register a pilot"),
    (
        "status",
        "status [<slug> | at-risk|ready|mine|production|retired] [page <n>]",
        "status at-risk page 2",
        "one pilot's four gaps, metrics and latest eval, or the portfolio riskiest first, filtered and paged",
    ),
    ("owner", "owner <slug> <@user>", "owner support-drafts @dana", "set the accountable owner"),
    ("golive", "golive <slug> <YYYY-MM-DD>", "golive support-drafts 2026-09-28", "the date the AI was switched on"),
    (
        "baseline",
        "baseline <slug> <metric> <value> [<unit>] [lower|higher] [at <YYYY-MM-DD>]",
        "baseline support-drafts handle_time 14 min lower at 2026-09-14",
        "the pre-pilot number that better is measured against",
    ),
    (
        "measure",
        "measure <slug> <metric> <value>",
        "measure support-drafts handle_time 9",
        "record this week's value of a metric",
    ),
    (
        "threshold",
        "threshold <slug> <pct> [min-cases <n>] [drop-alert <pts>] [kill-below <pct>]",
        "threshold legal-intake 95% min-cases 150",
        "the acceptance bar for evals",
    ),
    (
        "eval",
        "eval <slug> <pct> cases <n> [version <text>]",
        "eval legal-intake 96.2% cases 150 version prompt-v7",
        "record an eval run",
    ),
    (
        "path",
        "path <slug> <item> done|todo [<note or link>]",
        "path support-drafts rollback done https://wiki/runbook",
        "production-path checklist",
    ),
    (
        "checkin",
        "checkin <slug> <weekday> <HH:MM> [<IANA tz>]",
        "checkin support-drafts monday 09:00 Europe/Berlin",
        "when the weekly check-in is due",
    ),
    ("escalate", "escalate <slug> <#channel>", "escalate support-drafts #ai-pilots", "where escalations go"),
    ("history", "history <slug>", "history support-drafts", "eval scores and metric values over time"),
    ("audit", "audit <slug>", "audit support-drafts", "the last 20 changes, who and when"),
    (
        "cases",
        "cases <slug>",
        "cases legal-intake",
        "per-case results: flaky and always-failing cases of the last 10 labelled runs",
    ),
    (
        "answer",
        "answer <slug> <metric> <value> [<metric> <value> ...] [eval <pct>] [note <text>]",
        "answer support-drafts handle_time 9 revision_rate 21 eval 96% note all quiet",
        "the owner answers this week's check-in in one line",
    ),
    (
        "kill",
        "kill <slug> <reason>",
        "kill support-drafts drafts quote wrong refund amounts",
        "turn the pilot's AI off in production now (its kill-switch flag reads false)",
    ),
    ("restore", "restore <slug>", "restore support-drafts", "turn it back on in production"),
    (
        "ship",
        "ship <slug> [override <reason>]",
        "ship support-drafts",
        "move to production: refused while the ship gate is not met",
    ),
    ("pause", "pause <slug> [<reason>]", "pause support-drafts vendor outage", "no check-ins, reminders or alerts"),
    ("resume", "resume <slug>", "resume support-drafts", "back to the stage it had before `pause`"),
    ("retire", "retire <slug> [<reason>]", "retire support-drafts replaced", "end the pilot; its flag turns off"),
    (
        "void",
        "void <slug> eval|measure <metric>|baseline <metric> [<reason>]",
        "void support-drafts measure handle_time typo",
        "withdraw the latest record (kept, marked void)",
    ),
)
USAGE = {name: usage for name, usage, _, _ in GRAMMAR}
COMMAND_NAMES = tuple(name for name, *_ in GRAMMAR)

_TOKEN_RE = re.compile(r"<[^<>]*>|\S+")
_MENTION_RE = re.compile(r"^<@([A-Za-z0-9:._\-]+)(?:\|([^<>]*))?>$")
_CHANNEL_RE = re.compile(r"^<#([A-Za-z0-9:._@\-]+)(?:\|([^<>]*))?>$")
_BARE_NAME_RE = re.compile(r"^[@#]([A-Za-z0-9][A-Za-z0-9._\-]{0,79})$")
_NUMBER_RE = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([^\d\s].*)?$")
_TIME_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_LEADING = re.compile(r"^\s*(?:/pilot|pilot)\b\s*", re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def strip_prefix(text: str) -> str:
    """Teams and the console may send `/pilot status` or `pilot status`; Slack sends `status`."""
    return _LEADING.sub("", text, count=1).strip()


def parse(text: str) -> Command:
    text = strip_prefix(text)
    tokens = tokenize(text)
    if not tokens:
        return Help()
    name = tokens[0].lower()
    args = tokens[1:]
    parser = _PARSERS.get(name)
    if parser is None:
        raise UnknownCommand(name)
    command = parser(args, text)
    # The parsers name the field a bad character sits in; anything left (a stray NUL) is refused here.
    # Mentions are left out: their display names come from the platform and are trimmed, not refused.
    rest = re.sub(r"<[@#][^<>]*>", "", text)
    bad = limits.problem(rest, "command", len(rest))
    if bad is not None:
        raise UserError(bad)
    return command


class UnknownCommand(UserError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"I don't know the command `{name[:40]}`; here is what I understand.")


def _usage_error(name: str, message: str) -> UserError:
    return UserError(message, USAGE[name])


def escalation_to_check(text: str) -> Escalate | None:
    """The accepted `escalate <slug> <#channel>` in `text` whose channel the platform can be asked
    about (an id, not a bare `#name`); None for anything else. The adapters' reach checks share it."""
    try:
        cmd = parse(text)
    except UserError:
        return None
    return cmd if isinstance(cmd, Escalate) and not cmd.channel.bare else None


def parse_slug(token: str | None, cmd: str) -> str:
    if token is None:
        raise _usage_error(cmd, "Which pilot? Give its slug")
    slug = token.lower()
    if not SLUG_RE.fullmatch(slug):
        raise _usage_error(
            cmd,
            f"`{token[:60]}` is not a valid slug (2–40 of a-z, 0-9 and -, starting with a letter or digit)",
        )
    return slug


def parse_metric(token: str | None, cmd: str) -> str:
    if token is None:
        raise _usage_error(cmd, "Which metric? Give its key")
    key = token.lower()
    if not METRIC_RE.fullmatch(key):
        raise _usage_error(cmd, f"`{token[:60]}` is not a valid metric key (a-z, 0-9 and _)")
    return key


# A number as it arrives: a token of the chat grammar, or a number the REST API read from JSON.
Number = str | int | float


def parse_value(token: Number | None, cmd: str, what: str = "value") -> tuple[float, str | None]:
    """`14`, `14min`, `38%`, `$1200` -> (number, attached unit or None); a JSON number has no unit.

    The one number reader: the grammar and the REST API (adapters/api/payloads.py) both call it,
    so the same values are accepted and refused on every surface.
    """
    if token is None:
        raise _usage_error(cmd, f"The {what} is missing")
    if not isinstance(token, str):
        try:
            return _in_range(float(token), str(token), cmd), None
        except OverflowError:
            raise _usage_error(cmd, f"`{str(token)[:60]}` is out of range") from None
    raw = token
    unit_prefix = None
    if raw.startswith("$"):
        unit_prefix, raw = "$", raw[1:]
    raw = _thousands(raw, token, cmd)
    m = _NUMBER_RE.match(raw)
    if not m:
        raise _usage_error(cmd, f"`{token[:60]}` is not a number")
    value = _in_range(float(m.group(1)), token, cmd)
    unit = m.group(2) or unit_prefix
    if unit is not None and re.fullmatch(r"[eE][+-]?\d+", unit):
        raise _usage_error(cmd, f"`{token[:60]}` is not a number I accept; write it out in full")
    if unit is not None and not re.fullmatch(r"[^\s<>@#`]+", unit):
        raise _usage_error(cmd, f"`{token[:60]}` is not a number")
    if unit is not None and len(unit) > MAX_UNIT:
        raise _usage_error(cmd, f"The unit `{unit[:40]}…` is too long ({MAX_UNIT} characters at most)")
    if unit is not None:
        limits.text(unit, "metric", "unit")
    return value, unit


_GROUPED = re.compile(r"([+-]?)(\d{1,3}(?:,\d{3})+)((?:\.\d+)?(?:[^\d\s,.].*)?)")
_COMMA = re.compile(r"([+-]?\d*),(\d+)((?:[^\d\s,.].*)?)")


def _thousands(raw: str, token: str, cmd: str) -> str:
    """`1,200` and `1,200.5` carry thousands separators (1200, 1200.5): commas between groups of
    three digits are dropped. Any other comma is a decimal comma (`0,5`), refused with the number
    written with a point, which is what the writer meant."""
    m = _GROUPED.fullmatch(raw)
    if m:
        return m.group(1) + m.group(2).replace(",", "") + m.group(3)
    m = _COMMA.fullmatch(raw)
    if m:
        fixed = f"{m.group(1) or '0'}.{m.group(2)}{m.group(3)}"
        raise UserError(
            f"Use a decimal point, not a comma: write `{fixed[:60]}` instead of `{token[:60]}` "
            "(a comma only separates thousands, as in `1,200`)."
        )
    if "," in raw and re.match(r"[+-]?[\d.]*,", raw):
        raise _usage_error(cmd, f"`{token[:60]}` is not a number (commas separate thousands, as in `1,200.5`)")
    return raw


def _in_range(value: float, shown: str, cmd: str) -> float:
    if value != value or value in (float("inf"), float("-inf")) or abs(value) >= 1e15:
        raise _usage_error(cmd, f"`{shown[:60]}` is out of range")
    return value


def parse_pct(token: Number | None, cmd: str, what: str) -> tuple[float, bool]:
    """`95`, `95%`, `95.5%`; a bare 0 < x < 1 is a fraction. Returns (percent, read_as_fraction)."""
    value, unit = parse_value(token, cmd, what)
    shown = str(token)[:60]
    if unit not in (None, "%"):
        raise _usage_error(cmd, f"`{shown}` is not a percentage")
    fraction = unit is None and 0 < value < 1
    if fraction:
        value = round(value * 100, 6)
    if not 0 <= value <= 100:
        raise _usage_error(cmd, f"The {what} must be between 0 and 100%, not `{shown}`")
    return value, fraction


def parse_int(token: str | int | None, cmd: str, what: str, low: int = 1, high: int = 10_000_000) -> int:
    """A whole number from a grammar token, or a JSON integer from the REST API."""
    if isinstance(token, int) and not isinstance(token, bool):
        token = str(token)
    if isinstance(token, str) and re.fullmatch(r"\d{1,3}(?:,\d{3})+", token):
        token = token.replace(",", "")  # `1,200` cases: a thousands separator, as in parse_value
    if not isinstance(token, str) or not re.fullmatch(r"\d{1,9}", token):
        shown = f"`{str(token)[:60]}`" if token else "nothing"
        raise _usage_error(cmd, f"The {what} must be a whole number, not {shown}")
    n = int(token)
    if not low <= n <= high:
        raise _usage_error(cmd, f"The {what} must be between {low} and {high}")
    return n


def parse_date(token: str | None, cmd: str) -> date:
    if token is None:
        raise _usage_error(cmd, "The date is missing")
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", token)
    if not m:
        raise _usage_error(cmd, f"`{token[:60]}` is not a date in the form YYYY-MM-DD")
    year, month, day = (int(g) for g in m.groups())
    if not 1 <= month <= 12:
        raise _usage_error(cmd, f"{token} does not exist (there is no month {month}; months run 01 to 12)")
    days = calendar.monthrange(max(year, 1), month)[1]
    if not 1 <= day <= days or year < 1:
        month_name = calendar.month_name[month] + (f" {year}" if month == 2 else "")
        raise _usage_error(cmd, f"{token} does not exist ({month_name} has {days} days)")
    return date(year, month, day)


def parse_user(token: str | None, cmd: str) -> UserRef:
    if token is None:
        raise _usage_error(cmd, "Who? Mention the user")
    m = _MENTION_RE.match(token)
    if m:
        uid = limits.text(m.group(1), "pilot", "owner_id", "user id")
        return UserRef(uid, _display_name(m.group(2), "owner_name"))
    m = _BARE_NAME_RE.match(token)
    if m and token.startswith("@"):
        return UserRef(m.group(1), m.group(1), bare=True)
    raise _usage_error(cmd, f"`{token[:60]}` is not a user mention")


def parse_channel(token: str | None, cmd: str) -> ChannelRef:
    if token is None:
        raise _usage_error(cmd, "Which channel? Mention it")
    m = _CHANNEL_RE.match(token)
    if m:
        cid = limits.text(m.group(1), "pilot", "escalation_channel_id", "channel id")
        return ChannelRef(cid, _display_name(m.group(2), "escalation_channel_name"))
    m = _BARE_NAME_RE.match(token)
    if m and token.startswith("#"):
        return ChannelRef(m.group(1), m.group(1), bare=True)
    raise _usage_error(cmd, f"`{token[:60]}` is not a channel mention")


def _display_name(name: str | None, column: str) -> str | None:
    """The `|name` of a mention is the platform's display name: trimmed to fit, never refused."""
    return limits.clip(name, "pilot", column) or None if name else None


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """` Did you mean `x`?` for the closest choice, or nothing: the hint every refusal of a name gives."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""


def parse_weekday(token: str | None, cmd: str) -> int:
    if token is None:
        raise _usage_error(cmd, "The weekday is missing")
    word = token.lower()
    for i, day in enumerate(WEEKDAYS):
        if len(word) >= 3 and day.startswith(word):
            return i
    raise _usage_error(cmd, f"`{token[:60]}` is not a weekday (monday … sunday)")


def parse_time(token: str | None, cmd: str) -> str:
    m = _TIME_RE.match(token or "")
    if not m:
        shown = f"`{token[:60]}`" if token else "nothing"
        raise _usage_error(cmd, f"The time must be HH:MM on a 24-hour clock, not {shown}")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def parse_tz(token: str, cmd: str) -> str:
    most = limits.limit("pilot", "checkin_tz")
    if len(token) > most:
        raise _usage_error(cmd, f"`{token[:40]}…` is not an IANA time zone ({most} characters at most)")
    limits.text(token, "pilot", "checkin_tz")
    try:
        ZoneInfo(token)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name the file system refuses
        zones = sorted(available_timezones())
        lowered = {z.lower(): z for z in zones}
        if token.lower() in lowered:
            return lowered[token.lower()]
        close = difflib.get_close_matches(token.lower(), list(lowered), n=1, cutoff=0.6)
        hint = f"; did you mean `{lowered[close[0]]}`?" if close else " such as Europe/Berlin"
        raise UserError(f"`{token[:60]}` is not an IANA time zone{hint} Write `{USAGE[cmd]}`.") from None
    return token


def _too_many(cmd: str, extra: list[str]) -> None:
    if extra:
        raise _usage_error(cmd, f"I did not expect `{' '.join(extra)[:60]}`")


def _rest(text: str, skip: int) -> str:
    """The raw text after the first `skip` tokens, spacing kept (names and notes)."""
    pos = 0
    for _ in range(skip):
        m = _TOKEN_RE.search(text, pos)
        if m is None:
            return ""
        pos = m.end()
    return text[pos:].strip()


def _p_help(args: list[str], text: str) -> Command:
    return Help(args[0].lower() if args else None)


def _p_new(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "new")
    name = _rest(text, 2) or None
    if name is not None:
        limits.text(name, "pilot", "name")
    return New(slug, name)


def _p_status(args: list[str], text: str) -> Command:
    if not args:
        return Status(None)
    first = args[0].lower()
    if first in PORTFOLIO_FILTERS or first == "page":
        filter_ = first if first in PORTFOLIO_FILTERS else None
        rest = args[1:] if filter_ else args
        page = 1
        if rest:
            if rest[0].lower() != "page":
                raise _usage_error("status", f"I did not expect `{' '.join(rest)[:60]}`; a page is `page <n>`")
            page = parse_int(rest[1] if len(rest) > 1 else None, "status", "page number", 1, 1_000_000)
            _too_many("status", rest[2:])
        return Status(None, filter_, page)
    _too_many("status", args[1:])
    return Status(parse_slug(args[0], "status"))


def _p_owner(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "owner")
    user = parse_user(args[1] if len(args) > 1 else None, "owner")
    _too_many("owner", args[2:])
    return SetOwner(slug, user)


def _p_golive(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "golive")
    day = parse_date(args[1] if len(args) > 1 else None, "golive")
    _too_many("golive", args[2:])
    return GoLive(slug, day)


def _p_baseline(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "baseline")
    metric = parse_metric(args[1] if len(args) > 1 else None, "baseline")
    value, unit = parse_value(args[2] if len(args) > 2 else None, "baseline")
    direction: str | None = None
    at: date | None = None
    rest = args[3:]
    i = 0
    while i < len(rest):
        word = rest[i].lower()
        if word in ("lower", "higher"):
            if direction is not None:
                raise _usage_error("baseline", "Give `lower` or `higher` once")
            direction = word
        elif word == "at":
            at = parse_date(rest[i + 1] if i + 1 < len(rest) else None, "baseline")
            i += 1
        elif unit is None and i == 0:
            if len(rest[i]) > MAX_UNIT or not re.fullmatch(r"[^\s<>@#`]+", rest[i]):
                raise _usage_error("baseline", f"`{rest[i][:40]}` is not a unit")
            unit = limits.text(rest[i], "metric", "unit")
        else:
            raise _usage_error("baseline", f"I did not expect `{rest[i][:60]}`")
        i += 1
    return Baseline(slug, metric, value, unit, direction, at)


def _p_measure(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "measure")
    metric = parse_metric(args[1] if len(args) > 1 else None, "measure")
    value, unit = parse_value(args[2] if len(args) > 2 else None, "measure")
    rest = args[3:]
    if unit is None and len(rest) == 1 and len(rest[0]) <= MAX_UNIT:
        unit, rest = limits.text(rest[0], "metric", "unit"), []
    _too_many("measure", rest)
    return Measure(slug, metric, value, unit)


def _p_threshold(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "threshold")
    pct, fraction = parse_pct(args[1] if len(args) > 1 else None, "threshold", "bar")
    min_cases: int | None = None
    drop: float | None = None
    kill_below: float | None = None
    rest = args[2:]
    i = 0
    while i < len(rest):
        word = rest[i].lower()
        nxt = rest[i + 1] if i + 1 < len(rest) else None
        if word in ("min-cases", "min_cases", "mincases"):
            min_cases = parse_int(nxt, "threshold", "min-cases", 1, 1_000_000)
        elif word in ("drop-alert", "drop_alert"):
            value, unit = parse_value(nxt, "threshold", "drop-alert")
            if unit not in (None, "pts", "pt", "%") or not 0 < value <= 100:
                raise _usage_error("threshold", "drop-alert is a number of points between 0 and 100")
            drop = value
        elif word in ("kill-below", "kill_below"):
            kill_below, _ = parse_pct(nxt, "threshold", "kill-below score")
            if kill_below > pct:
                raise _usage_error("threshold", "kill-below must be at or under the bar it backs up")
        else:
            raise _usage_error("threshold", f"I did not expect `{rest[i][:60]}`")
        i += 2
    return Threshold(slug, pct, min_cases, drop, fraction, kill_below)


def _p_eval(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "eval")
    score, fraction = parse_pct(args[1] if len(args) > 1 else None, "eval", "score")
    cases: int | None = None
    version: str | None = None
    rest = args[2:]
    i = 0
    while i < len(rest):
        word = rest[i].lower()
        if word == "cases":
            cases = parse_int(rest[i + 1] if i + 1 < len(rest) else None, "eval", "number of cases")
            i += 2
        elif word == "version":
            version = " ".join(rest[i + 1 :]).strip() or None
            if version is None:
                raise _usage_error("eval", "The version text is missing")
            limits.text(version, "eval_run", "version")
            break
        else:
            raise _usage_error("eval", f"I did not expect `{rest[i][:60]}`")
    if cases is None:
        raise _usage_error("eval", "How many cases did the eval score? Add `cases <n>`")
    return Eval(slug, score, cases, version, fraction)


def _p_path(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "path")
    if len(args) < 2:
        raise _usage_error("path", f"Which item? One of {', '.join(PATH_ITEMS)}")
    item = args[1].lower().replace("_", "-")
    if item not in PATH_ITEMS:
        raise UserError(
            f"`{args[1][:60]}` is not a path item.{did_you_mean(item, PATH_ITEMS)} "
            f"The items are {', '.join(PATH_ITEMS)}: write `{USAGE['path']}`."
        )
    state = args[2].lower() if len(args) > 2 else None
    if state not in ("done", "todo"):
        raise _usage_error("path", "Say whether the item is `done` or `todo`")
    note = _rest(text, 4) or None
    if note is not None:
        limits.text(note, "path_item", "note")
    return Path(slug, item, state, note)


def _p_checkin(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "checkin")
    weekday = parse_weekday(args[1] if len(args) > 1 else None, "checkin")
    time = parse_time(args[2] if len(args) > 2 else None, "checkin")
    tz = parse_tz(args[3], "checkin") if len(args) > 3 else None
    _too_many("checkin", args[4:])
    return CheckinCadence(slug, weekday, time, tz)


def _p_escalate(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "escalate")
    channel = parse_channel(args[1] if len(args) > 1 else None, "escalate")
    _too_many("escalate", args[2:])
    return Escalate(slug, channel)


def _p_history(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "history")
    _too_many("history", args[1:])
    return History(slug)


def _p_audit(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "audit")
    _too_many("audit", args[1:])
    return Audit(slug)


def _p_cases(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "cases")
    _too_many("cases", args[1:])
    return Cases(slug)


def _p_answer(args: list[str], text: str) -> Command:
    """`eval` and `note` are words of the command, not metric keys (a metric with such a key is
    answered through the check-in form); values stay text for the form's one number parser."""
    slug = parse_slug(args[0] if args else None, "answer")
    values: list[tuple[str, str]] = []
    eval_score: str | None = None
    note: str | None = None
    i, rest = 0, args[1:]
    while i < len(rest):
        word = rest[i].lower()
        nxt = rest[i + 1] if i + 1 < len(rest) else None
        if word == "note":
            note = _rest(text, i + 3) or None
            if note is None:
                raise _usage_error("answer", "The note text is missing")
            if len(note) > MAX_NOTE * 4:
                raise _usage_error("answer", f"The note is too long ({MAX_NOTE * 4} characters at most)")
            break
        if word == "eval":
            parse_pct(nxt, "answer", "eval score")
            eval_score = nxt
        else:
            key = parse_metric(rest[i], "answer")
            parse_value(nxt, "answer", f"value of {key}")
            if any(k == key for k, _ in values):
                raise _usage_error("answer", f"`{key}` is given twice")
            values.append((key, str(nxt)))
        i += 2
    if not values and eval_score is None:
        raise _usage_error("answer", "Give this week's value of each metric")
    return Answer(slug, tuple(values), eval_score, note)


def _p_kill(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "kill")
    reason = " ".join(_rest(text, 2).split())
    if not reason:
        raise _usage_error("kill", "Say why it goes off (the production system sees the reason)")
    if len(reason) > MAX_NOTE:
        raise _usage_error("kill", f"The reason is too long ({MAX_NOTE} characters at most)")
    return Kill(slug, reason)


def _p_restore(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "restore")
    _too_many("restore", args[1:])
    return Restore(slug)


def _reason(text: str, skip: int, cmd: str) -> str | None:
    reason = _rest(text, skip) or None
    if reason is not None and len(reason) > MAX_NOTE:
        raise _usage_error(cmd, f"The reason is too long ({MAX_NOTE} characters at most)")
    return reason


def _p_ship(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "ship")
    if len(args) < 2:
        return Ship(slug)
    if args[1].lower() != "override":
        raise _usage_error("ship", f"I did not expect `{args[1][:60]}`")
    return Ship(slug, _reason(text, 3, "ship") or "")


def _p_pause(args: list[str], text: str) -> Command:
    return Pause(parse_slug(args[0] if args else None, "pause"), _reason(text, 2, "pause"))


def _p_resume(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "resume")
    _too_many("resume", args[1:])
    return Resume(slug)


def _p_retire(args: list[str], text: str) -> Command:
    return Retire(parse_slug(args[0] if args else None, "retire"), _reason(text, 2, "retire"))


def _p_void(args: list[str], text: str) -> Command:
    slug = parse_slug(args[0] if args else None, "void")
    what = args[1].lower() if len(args) > 1 else None
    if what == "eval":
        return Void(slug, "eval", None, _reason(text, 3, "void"))
    if what in ("measure", "baseline"):
        metric = parse_metric(args[2] if len(args) > 2 else None, "void")
        return Void(slug, what, metric, _reason(text, 4, "void"))
    shown = f"`{args[1][:60]}`" if len(args) > 1 else "nothing"
    raise _usage_error("void", f"Say what to withdraw: `eval`, `measure <metric>` or `baseline <metric>`, not {shown}")


_PARSERS = {
    "help": _p_help,
    "new": _p_new,
    "status": _p_status,
    "owner": _p_owner,
    "golive": _p_golive,
    "baseline": _p_baseline,
    "measure": _p_measure,
    "threshold": _p_threshold,
    "eval": _p_eval,
    "path": _p_path,
    "checkin": _p_checkin,
    "escalate": _p_escalate,
    "history": _p_history,
    "audit": _p_audit,
    "cases": _p_cases,
    "answer": _p_answer,
    "kill": _p_kill,
    "restore": _p_restore,
    "ship": _p_ship,
    "pause": _p_pause,
    "resume": _p_resume,
    "retire": _p_retire,
    "void": _p_void,
}
assert set(_PARSERS) == set(COMMAND_NAMES)
