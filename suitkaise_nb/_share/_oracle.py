"""What will the caller do with this attribute? (read from the caller's bytecode)

``share.count += 1`` is, to Python, a read followed by a write: two round trips and a lost
update when two processes interleave. To make it one atomic operation on the server, the
Share's ``__getattr__`` looks at the instruction that asked for the attribute and at the ones
after it (cached per code object and offset, so the cost is one dict lookup):

=================================  =========  ===============================================
caller writes                      usage      what __getattr__ returns
=================================  =========  ===============================================
``share.obj.method(...)``          method     a callable that runs the method on the server
``share.obj.method(...)`` alone    method-    the same, and nobody needs the value: the call
(a statement)                      discard    may be sent without waiting for its answer
``share.obj.attr`` (chained),      chain      a lazy path: the next access goes to the server
``share.obj.attr = v``,
``share.obj.attr += v``,
``del share.obj.attr``
``share.x += y``                   aug        a marker; the following STORE_ATTR sends one
                                              atomic in-place operation
``share.x += y`` (unprotected)     aug-       the same; its answer may be read later
                                   discard
``share.d[k] += y``                augitem    the same for one item of a container
                                   (-discard)
``handle[k] += y`` (at the          augsub     a marker, as for ``aug``; the STORE_SUBSCR
subscript of a handle)             (-discard) sends one atomic in-place operation
``share.d[k] = v``, ``del ...``,   item       a lazy path; the subscript runs on the server
``share.d[k]``, ``share.d[k].m()``            (``_Proxy.__getitem__`` asks the oracle again
                                              at the BINARY_SUBSCR: a chained use extends
                                              the path, anything else reads the item)
anything else (``v = share.x``)    value      the current value (a copy)
=================================  =========  ===============================================

"Unprotected" means outside every ``try`` and ``with`` block of the caller (read from the code
object's exception table): there, an error can only propagate, so the Share may raise it at
a later synchronization point (see ``_share``). Inside one, the code may catch the error, so
the operation waits and raises on its own line; ``method-discard`` then becomes ``method``,
``aug-discard`` ``aug`` and ``augitem-discard`` ``augitem``.

Unknown bytecode shapes (other Python versions, C callers such as ``getattr``) fall back to
"value", which is always correct for reads.
"""

from __future__ import annotations

import bisect
import dis
import sys
from types import CodeType, FrameType

_INPLACE = {
    "+=": "iadd",
    "-=": "isub",
    "*=": "imul",
    "/=": "itruediv",
    "//=": "ifloordiv",
    "%=": "imod",
    "**=": "ipow",
    "<<=": "ilshift",
    ">>=": "irshift",
    "&=": "iand",
    "|=": "ior",
    "^=": "ixor",
    "@=": "imatmul",
}
_ATTR_USES = {"LOAD_ATTR", "LOAD_METHOD", "STORE_ATTR", "DELETE_ATTR"}
_SUBSCRIPTS = {"STORE_SUBSCR", "DELETE_SUBSCR", "BINARY_SUBSCR"}
_SLICES = {"STORE_SLICE", "BINARY_SLICE"}  # Python 3.12+: container, start, stop
# loads that consume the top of the stack (or are attribute loads, handled above)
_NOT_PURE_LOADS = {
    "LOAD_ATTR",
    "LOAD_METHOD",
    "LOAD_SUPER_ATTR",
    "LOAD_FROM_DICT_OR_DEREF",
    "LOAD_FROM_DICT_OR_GLOBALS",
    "LOAD_CLASSDEREF",
}
_JUMPS = set(dis.hasjrel) | set(dis.hasjabs)

_Analysis = tuple[list[dis.Instruction], dict[int, int], list[tuple[int, int]] | None]
_code_cache: dict[CodeType, _Analysis] = {}
_usage_cache: dict[tuple[CodeType, int], str] = {}
#: a usage whose answer nobody waits for -> the same usage when an error may be caught there
_WAITING = {
    "method-discard": "method",
    "aug-discard": "aug",
    "augitem-discard": "augitem",
    "augsub-discard": "augsub",
}


def _instructions(code: CodeType) -> _Analysis:
    found = _code_cache.get(code)
    if found is None:
        ins = list(dis.get_instructions(code))
        found = (ins, {i.offset: n for n, i in enumerate(ins)}, _handled_ranges(code))
        if len(_code_cache) > 4096:
            _code_cache.clear()
        _code_cache[code] = found
    return found


def _handled_ranges(code: CodeType) -> list[tuple[int, int]] | None:
    """The byte ranges of ``code`` covered by an exception handler (``try``, ``with``, an
    ``except`` body's cleanup); None when the table cannot be read (then every offset counts
    as covered)."""
    parse = getattr(dis, "_parse_exception_table", None)
    if parse is None:
        return None
    try:
        return [(e.start, e.end) for e in parse(code)]
    except Exception:
        return None


def _protected(ranges: list[tuple[int, int]] | None, offset: int) -> bool:
    return ranges is None or any(start <= offset < end for start, end in ranges)


def usage(frame: FrameType | None) -> str:
    """How the attribute being fetched by ``frame``'s current instruction will be used."""
    if frame is None:
        return "value"
    code = frame.f_code
    key = (code, frame.f_lasti)
    found = _usage_cache.get(key)
    if found is None:
        try:
            found = _analyze(code, frame.f_lasti)
        except Exception:
            found = "value"
        if len(_usage_cache) > 65536:
            _usage_cache.clear()
        _usage_cache[key] = found
    return found


_protected_cache: dict[tuple[CodeType, int], bool] = {}


def protected(frame: FrameType) -> bool:
    """Is ``frame``'s current instruction inside a ``try`` or ``with`` block (where an error
    may be caught, so that an operation there must wait and raise on its own line)?"""
    key = (frame.f_code, frame.f_lasti)
    found = _protected_cache.get(key)
    if found is None:
        try:
            found = _protected(_instructions(frame.f_code)[2], frame.f_lasti)
        except Exception:
            found = True
        if len(_protected_cache) > 65536:
            _protected_cache.clear()
        _protected_cache[key] = found
    return found


def _is_method_load(ins: dis.Instruction) -> bool:
    if ins.opname == "LOAD_METHOD":
        return True
    # Python 3.12+: LOAD_ATTR with the low bit of its argument set loads a method
    return sys.version_info >= (3, 12) and ins.opname == "LOAD_ATTR" and bool((ins.arg or 0) & 1)


def _analyze(code: CodeType, lasti: int) -> str:
    ins, index, ranges = _instructions(code)
    n = index.get(lasti)
    if n is None:
        # inside an instruction's inline cache: a specialized instruction that calls Python
        # code itself (3.11's BINARY_SUBSCR_GETITEM calling ``__getitem__``) leaves the
        # caller's f_lasti on its last cache entry
        n = bisect.bisect_right(ins, lasti, key=lambda i: i.offset) - 1
        if n < 0:
            return "value"
    found = _shape(ins, n)
    if found in _WAITING and _protected(ranges, lasti):
        return _WAITING[found]
    return found


def _shape(ins: list[dis.Instruction], n: int) -> str:
    cur = ins[n]
    if _is_method_load(cur):
        return "method-discard" if _result_discarded(ins, n) else "method"
    if cur.opname == "LOAD_ATTR":
        if _aug_attr(ins, n, cur.argval):
            return "aug-discard"
    elif cur.opname != "BINARY_SUBSCR":
        return "value"
    elif n >= 2 and _aug_item(ins, n - 2):
        return "augsub-discard"  # ``handle[k] += y``: this read is the in-place one
    found = _consumer(ins, n + 1)
    return "augitem-discard" if found == "augitem" else found


def _consumer(ins: list[dis.Instruction], m: int) -> str:
    """How the object just pushed (before ``ins[m]``) is used: through an attribute
    ("chain"), through a subscript ("item", "augitem"), or as a plain value."""
    if m >= len(ins):
        return "value"
    first = ins[m]
    if first.opname in _ATTR_USES:
        return "chain"
    if (
        first.opname == "COPY"
        and first.arg == 1
        and m + 1 < len(ins)
        and ins[m + 1].opname == "LOAD_ATTR"
        and not _is_method_load(ins[m + 1])
        and _aug_attr(ins, m + 1, ins[m + 1].argval)
    ):
        return "chain"  # ``share.obj.attr += v``
    # a subscript: the key is computed on top of the object, then consumed with it
    if not (first.opname.startswith("LOAD_") or first.opname == "PUSH_NULL"):
        return "value"
    if first.opname in _NOT_PURE_LOADS:
        return "value"
    depth = 1
    for j in range(m, min(m + 64, len(ins))):
        i = ins[j]
        if j > m:
            if depth == 2:
                if i.opname in _SUBSCRIPTS:
                    return "item"
                if i.opname == "COPY" and i.arg == 2:
                    return "augitem" if _aug_item(ins, j) else "value"
            elif depth == 3 and i.opname in _SLICES:
                return "item"
        if i.opname == "SWAP" or i.opcode in _JUMPS:
            return "value"
        try:
            depth += dis.stack_effect(i.opcode, i.arg, jump=False)
        except ValueError:
            return "value"
        if depth < 2:
            return "value"
    return "value"


def _result_discarded(ins: list[dis.Instruction], n: int) -> bool:
    """After a method load: is the call's value thrown away (``obj.m(...)`` as a statement)?"""
    depth = 2  # the method and its self (or NULL)
    for k in range(n + 1, min(n + 200, len(ins))):
        i = ins[k]
        if i.opname == "CALL":
            # 3.11: PRECALL has already popped the arguments; 3.12+: CALL pops them
            ours = depth == 2 if ins[k - 1].opname == "PRECALL" else depth == (i.arg or 0) + 2
            if ours:
                return k + 1 < len(ins) and ins[k + 1].opname == "POP_TOP"
        if i.opcode in dis.hasjrel or i.opcode in dis.hasjabs or i.opname.startswith("RETURN"):
            return False
        try:
            depth += dis.stack_effect(i.opcode, i.arg, jump=False)
        except ValueError:
            return False
        if depth < 2:
            return False
    return False


def _aug_attr(ins: list[dis.Instruction], n: int, name: str) -> str:
    """``X.name += rhs``: LOAD_ATTR name, <rhs>, BINARY_OP (inplace), SWAP 2, STORE_ATTR name."""
    depth = 1
    for k in range(n + 1, min(n + 64, len(ins))):
        i = ins[k]
        if i.opname == "BINARY_OP" and depth == 2:
            op = _INPLACE.get(i.argrepr)
            if (
                op
                and k + 2 < len(ins)
                and ins[k + 1].opname == "SWAP"
                and ins[k + 1].arg == 2
                and ins[k + 2].opname == "STORE_ATTR"
                and ins[k + 2].argval == name
            ):
                return "aug:" + op
            return ""
        if i.opcode in _JUMPS or i.opname.startswith("RETURN"):
            return ""
        try:
            depth += dis.stack_effect(i.opcode, i.arg, jump=False)
        except ValueError:
            return ""
        if depth < 1:
            return ""
    return ""


def _aug_item(ins: list[dis.Instruction], k: int) -> bool:
    """After ``LOAD_ATTR x; <load key>``: COPY 2, COPY 2, BINARY_SUBSCR, <rhs>, BINARY_OP
    (inplace), SWAP 3, SWAP 2, STORE_SUBSCR."""
    if k + 2 >= len(ins):
        return False
    if not (ins[k].opname == "COPY" and ins[k + 1].opname == "COPY"):
        return False
    if ins[k + 2].opname != "BINARY_SUBSCR":
        return False
    depth = 0
    for j in range(k + 3, min(k + 64, len(ins))):
        i = ins[j]
        if i.opname == "BINARY_OP" and depth == 1:
            return (
                i.argrepr in _INPLACE
                and j + 3 < len(ins)
                and ins[j + 1].opname == "SWAP"
                and ins[j + 2].opname == "SWAP"
                and ins[j + 3].opname == "STORE_SUBSCR"
            )
        if i.opcode in _JUMPS:
            return False
        try:
            depth += dis.stack_effect(i.opcode, i.arg, jump=False)
        except ValueError:
            return False
    return False


def inplace_symbol(name: str) -> str:
    """``"iadd"`` -> ``"+="`` (for messages)."""
    return next((sym for sym, op in _INPLACE.items() if op == name), "op=")
