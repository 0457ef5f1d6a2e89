"""The HTML pages' template engine: Jinja2, autoescaping on, the templates beside this module
(covgan/output/templates/). Every value a page shows goes through it, so a file name or a
metadata value carrying markup is shown as text, never run as HTML.
"""

from __future__ import annotations

import functools

import jinja2


def number(value, spec: str = ".3f") -> str:
    """A number in `spec`, or "-" for a missing one (None)."""
    return "-" if value is None else format(value, spec)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("covgan.output", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             extensions=["jinja2.ext.do"],
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["number"] = number
    return env


def render(name: str, **context) -> str:
    """The template `name` filled with `context`."""
    return environment().get_template(name).render(**context)
