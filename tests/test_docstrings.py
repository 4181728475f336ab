"""Every public name has a docstring that names its parameters and states units and shapes.

Public names: ``__all__`` of :mod:`jaxspec` and of each public subpackage or module
(:data:`PUBLIC_MODULES`; every one of them defines ``__all__``), and, for the classes among
them, their public methods and properties (names without a leading ``_``) defined in
jaxspec itself, not inherited from ``object``, ``tuple``/``NamedTuple``, ``Protocol`` or Flax.

The rules, checked for all names at once (each test collects every offender, then fails
with the full list):

(a) ``test_every_public_name_has_a_docstring``: every public module, function, class,
    method and property has a non-empty docstring (:func:`inspect.getdoc`; for a method, an
    inherited docstring does not count), and every public constant has a Sphinx ``#:``
    doc comment (or a docstring after its assignment), which is what autodoc shows for data.
(b) ``test_every_parameter_is_named_in_the_docstring``: every parameter of a public
    function or method (except ``self``/``cls``), and every constructor argument or field
    of a public class, appears by name, as a whole word, in the docstring (for a class: its
    docstring or its own ``__init__``'s). ``*args``/``**kwargs`` count as parameters too:
    ``options`` is satisfied by "``**options``" or "fit options", not by "other keywords".
(c) ``test_physical_arguments_state_units_and_shapes``: a public callable or property whose
    parameters (fields, or its own name, for a property) include a physical quantity
    (:data:`PHYSICAL`: wavelengths, velocities, temperatures, fluxes and their errors,
    labels, resolving powers) states, for each kind present, its unit (wavelengths in
    Angstrom, velocities in km/s, Teff in K, fluxes normalized or in stated units, labels by
    their units, resolution as a resolving power); and where one of them is an array, an
    array shape such as ``(P,)``, ``(N, P)`` or ``(n_pix,)`` (:data:`SHAPE_RE`).
(d) ``test_docstrings_are_valid_rst``: each docstring, after napoleon (Google and NumPy
    sections, as configured in ``docs/conf.py``), parses as reStructuredText without any
    docutils warning (unbalanced backticks, a stray ``*`` read as emphasis, a bad
    indentation, a list without a blank line before it...) and without section titles,
    which autodoc rejects inside a docstring. The documentation is built with ``-W``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import io
import pkgutil
import re
import types
import typing

import pytest

PUBLIC_MODULES = (
    "jaxspec",
    "jaxspec.io",
    "jaxspec.physics",
    "jaxspec.emulator",
    "jaxspec.linelist",
    "jaxspec.fit",
    "jaxspec.infer",
    "jaxspec.models",
    "jaxspec.survey",
    "jaxspec.simulate",
    "jaxspec.clone",
    "jaxspec.amortized",
    "jaxspec.instruments",
    "jaxspec.latent",
    "jaxspec.surveymap",
)

# Names in an ``__all__`` that are not ours to document: the version string (``jaxspec._version``).
NOT_DOCUMENTED = {"__version__"}

# ------------------------------------------------------------------ the unit and shape rules

# A shape is a parenthesized tuple with at least one comma whose items are shape symbols:
# an upper-case symbol (P, N, L, N_lines), an ``n_``-name (n_pix, n_parameters), a lower-case
# one-letter symbol (n, k, m), a number, ``...`` or ``*``; e.g. "(P,)", "(N, P)", "(n_pix,)",
# "(..., P)", "(2, N)". The comma keeps parenthetical prose, "(default 3)", "(in km/s)", out;
# the restricted items keep out lists in prose such as "(teff, logg)". A broadcast statement
# ("any shape", "same shape as ...", "broadcast ...") and "scalar" count as shapes too.
_SHAPE_ITEM = r"(?:\.\.\.|\*|\d+|[A-Z][A-Za-z0-9_]*|n_[a-z0-9_]+|[a-z])"
SHAPE_RE = re.compile(
    rf"\(\s*{_SHAPE_ITEM}\s*,(?:\s*{_SHAPE_ITEM}\s*,)*\s*(?:{_SHAPE_ITEM}\s*)?\)"
    r"|\bany shape\b|\bsame shape\b|\bbroadcast|\bscalars?\b"
)

# The units of each kind of physical quantity, as written in the docstrings: a unit in
# brackets ("[A]", "[A, vacuum]", "[km/s]", "[K]", "[dex]"), a value with its unit ("5000 A",
# "5800 K") or the unit's name in words ("Angstrom", "km/s", "Kelvin"). Fluxes are
# continuum-normalized or their units are stated otherwise ("any units", "units as the file
# gives them", "erg/s/cm^2/A", a continuum that "need not be normalized"),
# labels have per-label units (K, dex...), a resolution is a resolving power R = lambda /
# delta-lambda. Each pattern fails on a docstring that only says "wavelengths" or "velocity".
ANGSTROM_RE = r"\[\s*(?:A|Å|Angstroms?)\s*[\],;]|\bAngstroms?\b|Å|\d\s*A\b"
KMS_RE = r"km\s*/\s*s|km\s+s\^?-1"
KELVIN_RE = r"\[\s*K\s*\]|\bKelvin\b|\d\s*K\b"
FLUX_UNIT_RE = (r"normali[sz]|continuum|\bunits? (?:of|as)\b|"
                r"\b(?:flux|same|any|arbitrary|file's|physical|its) units\b|\bunitless\b|\bdimensionless\b|"
                r"erg\b|\bJy\b")
LABEL_UNIT_RE = r"\[\s*(?:K|dex|km/s)[^\]\n]*\]|\bdex\b|label units|units of the labels|\bin label units\b"
RESOLUTION_RE = r"resolving power|\bR\s*=|λ\s*/\s*Δλ|lambda\s*/\s*(?:delta|d)\s*-?\s*lambda"

# (pattern on the parameter name, unit pattern, what the unit is, is the quantity an array)
PHYSICAL = (
    (r"wave(?:_(?:air|vac|obs|in|out))?|obs_wave|model_wave", ANGSTROM_RE, "Angstrom", True),
    (r"wave_(?:min|max)", ANGSTROM_RE, "Angstrom", False),
    (r"rv(?:_\d)?|vsini(?:_\d)?", KMS_RE, "km/s", True),
    (r"rv_(?:max|step|range)|vsini_max|min_rv_difference|\w+_kms|vmic|vmacro", KMS_RE, "km/s", False),
    (r"teff(?:_\d)?", KELVIN_RE, "K", True),
    (r"flux|flux_obs|model_flux|err|ivar|unc", FLUX_UNIT_RE, "normalized / stated flux units", True),
    (r"labels", LABEL_UNIT_RE, "label units ([K], [dex])", True),
    (r"resolution|resolution_obs", RESOLUTION_RE, "resolving power", True),
)
_PHYSICAL = tuple((re.compile(rf"(?:{name})\Z"), re.compile(unit), what, array)
                  for name, unit, what, array in PHYSICAL)


# ------------------------------------------------------------------ collecting the public names


@dataclasses.dataclass
class Entry:
    """One public name: what it is, its docstring and the argument names its docstring must cover."""

    qualname: str
    kind: str  # module, function, class, method, property, field (with a #: comment), data
    obj: object
    doc: str
    params: tuple = ()  # (name, is_variadic)
    owner: type | None = None


def _ours(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "jaxspec"


def _signature_params(fn, drop_first: bool) -> tuple:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return ()
    params = list(sig.parameters.values())
    if drop_first and params:
        params = params[1:]
    return tuple((p.name, p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)) for p in params)


def _own_doc(obj) -> str:
    """The docstring of obj itself (methods: not one inherited from a base class)."""
    doc = getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _class_fields(cls) -> list[str]:
    """Annotated public attributes (dataclass and NamedTuple fields, Protocol attributes) of our classes."""
    names = []
    for klass in reversed(cls.__mro__):
        if not _ours(klass):
            continue
        for name, ann in vars(klass).get("__annotations__", {}).items():
            if name.startswith("_") or name in names or "ClassVar" in str(ann):
                continue
            names.append(name)
    return names


@functools.cache
def _doc_comments(modname: str) -> dict[tuple[str, str], str]:
    """Attribute docs of a module as autodoc reads them: ``{(class qualname or "", name): text}``.

    The forms of :class:`sphinx.pycode.ModuleAnalyzer` (without needing Sphinx): ``#:`` comment
    lines right above an assignment, a ``#:`` comment after it on its line, or a string
    statement right after it; at module level and in (nested) class bodies.
    """
    source = inspect.getsource(importlib.import_module(modname))
    lines = source.splitlines()
    out: dict[tuple[str, str], str] = {}

    def visit(body, owner):
        for i, node in enumerate(body):
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{owner}.{node.name}" if owner else node.name)
                continue
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            else:
                continue
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            above, k = [], node.lineno - 2
            while k >= 0 and lines[k].strip().startswith("#:"):
                above.insert(0, lines[k].strip()[2:].strip())
                k -= 1
            text = "\n".join(above)
            trailing = re.search(r"#:\s*(.*)$", lines[node.end_lineno - 1])
            if not text and trailing:
                text = trailing.group(1)
            after = body[i + 1] if i + 1 < len(body) else None
            if (not text and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                text = inspect.cleandoc(after.value.value)
            for name in names:
                if text.strip():
                    out[(owner, name)] = text.strip()

    visit(ast.parse(source).body, "")
    return out


def _attr_docs(cls) -> dict[str, str]:
    """Doc comments of the class's own fields (what autodoc shows for them), by name."""
    return {name: text for (owner, name), text in _doc_comments(cls.__module__).items()
            if owner == cls.__qualname__}


def _class_entries(qualname: str, cls) -> list[Entry]:
    """The class, then its fields that carry their own ``#:`` doc comment (documented apart)."""
    commented = _attr_docs(cls)
    init = next((vars(k)["__init__"] for k in cls.__mro__ if _ours(k) and "__init__" in vars(k)), None)
    doc = inspect.getdoc(cls) if cls.__doc__ else ""
    if init is not None and _ours(init) and init.__code__.co_filename != "<string>":
        # our own __init__ (not one that dataclasses generated, nor Protocol's placeholder)
        params = list(_signature_params(init, drop_first=True))
        doc = doc + "\n\n" + _own_doc(init)
    elif typing.Protocol in cls.__mro__ or issubclass(cls, BaseException):
        params = []  # a protocol is not instantiated; an exception takes a message
    else:
        params = list(_signature_params(cls, drop_first=False))
    known = {p for p, _ in params}
    params += [(f, False) for f in _class_fields(cls) if f not in known]
    params = [(p, var) for p, var in params if p not in commented]
    fields = [Entry(f"{qualname}.{name}", "field", cls, text) for name, text in commented.items()]
    return [Entry(qualname, "class", cls, doc.strip(), tuple(params)), *fields]


def _member_entries(qualname: str, cls) -> list[Entry]:
    entries, seen = [], set()
    for klass in cls.__mro__:
        if not _ours(klass):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            owner_name = f"{klass.__module__}.{klass.__qualname__}.{name}"
            if isinstance(value, (property, functools.cached_property)):
                fget = value.fget if isinstance(value, property) else value.func
                entries.append(Entry(owner_name, "property", value, _own_doc(fget), (), klass))
            elif isinstance(value, (staticmethod, classmethod)) or inspect.isfunction(value):
                fn = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
                drop = not isinstance(value, staticmethod)
                params = _signature_params(fn, drop)
                entries.append(Entry(owner_name, "method", fn, _own_doc(fn), params, klass))
            # else: a field's default, a NamedTuple field getter, a class constant:
            # documented with the class (rule b) or by a ``#:`` comment.
    return entries


def _defining_module(package: str, name: str, obj) -> str | None:
    """The module (package or one of its submodules) whose top level assigns ``name``."""
    mod = importlib.import_module(package)
    candidates = [package]
    if hasattr(mod, "__path__"):
        candidates += [m.name for m in pkgutil.walk_packages(mod.__path__, package + ".")]
    for modname in candidates:
        sub = importlib.import_module(modname)
        if vars(sub).get(name, None) is not obj:
            continue
        tree = ast.parse(inspect.getsource(sub))
        for node in tree.body:
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            else:
                continue
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return modname
    return None


def _data_doc(package: str, name: str, obj) -> str:
    modname = _defining_module(package, name, obj)
    return "" if modname is None else _doc_comments(modname).get(("", name), "")


@functools.cache
def public_entries() -> tuple[Entry, ...]:
    """Every public name once (an object exported by several modules counts once)."""
    entries, seen = [], set()
    for modname in PUBLIC_MODULES:
        mod = importlib.import_module(modname)
        if modname not in seen:
            seen.add(modname)
            entries.append(Entry(modname, "module", mod, inspect.getdoc(mod) or ""))
        assert hasattr(mod, "__all__"), f"{modname} has no __all__"
        for name in mod.__all__:
            if name in NOT_DOCUMENTED:
                continue
            obj = getattr(mod, name)
            if isinstance(obj, types.ModuleType):
                key = obj.__name__
                kind = "module"
            elif inspect.isclass(obj) or callable(obj):
                key = f"{obj.__module__}.{obj.__qualname__}"
                kind = "class" if inspect.isclass(obj) else "function"
            else:
                key = f"{modname}.{name}"
                kind = "data"
            if key in seen:
                continue
            seen.add(key)
            if kind == "module":
                entries.append(Entry(key, kind, obj, inspect.getdoc(obj) or ""))
            elif kind == "class":
                entries.extend(_class_entries(key, obj))
                entries.extend(e for e in _member_entries(key, obj) if e.qualname not in seen)
                seen.update(e.qualname for e in entries)
            elif kind == "function":
                fn = inspect.unwrap(obj)
                entries.append(Entry(key, kind, obj, inspect.getdoc(obj) or "", _signature_params(fn, False)))
            else:
                entries.append(Entry(key, kind, obj, _data_doc(modname, name, obj)))
    return tuple(entries)


def _report(title: str, offenders: list[str]) -> str:
    return f"{len(offenders)} {title}:\n  " + "\n  ".join(offenders)


def _word(name: str, doc: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?!\w)", doc) is not None


# ------------------------------------------------------------------ the tests


def test_public_names_are_collected():
    """The walk finds the whole API (a guard against a walk that silently checks nothing)."""
    kinds = {}
    for e in public_entries():
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    assert kinds.get("function", 0) >= 80 and kinds.get("class", 0) >= 20, kinds
    assert kinds.get("method", 0) >= 50 and kinds.get("property", 0) >= 20, kinds
    names = {e.qualname for e in public_entries()}
    assert "jaxspec.fit.binary.fit_binary" in names and "jaxspec.emulator.emulator.Emulator.flux" in names


def test_every_public_name_has_a_docstring():
    offenders = [f"{e.kind} {e.qualname}" for e in public_entries() if not e.doc.strip()]
    assert not offenders, _report("public names without a docstring", offenders)


def test_every_parameter_is_named_in_the_docstring():
    offenders = []
    for e in public_entries():
        if not e.doc:
            continue  # reported by test_every_public_name_has_a_docstring
        missing = [("*" if var else "") + name for name, var in e.params if not _word(name, e.doc)]
        if missing:
            offenders.append(f"{e.kind} {e.qualname}: {', '.join(missing)}")
    assert not offenders, _report("docstrings that do not name every parameter", offenders)


def _physical_kinds(names):
    """The PHYSICAL rows matched by any of the names, each with the first name that matched."""
    rows = []
    for name_re, unit_re, what, array in _PHYSICAL:
        hit = next((n for n in names if name_re.match(n)), None)
        if hit is not None:
            rows.append((hit, unit_re, what, array))
    return rows


def test_physical_arguments_state_units_and_shapes():
    offenders = []
    for e in public_entries():
        if not e.doc or e.kind in ("module", "data"):
            continue
        names = [n for n, _ in e.params]
        if e.kind in ("property", "field"):
            names = [e.qualname.rsplit(".", 1)[1]]
        problems = []
        rows = _physical_kinds(names)
        for name, unit_re, what, _ in rows:
            if not unit_re.search(e.doc):
                problems.append(f"no unit for {name} ({what})")
        arrays = [name for name, _, _, array in rows if array]
        if arrays and not SHAPE_RE.search(e.doc):
            problems.append(f"no shape such as (P,) or (N, P) for {', '.join(arrays)}")
        if problems:
            offenders.append(f"{e.kind} {e.qualname}: {'; '.join(problems)}")
    assert not offenders, _report("docstrings without units or shapes of physical arguments", offenders)


# ------------------------------------------------------------------ reStructuredText

# Sphinx's Python-domain roles and the directives napoleon writes (``.. attribute::`` for an
# Attributes section...), unknown to plain docutils: the roles become literals, the directives
# containers whose content is parsed, so that RST errors inside them are still found.
_SPHINX_ROLES = ("func", "class", "meth", "attr", "mod", "data", "exc", "obj", "const", "ref", "doc", "term",
                 "any")
_SPHINX_DIRECTIVES = ("attribute", "method", "function", "class", "data", "exception", "property",
                      "seealso", "versionadded", "versionchanged", "deprecated", "todo")


def _docutils_ready():
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives, roles

    def literal_role(name, rawtext, text, lineno, inliner, options=None, content=None):
        return [nodes.literal(rawtext, text)], []

    class AnyOptions(dict):
        def __missing__(self, key):
            return directives.unchanged

    class ObjectDirective(Directive):
        optional_arguments = 1
        final_argument_whitespace = True
        option_spec = AnyOptions()
        has_content = True

        def run(self):
            node = nodes.container()
            self.state.nested_parse(self.content, self.content_offset, node)
            return [node]

    for role in _SPHINX_ROLES:
        for name in (role, f"py:{role}"):
            roles.register_local_role(name, literal_role)
    for directive in _SPHINX_DIRECTIVES:
        for name in (directive, f"py:{directive}"):
            directives.register_directive(name, ObjectDirective)


def _rst_problems(e: Entry) -> list[str]:
    from docutils import nodes
    from docutils.core import publish_doctree
    from sphinx.ext.napoleon import Config
    from sphinx.ext.napoleon.docstring import GoogleDocstring, NumpyDocstring

    # As docs/conf.py configures napoleon (both styles on, NumPy first as in napoleon itself).
    config = Config(napoleon_google_docstring=True, napoleon_numpy_docstring=True, napoleon_use_rtype=False)
    what = {"property": "attribute", "field": "attribute", "data": "data"}.get(e.kind, e.kind)
    lines = e.doc.splitlines()
    lines = NumpyDocstring(lines, config, what=what, name=e.qualname).lines()
    lines = GoogleDocstring(lines, config, what=what, name=e.qualname).lines()
    stream = io.StringIO()
    tree = publish_doctree("\n".join(lines), settings_overrides={
        "report_level": 2, "halt_level": 5, "warning_stream": stream, "input_encoding": "unicode",
        "file_insertion_enabled": False, "raw_enabled": False})
    problems = [" ".join(line.split()) for line in stream.getvalue().splitlines()
                if re.search(r"\((WARNING|ERROR|SEVERE)/\d\)", line)]
    if any(isinstance(n, (nodes.section, nodes.title)) for n in tree.findall()):
        problems.append("a section title (autodoc rejects sections in a docstring)")
    return problems


def test_docstrings_are_valid_rst():
    pytest.importorskip("sphinx")
    _docutils_ready()
    offenders = []
    for e in public_entries():
        if e.doc:
            offenders += [f"{e.kind} {e.qualname}: {p}" for p in _rst_problems(e)]
    assert not offenders, _report("RST problems in docstrings", offenders)
