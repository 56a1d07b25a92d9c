import pytest

from bench.data import DATASETS
from bench.errors import BenchError
from bench.metrics import METRICS
from bench.models import MODELS
from bench.registry import Options, Plugin, Registry, describe_options


def test_register_and_get():
    reg = Registry("things", [])

    @reg.register("alpha")
    class Alpha(Plugin):
        """First line of doc.

        More."""

    assert reg.get("alpha") is Alpha
    assert Alpha.name == "alpha"
    assert Alpha.summary() == "First line of doc."
    assert "alpha" in reg and reg.names() == ["alpha"]


def test_unknown_name_suggests_the_closest():
    with pytest.raises(BenchError, match="Did you mean 'gan_train'"):
        METRICS.get("gan_trian")


def test_unknown_name_without_close_match_lists_known():
    with pytest.raises(BenchError, match="Known: .*gan_test"):
        METRICS.get("zzzzzz")


def test_double_registration_is_an_error():
    reg = Registry("things", [])
    reg.register("a")(type("A", (Plugin,), {}))
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(type("B", (Plugin,), {}))


def test_builtin_plugins_are_registered_lazily():
    assert {"digits"} <= set(DATASETS.names())
    assert {"reference", "samples", "cgan"} <= set(MODELS.names())
    assert {"gan_train", "gan_test"} <= set(METRICS.names())


def test_options_forbid_unknown_keys_and_describe_themselves():
    class Opts(Options):
        epochs: int = 3

    with pytest.raises(Exception, match="Extra inputs"):
        Opts(epoch=3)
    assert describe_options(Opts) == [("epochs", "int", 3, "")]
