"""Jinja2 templates, loaded from the package (`templates/` in the source tree)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _env():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("stackgen.templates", "."),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template: str, **context) -> str:
    return _env().get_template(template).render(**context)
