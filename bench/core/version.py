"""The package version, in a module that imports nothing.

Modules inside bench read it from here rather than from `bench` itself: importing the
package root from inside it would tie every such module to bench/__init__.py (an import
cycle through bench.api). pyproject.toml reads the same attribute (`dynamic = ["version"]`).
"""

__version__ = "0.1.0"
