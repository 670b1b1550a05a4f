"""The cache browser's filter box: field queries, free words, and errors as hints."""

from __future__ import annotations

import pytest

from labnb.display.cache_filter import MAX_TERMS, parse_filter
from labnb.display.labels import stored_text, task_label, value_text

FIELDS = ["params.model", "params.seed", "params.C", "params.config", "metrics.accuracy"]


def test_field_queries_become_the_catalogs_where_and_other_words_stay_words():
    query = parse_filter("seed=3 C>1 model=svm lbfgs", FIELDS)
    assert query.ok
    assert query.where == ("params.seed in [3, '3'] and params.C > 1 and params.model == 'svm'")
    assert query.words == ("lbfgs",)
    assert query.terms == ("seed == 3", "C > 1", "model == 'svm'")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("C >= 0.5", "params.C >= 0.5"),
        ("accuracy<0.9", "metrics.accuracy < 0.9"),
        ("c>1", "params.C > 1"),  # case is ignored when one field matches
        ("model!=svm", "params.model != 'svm'"),
        ("model=='a b'", "params.model == 'a b'"),
        ('model="3"', "params.model == '3'"),
        ("seed=none", "params.seed == None"),
        ("type=Fit", "type == 'Fit'"),
        ("config.depth=3", "params.config.depth in [3, '3']"),
        ("duration_s>2", "duration_s > 2"),
    ],
)
def test_each_operator_and_value_kind_reads_as_written(text, where):
    query = parse_filter(text, FIELDS)
    assert query.ok and query.where == where and query.words == ()


def test_quoted_phrases_and_plain_words_match_the_visible_text():
    query = parse_filter("svm 'two words' 7", FIELDS)
    assert query.ok and query.where == "" and query.words == ("svm", "two words", "7")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("sedd=3", "No field 'sedd': fields are model, seed, C, config, accuracy."),
        ("seed=", "Give seed a value, as in seed=3."),
        ("C>", "Give C a value, as in C=3."),
        ("=3", "Put a field name before '=3', as in seed=3."),
        ("C>svm", "C> needs a number, not 'svm'."),
        ("'open", "Close the quote: 'open'"),
    ],
)
def test_what_cannot_be_read_is_an_error_sentence_never_an_exception(text, error):
    query = parse_filter(text, FIELDS)
    assert not query.ok and query.error == error and query.where == ""


def test_a_flood_of_terms_is_refused():
    assert not parse_filter("a " * (MAX_TERMS + 1), FIELDS).ok


def test_values_read_as_the_user_wrote_them():
    from frozendict import frozendict

    assert value_text(frozendict({"depth": 3, "name": "x"})) == "{'depth': 3, 'name': 'x'}"
    assert value_text((1, 2)) == "[1, 2]" and value_text(0.1 + 0.2) == "0.3"
    assert stored_text('{"depth": 3}') == "{'depth': 3}"
    assert stored_text('["a", 1]') == "['a', 1]"
    assert stored_text("svm") == "svm" and stored_text("{not json") == "{not json"


def test_a_task_label_shows_nested_values_without_frozendict():
    from sample_tasks import Colour, WithEnum

    task = WithEnum(colour=Colour.RED, options={"depth": 3})
    assert task_label(task) == "WithEnum(colour=Colour.RED, options={'depth': 3})"
