import importlib
import inspect
import sys
import textwrap
import types

import pytest
from pydantic import ValidationError

from bench.classifiers import CLASSIFIERS, Classifier
from bench.core.errors import BenchError
from bench.core.registry import NoOptions, Options, Plugin, Registry, describe_options
from bench.data import DATASETS, DatasetSource
from bench.executors import EXECUTORS, Executor
from bench.features import FEATURES, FeatureExtractor
from bench.metrics import METRICS, Metric
from bench.metrics._conditional import ConditionalFeatureMetric
from bench.metrics._distribution import FeatureMetric, FeatureMetricOptions
from bench.metrics.fid import FIDOptions
from bench.models import MODELS, ModelSource


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

    with pytest.raises(ValidationError, match="Extra inputs"):
        Opts(epoch=3)
    assert describe_options(Opts) == [("epochs", "int", 3, "")]


class _MyOpts(Options):
    n_pairs: int = 3


class _OtherOpts(Options):
    k: int = 1


def test_a_plugin_names_its_options_once_as_the_type_argument():
    class P(Metric[_MyOpts]):
        def compute(self, generator, dataset, ctx):
            return {}

    class Q(P):  # no type argument: inherits P's
        pass

    class Old(Metric):  # the older form (third-party plugins): the class body's own wins
        Options = _OtherOpts
        options: _OtherOpts

    class OldChild(Old):
        pass

    class Both(Metric[_MyOpts]):
        Options = _OtherOpts

    class Plain(Metric):
        pass

    class Explicit(Metric[NoOptions]):
        pass

    assert P.Options is _MyOpts and Q.Options is _MyOpts
    assert isinstance(P().options, _MyOpts) and P().options.n_pairs == 3
    assert P(_MyOpts(n_pairs=5)).options.n_pairs == 5
    assert Old.Options is _OtherOpts and OldChild.Options is _OtherOpts
    assert Both.Options is _OtherOpts
    assert Plain.Options is NoOptions and Explicit.Options is NoOptions
    assert Plugin.Options is Metric.Options is NoOptions
    for kind in (DatasetSource, ModelSource, FeatureExtractor, Executor):
        assert kind.Options is NoOptions
        assert types.new_class("X", (kind[_MyOpts],)).Options is _MyOpts


def test_an_intermediate_base_passes_on_its_own_options():
    """FeatureMetric's type variable has a default (FeatureMetricOptions): a subclass with no
    type argument gets it, one with its own argument its own."""
    class Plain(FeatureMetric):
        pass

    class Mine(ConditionalFeatureMetric[_DerivedFeatureOpts]):
        pass

    assert FeatureMetric.Options is FeatureMetricOptions
    assert ConditionalFeatureMetric.Options is FeatureMetricOptions
    assert Plain.Options is FeatureMetricOptions and Mine.Options is _DerivedFeatureOpts
    assert METRICS.get("fid").Options is FIDOptions
    assert METRICS.get("intra_fid").Options is FeatureMetricOptions


class _DerivedFeatureOpts(FeatureMetricOptions):
    extra: int = 0


def test_a_type_argument_that_is_no_options_class_is_refused():
    with pytest.raises(TypeError, match="not a subclass of bench.core.registry.Options"):
        class Bad(Metric[int]):
            pass
    with pytest.raises(TypeError, match="not a string"):
        class Quoted(Metric["_MyOpts"]):
            pass


# ---------------------------------------------------------------- loading per entry
PLUGINS = {
    "__init__.py": """
        from bench.core.registry import Plugin, Registry

        class Thing(Plugin):
            pass

        THINGS = Registry("things", [f"{__name__}.{m}" for m in ("bad", "good", "half", "quiet")],
                          base=Thing)
    """,
    "good.py": """
        from . import THINGS, Thing

        @THINGS.register("good")
        class Good(Thing):
            '''Works.'''
    """,
    "bad.py": """
        import a_dependency_that_is_not_installed
        from . import THINGS, Thing

        @THINGS.register("bad")
        class Bad(Thing):
            pass
    """,
    "half.py": """
        from . import THINGS, Thing

        @THINGS.register("half")
        class Half(Thing):
            pass

        raise RuntimeError("boom after registering")
    """,
    "quiet.py": """
        raise ImportError("needs libfoo")  # registers nothing we could name
    """,
}


@pytest.fixture
def things(tmp_path, monkeypatch):
    pkg = f"bench_test_plugins_{tmp_path.name.replace('-', '_')}"
    (tmp_path / pkg).mkdir()
    for name, text in PLUGINS.items():
        (tmp_path / pkg / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg, importlib.import_module(pkg).THINGS
    for mod in [m for m in sys.modules if m == pkg or m.startswith(pkg + ".")]:
        del sys.modules[mod]


def test_a_module_that_fails_to_import_fails_only_its_own_names(things):
    pkg, reg = things
    assert reg.names() == ["good"] and reg.get("good").summary() == "Works."
    with pytest.raises(BenchError, match=rf"^thing 'bad' is unavailable: module {pkg}.bad failed to "
                       "import: ModuleNotFoundError: No module named 'a_dependency_that_is_not_installed'"):
        reg.get("bad")
    # what a module registered before failing points into a broken module: dropped, and blamed
    assert "half" not in reg
    with pytest.raises(BenchError, match="thing 'half' is unavailable: .*RuntimeError: boom"):
        reg.get("half")
    with pytest.raises(BenchError, match=rf"unknown thing 'goo'. Did you mean 'good'\? Known: good .*"
                       rf"Not loaded: module {pkg}.quiet failed to import: ImportError: needs libfoo"):
        reg.get("goo")
    assert set(reg.failures()) == {"bad", "half", f"{pkg}.quiet"}
    assert reg.get("good").__name__ == "Good"  # still there after every failed lookup


def test_a_failing_entry_point_fails_only_its_name(monkeypatch):
    class EP:
        name, value = "plugged", "thirdparty.mod:Thing"

        def load(self):
            raise ImportError("thirdparty is broken")

    monkeypatch.setattr("bench.core.registry.entry_points",
                        lambda group: [EP()] if group == "bench.things" else [])
    reg = Registry("things", [])
    reg.register("builtin")(type("Builtin", (Plugin,), {}))
    assert reg.names() == ["builtin"]
    with pytest.raises(BenchError, match="thing 'plugged' is unavailable: entry point plugged = "
                       "thirdparty.mod:Thing failed to load: ImportError: thirdparty is broken"):
        reg.get("plugged")


def test_registration_checks_the_base_class():
    class Base(Plugin):
        pass

    reg = Registry("things", [], base=Base)
    with pytest.raises(TypeError, match=r"thing 'x': Other is not a subclass of .*Base"):
        reg.register("x")(type("Other", (Plugin,), {}))
    with pytest.raises(TypeError, match="thing 'f': .* is not a subclass"):
        reg.register("f")(lambda: None)
    assert "x" not in reg and "f" not in reg
    factories = Registry("factories", [], what="factory")  # no base class: any callable
    factories.register("f")(len)
    with pytest.raises(TypeError, match="factory 'n': 3 is not callable"):
        factories.register("n")(3)


def test_every_registry_knows_its_base_class():
    assert (DATASETS.base, MODELS.base, METRICS.base, FEATURES.base, EXECUTORS.base) == (
        DatasetSource, ModelSource, Metric, FeatureExtractor, Executor)
    assert CLASSIFIERS.base is Classifier  # one plugin class per classifier
    with pytest.raises(TypeError, match="not a subclass of bench.metrics.base.Metric"):
        METRICS.register("not_a_metric")(type("NotAMetric", (Plugin,), {}))
    assert "not_a_metric" not in METRICS


def test_plugins_are_abcs_and_every_registered_plugin_is_concrete():
    assert "build" in ModelSource.__abstractmethods__

    class NoBuild(ModelSource):
        pass

    with pytest.raises(TypeError, match="abstract method"):
        NoBuild()
    for reg in (DATASETS, MODELS, METRICS, FEATURES, EXECUTORS):
        for name, cls in reg.items():
            assert not inspect.isabstract(cls), f"{reg.kind} '{name}': {cls.__abstractmethods__}"
    assert {n for n, c in MODELS.items() if c.trainable} == {"baseline", "cgan"}


def test_scoped_registration_registers_and_removes():
    class Temp(Metric):
        """Temporary (test only)."""

        def compute(self, generator, dataset, ctx):
            return {}

    with METRICS.scoped({"test_temp": Temp}):
        assert METRICS.get("test_temp") is Temp and Temp.name == "test_temp"
    assert "test_temp" not in METRICS
    with pytest.raises(RuntimeError), METRICS.scoped({"test_temp": Temp}):
        raise RuntimeError
    assert "test_temp" not in METRICS
    with pytest.raises(ValueError, match="registered twice"), METRICS.scoped({"fid": Temp}):
        pass
    assert METRICS.get("fid") is not Temp
