"""Training pairs and record files: what is read, what is skipped (with its exact line number and
reason), and when a whole file is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ebr.encoders.errors import EncoderInputError
from ebr.encoders.training.pairs import Pair, PairFile, doc_key, read_pairs
from ebr.ingest.lines import MAX_SKIPPED_FRACTION, QUOTED_SKIPS, SkippedLine
from ebr.ingest.records import RecordFile, read_records


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def good_jsonl(n: int) -> list[str]:
    return [f'{{"query": "q{i}", "doc": "d{i}"}}' for i in range(n)]


# -- JSONL pairs --------------------------------------------------------------------------------

def test_jsonl_records_strings_and_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.jsonl", [
        '{"query": {"text": "cordless drill", "country": "us"}, "doc": {"id": "100231", "title": "Drill"}, '
        '"label": 3}',
        '{"query": "angle bracket", "doc": "Simpson Strong-Tie 12-Gauge Angle"}',
        "",
        '{"doc": "d", "query": "q", "label": 0.5}',
        '{"query": "q", "doc": "d", "label": null}',
    ])
    result = read_pairs(path)
    assert result.skipped == []
    assert result.skipped_report() == ""
    assert result.pairs == [
        Pair({"text": "cordless drill", "country": "us"}, {"id": "100231", "title": "Drill"}, 3.0, 1),
        Pair({"text": "angle bracket"}, {"text": "Simpson Strong-Tie 12-Gauge Angle"}, None, 2),
        Pair({"text": "q"}, {"text": "d"}, 0.5, 4),
        Pair({"text": "q"}, {"text": "d"}, None, 5),
    ]
    assert isinstance(result.pairs[0].label, float)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"query": ', "not valid JSON (Expecting value at column 11)"),
        ("nope", "not valid JSON (Expecting value at column 1)"),
        ('["q", "d"]', "expected a JSON object, got list"),
        ('"q"', "expected a JSON object, got str"),
        ('{"query": "q", "doc": "d", "score": 1, "extra": 2}',
         "unknown key 'extra' (known: query, doc, label)"),
        ('{"query": "q"}', "doc: expected a record (object) or a string, got nothing"),
        ('{"query": {}, "doc": "d"}', "query: expected a record (object) or a string, got an empty record"),
        ('{"query": 5, "doc": "d"}', "query: expected a record (object) or a string, got int"),
        ('{"query": "q", "doc": ["d"]}', "doc: expected a record (object) or a string, got list"),
        ('{"query": "q", "doc": "d", "label": "3"}', "label: expected a finite number, got '3'"),
        ('{"query": "q", "doc": "d", "label": true}', "label: expected a finite number, got True"),
        ('{"query": "q", "doc": "d", "label": NaN}', "label: expected a finite number, got nan"),
        ('{"query": "q", "doc": "d", "label": Infinity}', "label: expected a finite number, got inf"),
    ],
)
def test_jsonl_bad_line_is_skipped_with_its_line_number(tmp_path: Path, line: str, reason: str) -> None:
    lines = good_jsonl(12)
    lines.insert(6, line)  # line 7; 1 bad line of 13 is within the 10% limit
    result = read_pairs(write(tmp_path, "pairs.jsonl", lines), max_skipped_fraction=0.1)
    assert result.skipped == [SkippedLine(7, reason)]
    assert [p.line for p in result.pairs] == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13]
    assert result.skipped_report() == (f"{tmp_path / 'pairs.jsonl'}: skipped 1 bad line(s) of 13:\n"
                                       f"  line 7: {reason}")


def test_blank_lines_are_neither_pairs_nor_skips(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.jsonl", ["", good_jsonl(1)[0], "   ", "", good_jsonl(2)[1]])
    result = read_pairs(path)
    assert [p.line for p in result.pairs] == [2, 5]
    assert result.skipped == []


# -- TSV pairs ----------------------------------------------------------------------------------

def test_tsv_columns_fields_and_labels(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.tsv", [
        "query\tquery.country\tdoc.id\tdoc\tdoc.brand\tlabel",
        "cordless drill\tus\t100231\tDrill 20V\tDeWalt\t3",
        "angle bracket\t\t\tAngle\t\t",
        "",
        "hammer\tca\t7\tClaw hammer\tEstwing\t0.25",
        "saw\tus\t8\tSaw\t\t-1e1",
    ])
    result = read_pairs(path)
    assert result.skipped == []
    assert result.pairs == [
        Pair({"text": "cordless drill", "country": "us"},
             {"id": "100231", "text": "Drill 20V", "brand": "DeWalt"}, 3.0, 2),
        Pair({"text": "angle bracket"}, {"text": "Angle"}, None, 3),
        Pair({"text": "hammer", "country": "ca"}, {"id": "7", "text": "Claw hammer", "brand": "Estwing"},
             0.25, 5),
        Pair({"text": "saw", "country": "us"}, {"id": "8", "text": "Saw"}, -10.0, 6),
    ]


def test_tsv_explicit_field_columns_and_no_label_column(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.tab", ["query.text\tdoc.title", "drill\tDrill 20V"])
    assert read_pairs(path).pairs == [Pair({"text": "drill"}, {"title": "Drill 20V"}, None, 2)]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("q\td", "2 column(s), the header has 3"),
        ("q\td\t1\t2", "4 column(s), the header has 3"),
        ("q\td\thigh", "label: expected a number, got 'high'"),
        ("q\td\tnan", "label: expected a finite number, got nan"),
        ("q\td\tinf", "label: expected a finite number, got inf"),
        ("\td\t1", "query: expected a record (object) or a string, got an empty record"),
        ("q\t\t1", "doc: expected a record (object) or a string, got an empty record"),
    ],
)
def test_tsv_bad_row_is_skipped_with_its_line_number(tmp_path: Path, row: str, reason: str) -> None:
    lines = ["query\tdoc\tlabel"] + [f"q{i}\td{i}\t1" for i in range(12)]
    lines.insert(4, row)  # line 5 of the file
    result = read_pairs(write(tmp_path, "pairs.tsv", lines))
    assert result.skipped == [SkippedLine(5, reason)]
    assert len(result.pairs) == 12
    assert [p.line for p in result.pairs][2:4] == [4, 6]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("query\tdoc\tscore", "header column 'score' is not query, doc, query.<field>, doc.<field> or label"),
        ("query\tdoc.\tlabel", "header column 'doc.' is not query"),
        ("query.\tdoc", "header column 'query.' is not query"),
        ("query\tlabel", "the header needs query and doc columns"),
        ("doc.title\tdoc.id", "the header needs query and doc columns"),
    ],
)
def test_tsv_bad_header_is_refused(tmp_path: Path, header: str, message: str) -> None:
    path = write(tmp_path, "pairs.tsv", [header, "a\tb\tc"])
    with pytest.raises(EncoderInputError, match=message):
        read_pairs(path)


def test_tsv_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(EncoderInputError, match="empty file"):
        read_pairs(path)


def test_format_argument_overrides_the_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.data", ["query\tdoc", "q\td"])
    assert read_pairs(path, format="tsv").pairs == [Pair({"text": "q"}, {"text": "d"}, None, 2)]
    with pytest.raises(EncoderInputError, match="unknown format 'csv'; expected one of jsonl, tsv"):
        read_pairs(path, format="csv")


# -- doc_key ------------------------------------------------------------------------------------

def test_doc_key_prefers_the_id_field() -> None:
    assert doc_key({"id": "100231", "title": "a"}) == doc_key({"id": "100231", "title": "b"}) == "id:100231"
    assert doc_key({"id": 7}) == "id:7"
    assert doc_key({"id": "7"}) == doc_key({"id": 7})  # a TSV id and a JSON id are the same document
    assert Pair({"text": "q"}, {"id": "x", "title": "t"}).doc_key == "id:x"


def test_doc_key_without_an_id_is_the_canonical_fields() -> None:
    assert doc_key({"title": "a", "brand": "b"}) == doc_key({"brand": "b", "title": "a"})
    assert doc_key({"title": "a"}) != doc_key({"title": "b"})
    assert doc_key({"title": "é"}) == 'fields:{"title": "é"}'
    # An id that is not a string or integer does not name the document.
    assert doc_key({"id": True, "title": "a"}) == 'fields:{"id": true, "title": "a"}'
    assert doc_key({"id": None}) == 'fields:{"id": null}'
    assert doc_key({"id": 1.5}) == 'fields:{"id": 1.5}'


# -- reports and refusals -----------------------------------------------------------------------

def test_report_quotes_the_first_skips_and_counts_the_rest(tmp_path: Path) -> None:
    lines = good_jsonl(60)
    bad = [3, 10, 20, 30, 40, 50, 55]  # 7 bad lines among 67
    for number in bad:
        lines.insert(number - 1, "oops")
    path = write(tmp_path, "pairs.jsonl", lines)
    result = read_pairs(path, max_skipped_fraction=0.2)
    assert [s.line for s in result.skipped] == bad
    assert QUOTED_SKIPS == 5
    assert result.skipped_report() == "\n".join(
        [f"{path}: skipped 7 bad line(s) of 67:"]
        + [f"  line {n}: not valid JSON (Expecting value at column 1)" for n in bad[:5]]
        + ["  ... and 2 more"])


def test_exactly_quoted_skips_has_no_more_line(tmp_path: Path) -> None:
    lines = good_jsonl(50)
    for number in range(1, 6):
        lines.insert(number * 8, "[]")
    result = read_pairs(write(tmp_path, "pairs.jsonl", lines))
    report = result.skipped_report().splitlines()
    assert len(report) == 6 and "more" not in report[-1]
    assert report[0].endswith("skipped 5 bad line(s) of 55:")


def test_too_many_bad_lines_refuse_the_file(tmp_path: Path) -> None:
    assert MAX_SKIPPED_FRACTION == 0.1
    lines = good_jsonl(9)
    lines.insert(0, "oops")
    lines.insert(5, "oops")  # 2 bad of 11: 18% > 10%
    path = write(tmp_path, "pairs.jsonl", lines)
    with pytest.raises(EncoderInputError) as caught:
        read_pairs(path)
    assert str(caught.value) == (
        f"{path}: skipped 2 bad line(s) of 11:\n"
        "  line 1: not valid JSON (Expecting value at column 1)\n"
        "  line 6: not valid JSON (Expecting value at column 1)\n"
        "more than 10% of the lines are bad; is this the right file and format?")
    assert len(read_pairs(path, max_skipped_fraction=0.2).pairs) == 9


def test_exactly_the_fraction_is_allowed(tmp_path: Path) -> None:
    lines = good_jsonl(9)
    lines.insert(3, "oops")  # 1 bad of 10 = 10%, not more
    assert len(read_pairs(write(tmp_path, "pairs.jsonl", lines)).skipped) == 1


def test_no_valid_pair_names_the_first_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.jsonl", ["", '{"query": "q"}', "[1]"])
    with pytest.raises(EncoderInputError) as caught:
        read_pairs(path)
    assert str(caught.value) == (f"{path}: no valid pair in 2 line(s); first problem: line 2: "
                                 "doc: expected a record (object) or a string, got nothing")


def test_header_only_tsv_has_no_valid_pair(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.tsv", ["query\tdoc"])
    with pytest.raises(EncoderInputError) as caught:
        read_pairs(path)
    assert str(caught.value) == f"{path}: no valid pair in 0 line(s)"


@pytest.mark.parametrize("name", ["pairs.csv", "pairs", "pairs.jsonl.gz"])
def test_unknown_suffix_is_refused(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, good_jsonl(1))
    with pytest.raises(EncoderInputError, match="name the file .jsonl or .tsv, or pass"):
        read_pairs(path)
    if name.endswith(".csv"):  # records may be CSV (or Parquet); pairs may not
        return
    with pytest.raises(EncoderInputError, match="name the file .jsonl or .tsv or .csv or .parquet"):
        read_records(path)


@pytest.mark.parametrize("name", ["pairs.JSONL", "pairs.ndjson", "pairs.json"])
def test_jsonl_suffixes(tmp_path: Path, name: str) -> None:
    assert len(read_pairs(write(tmp_path, name, good_jsonl(2))).pairs) == 2


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b'{"query": "caf\xe9", "doc": "d"}\n')
    with pytest.raises(EncoderInputError) as caught:
        read_pairs(path)
    assert str(caught.value) == f"cannot read pairs {path}: not UTF-8 (invalid continuation byte at byte 14)"
    with pytest.raises(EncoderInputError, match=r"cannot read .*: not UTF-8"):
        read_records(path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(EncoderInputError, match=f"cannot read pairs {path}: No such file"):
        read_pairs(path)
    with pytest.raises(EncoderInputError, match=f"cannot read {path}: No such file"):
        read_records(path)


# -- drop_unusable ------------------------------------------------------------------------------

def no_text(record: Any) -> str | None:
    return None if isinstance(record.get("text"), str) else "no text"


def no_title(record: Any) -> str | None:
    return None if "title" in record else "no title"


def test_pair_file_drop_unusable_moves_pairs_to_skipped_in_line_order(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.jsonl", [
        '{"query": "q1", "doc": {"title": "t"}}',
        '{"query": {"country": "us"}, "doc": {"title": "t"}}',
        "oops",
        '{"query": "q4", "doc": {"brand": "b"}}',
        '{"query": {"country": "us"}, "doc": {"brand": "b"}}',
        *[f'{{"query": "q{i}", "doc": {{"title": "t{i}"}}}}' for i in range(6, 30)],
    ])
    result = read_pairs(path)
    assert result.skipped == [SkippedLine(3, "not valid JSON (Expecting value at column 1)")]
    result.drop_unusable(no_text, no_title)
    assert result.skipped == [
        SkippedLine(2, "query: no text"),
        SkippedLine(3, "not valid JSON (Expecting value at column 1)"),
        SkippedLine(4, "doc: no title"),
        SkippedLine(5, "query: no text"),  # the query's problem is the one reported
    ]
    assert [p.line for p in result.pairs] == [1, *range(6, 30)]
    assert "skipped 4 bad line(s) of 29:" in result.skipped_report()


def test_pair_file_drop_unusable_keeps_everything_usable() -> None:
    pairs = [Pair({"text": "q"}, {"title": "t"}, None, 1), Pair({"text": "r"}, {"title": "u"}, 1.0, 2)]
    result = PairFile(Path("p.jsonl"), list(pairs))
    result.drop_unusable(no_text, no_title)
    assert result.pairs == pairs and result.skipped == []


def test_record_file_drop_unusable_keeps_records_and_lines_aligned(tmp_path: Path) -> None:
    path = write(tmp_path, "docs.jsonl", [
        '{"title": "a"}', '{"brand": "b"}', "", "{}", '{"title": "c"}', '{"brand": "d"}',
        *[f'{{"title": "t{i}"}}' for i in range(7, 30)],
    ])
    result = read_records(path, max_skipped_fraction=0.5)
    assert result.skipped == [SkippedLine(4, "expected a non-empty JSON object")]
    result.drop_unusable(no_title)
    assert result.skipped == [SkippedLine(2, "no title"), SkippedLine(4, "expected a non-empty JSON object"),
                              SkippedLine(6, "no title")]
    assert result.records[:2] == [{"title": "a"}, {"title": "c"}]
    assert result.lines == [1, 5, *range(7, 30)]
    assert len(result.records) == len(result.lines)


def test_record_file_drop_unusable_on_a_hand_built_file() -> None:
    result = RecordFile(Path("d.jsonl"), [{"title": "a"}, {"x": 1}], [10, 3], [SkippedLine(7, "bad")])
    result.drop_unusable(no_title)
    assert result.skipped == [SkippedLine(3, "no title"), SkippedLine(7, "bad")]
    assert result.records == [{"title": "a"}] and result.lines == [10]


# -- read_records -------------------------------------------------------------------------------

def test_read_records_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "docs.jsonl", [
        '{"id": "1", "title": "Drill", "categories": ["tools"]}',
        "",
        '{"title": "Hammer", "price": 9.5}',
        *[f'{{"title": "t{i}"}}' for i in range(4, 15)],
        '"just a string"',
        "[1, 2]",
    ])
    result = read_records(path, max_skipped_fraction=0.2)
    assert result.records[:2] == [{"id": "1", "title": "Drill", "categories": ["tools"]},
                                  {"title": "Hammer", "price": 9.5}]
    assert result.lines == [1, 3, *range(4, 15)]
    assert result.skipped == [SkippedLine(15, "expected a JSON object, got str"),
                              SkippedLine(16, "expected a JSON object, got list")]


def test_read_records_tsv(tmp_path: Path) -> None:
    path = write(tmp_path, "docs.tsv", [
        "id\ttitle\tbrand",
        "1\tDrill\tDeWalt",
        "2\tHammer\t",
        "",
        *[f"{i}\tt{i}\tb" for i in range(3, 20)],
        "3\tSaw",
    ])
    result = read_records(path, max_skipped_fraction=0.2)
    assert result.records[:2] == [{"id": "1", "title": "Drill", "brand": "DeWalt"},
                                  {"id": "2", "title": "Hammer"}]
    assert result.lines == [2, 3, *range(5, 22)]
    assert result.skipped == [SkippedLine(22, "2 column(s), the header has 3")]
    assert result.skipped_report() == (f"{path}: skipped 1 bad line(s) of 20:\n"
                                       "  line 22: 2 column(s), the header has 3")


def test_read_records_tsv_with_too_many_bad_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "docs.tsv", ["id\ttitle", "1\ta", "2", "3"])
    with pytest.raises(EncoderInputError, match="more than 10% of the lines are bad"):
        read_records(path)


def test_read_records_nothing_valid(tmp_path: Path) -> None:
    path = write(tmp_path, "docs.jsonl", ["{}", "x"])
    with pytest.raises(EncoderInputError) as caught:
        read_records(path)
    assert str(caught.value) == (f"{path}: no valid record in 2 line(s); first problem: line 1: "
                                 "expected a non-empty JSON object")


@pytest.mark.parametrize("header", ["id\ttitle\tid", "id\t\ttitle", "", "title\t"])
def test_read_records_tsv_header_must_name_every_column_once(tmp_path: Path, header: str) -> None:
    path = write(tmp_path, "docs.tsv", [header, "1\t2\t3"])
    with pytest.raises(EncoderInputError, match="the first row must name every column, once each"):
        read_records(path)


def test_read_records_empty_tsv(tmp_path: Path) -> None:
    path = tmp_path / "docs.tsv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(EncoderInputError, match=r"the first row must name every column, once each; got None"):
        read_records(path)


def test_read_records_tsv_row_of_empty_cells_is_a_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path, "docs.tsv", ["id\ttitle", *[f"{i}\tt{i}" for i in range(12)], "\t"])
    result = read_records(path)
    assert result.skipped == [SkippedLine(14, "every cell is empty")]
    assert len(result.records) == 12


def test_json_error_column_ignores_the_line_ending(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(("\r\n".join(good_jsonl(12)) + '\r\n{"query": \r\n').encode())
    assert read_pairs(path).skipped == [SkippedLine(13, "not valid JSON (Expecting value at column 11)")]
    docs = tmp_path / "docs.jsonl"
    docs.write_bytes(b'{"a": 1}\r\n' * 12 + b'{"a": 1,\r\n')
    assert read_records(docs).skipped == [
        SkippedLine(13, "not valid JSON (Expecting property name enclosed in double quotes at column 9)")]


@pytest.mark.parametrize(
    ("header", "names"),
    [
        ("query\tdoc\tdoc.text", "'doc', 'doc.text'"),
        ("query\tquery.text\tdoc", "'query', 'query.text'"),
        ("query\tdoc.title\tdoc.title", "'doc.title'"),
        ("query\tdoc\tlabel\tlabel", "'label'"),
    ],
)
def test_tsv_columns_naming_one_field_twice_are_refused(tmp_path: Path, header: str, names: str) -> None:
    path = write(tmp_path, "pairs.tsv", [header, "a\tb\tc\td"])
    with pytest.raises(EncoderInputError) as caught:
        read_pairs(path)
    assert str(caught.value) == f"{path}: header columns {names} name the same field; keep one"


def test_tsv_query_and_doc_fields_of_the_same_name_are_distinct(tmp_path: Path) -> None:
    path = write(tmp_path, "pairs.tsv", ["query.title\tdoc.title", "a\tb"])
    assert read_pairs(path).pairs == [Pair({"title": "a"}, {"title": "b"}, None, 2)]
