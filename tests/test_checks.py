"""Every value-list CHECK in the migrated database allows exactly what the Python side allows.

Alembic's autogenerate comparison (tests/test_schema.py) does not compare CHECK constraints, so a state added
to an enum in heaters/models/states.py without a migration would pass it and then fail in production with an
IntegrityError. The expected values come from the SQLModel metadata: a CheckConstraint built by
`check_in(column, Enum)` expects that enum's values, a literal `column IN ('a', 'b')` its literals. A new
enum-backed CHECK is therefore covered without touching this file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import pytest
from sqlalchemy import CheckConstraint, Engine, text

from heaters.models import metadata, states

_LITERAL = r"'(?:[^']|'')*'"
# What a model writes: `column IN ('a', 'b')` (check_in's output, or a literal CHECK such as cuts.source).
_MODEL_IN = re.compile(rf"\s*(?P<column>\w+)\s+IN\s*\((?P<items>\s*{_LITERAL}(?:\s*,\s*{_LITERAL})*\s*)\)\s*", re.I)
_MODEL_ONE = re.compile(rf"\s*(?P<column>\w+)\s*=\s*(?P<items>{_LITERAL})\s*")
# What PostgreSQL prints back, for text and varchar columns; a one-value IN comes back as `=`.
_COLUMN = r'\(*"?(?P<column>\w+)"?\)*(?:::[\w ]+)?'
_CAST = r"::[\w ]+"
_ITEMS = rf"{_LITERAL}{_CAST}(?:, {_LITERAL}{_CAST})*"
_DB_ANY = re.compile(rf"CHECK \({_COLUMN} = ANY \(\(?ARRAY\[(?P<items>{_ITEMS})\]\)?(?:{_CAST}\[\])?\)\)+")
_DB_ONE = re.compile(rf"CHECK \({_COLUMN} = (?P<items>{_LITERAL}){_CAST}\)+")


@dataclass(frozen=True)
class ValueList:
    table: str
    column: str
    values: frozenset[str]
    source: str  # the enum's name, or where the literal list is written


def _literals(items: str) -> frozenset[str]:
    return frozenset(m[1:-1].replace("''", "'") for m in re.findall(_LITERAL, items))


def _enums() -> list[type[StrEnum]]:
    return [
        obj
        for obj in vars(states).values()
        if isinstance(obj, type) and issubclass(obj, StrEnum) and obj.__module__ == states.__name__
    ]


def expected_value_lists() -> dict[str, ValueList]:
    """Constraint name -> what the models say it must allow, from the SQLModel metadata."""
    found: dict[str, ValueList] = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if not isinstance(constraint, CheckConstraint):
                continue
            sql = str(constraint.sqltext)
            match = _MODEL_IN.fullmatch(sql) or _MODEL_ONE.fullmatch(sql)
            if match is None:
                continue
            assert isinstance(constraint.name, str), f"{table.name}: unnamed value-list CHECK {sql!r}"
            column = match["column"]
            enums = [e.__name__ for e in _enums() if states.check_in(column, e) == sql]
            source = " or ".join(enums) or f"the literal list in the {table.name} model"
            found[constraint.name] = ValueList(table.name, column, _literals(match["items"]), source)
    return found


def parse_db_check(definition: str) -> tuple[str, frozenset[str]] | None:
    """(column, allowed values) of a value-list CHECK as pg_get_constraintdef prints it; None for other CHECKs.

    Raises ValueError for a definition that looks like a value list but has a shape this parser does not know,
    so such a CHECK can never slip past uncompared."""
    for pattern in (_DB_ANY, _DB_ONE):
        if match := pattern.fullmatch(definition):
            return match["column"], _literals(match["items"])
    if re.search(r"= ANY \(\(?ARRAY\[", definition):
        raise ValueError(f"value-list CHECK of an unknown shape (teach parse_db_check): {definition}")
    return None


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("CHECK ((state = ANY (ARRAY['a'::text, 'b''c'::text])))", ("state", frozenset({"a", "b'c"}))),
        (
            "CHECK (((role)::text = ANY ((ARRAY['x'::character varying, 'y'::character varying])::text[])))",
            ("role", frozenset({"x", "y"})),
        ),
        ("CHECK ((artifact_type = 'keyframe'::text))", ("artifact_type", frozenset({"keyframe"}))),
        ("CHECK ((frame_number > 0))", None),
        ("CHECK ((username ~ '^[A-Za-z0-9_.-]{1,64}$'::text))", None),
    ],
)
def test_parse_db_check(definition: str, expected: tuple[str, frozenset[str]] | None) -> None:
    assert parse_db_check(definition) == expected


def test_parse_db_check_refuses_a_value_list_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        parse_db_check("CHECK (((state = ANY (ARRAY['a'::text])) OR (state IS NULL)))")


def test_the_mapping_comes_from_check_in() -> None:
    """Guards the derivation itself: the enum-backed CHECKs are recognised as such."""
    sources = {name: value_list.source for name, value_list in expected_value_lists().items()}
    assert sources.get("source_videos_ingest_state_check") == "VideoState", sources
    assert sources.get("clips_ingest_state_check") == "ClipState", sources
    assert sources.get("cuts_source_check") == "the literal list in the cuts model", sources


def test_every_value_list_check_matches_its_enum(engine: Engine) -> None:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT c.conname, t.relname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
                " JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = c.connamespace"
                " WHERE c.contype = 'c' AND n.nspname = 'public' ORDER BY c.conname"
            )
        ).all()
    assert rows, "the migrated database has no CHECK constraints at all"
    in_db: dict[str, tuple[str, str, frozenset[str], str]] = {}
    for name, table, definition in rows:
        if (parsed := parse_db_check(definition)) is not None:
            in_db[name] = (table, parsed[0], parsed[1], definition)
    expected = expected_value_lists()

    problems: list[str] = []
    for name in sorted(in_db.keys() - expected.keys()):
        table, column, values, _ = in_db[name]
        problems.append(
            f"{name} ({table}.{column}) allows {sorted(values)} in the database, but no model CHECK of that name "
            "restricts a column to a value list"
        )
    for name in sorted(expected.keys() - in_db.keys()):
        want = expected[name]
        problems.append(
            f"{name} ({want.table}.{want.column}, {want.source}) is missing from the database: "
            f"no value-list CHECK of that name exists (expected {sorted(want.values)}); add a migration"
        )
    for name in sorted(expected.keys() & in_db.keys()):
        want = expected[name]
        table, column, values, definition = in_db[name]
        if (table, column) != (want.table, want.column):
            where = f"{table}.{column} in the database, {want.table}.{want.column} in the model"
            problems.append(f"{name} restricts {where}")
        missing, extra = sorted(want.values - values), sorted(values - want.values)
        if missing or extra:
            differences = [
                *([f"the database does not allow {missing}"] if missing else []),
                *([f"the database still allows {extra}, which {want.source} does not have"] if extra else []),
            ]
            problems.append(
                f"{name} ({want.table}.{want.column}, {want.source}): {' and '.join(differences)};"
                f" add a migration that rewrites the CHECK (database: {definition})"
            )
    assert not problems, "Value-list CHECKs and the Python enums disagree:\n" + "\n".join(problems)
