"""Docstring templating shared by functions that take the same long argument lists."""


def fill_doc(marker: str, text: str):
    """Decorator that replaces the line ``[marker]`` of a function's docstring by ``text``.

    A docstring must be a string literal: ``"..." + SHARED + "..."`` in a function
    body leaves ``__doc__`` None, so shared argument descriptions are put in here.

    Args:
        marker: the placeholder's name, written ``[marker]`` on its own line.
        text: what replaces the line (it starts with a newline and is indented
            like the docstring it goes into).

    Raises:
        ValueError: when the decorated function's docstring lacks the placeholder.
    """
    line = f"\n        [{marker}]"

    def decorate(fn):
        if fn.__doc__ is None or line not in fn.__doc__:
            raise ValueError(f"{fn.__qualname__}'s docstring has no '[{marker}]' line")
        fn.__doc__ = fn.__doc__.replace(line, text)
        return fn

    return decorate
