"""Build configuration that pyproject.toml cannot express: the C accelerator.

Everything else about the package lives in pyproject.toml.  The extension is
``optional``: where no C compiler (or no Python headers) is available, the
build prints a warning and goes on without it, and wsserver falls back to
pure Python (``wsserver.protocol.masking``).  ``pip install -e .`` builds it
in place, next to its source; after editing the C file, run it again.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "wsserver.protocol._speedups",
            sources=["wsserver/protocol/_speedups.c"],
            optional=True,
        )
    ]
)
