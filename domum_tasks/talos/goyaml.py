"""A block-style YAML emitter that makes go-yaml's choices, for the Image Factory's schematic ids.

The factory's id is sha256(yaml.Marshal(schematic)) (siderolabs/image-factory v1.5.0,
pkg/schematic/schematic.go `ID`/`Marshal`), with go.yaml.in/yaml/v4: `Marshal` is
`Dump(in, WithV3Defaults(), WithLineWidth(-1))` (yaml.go), i.e. indent 4, sequences indented
under their key, QuoteLegacy, unicode, no line wrapping. A scalar's style is chosen in three
stages of go-yaml v4.0.0-rc.6 (internal/libyaml/), mirrored below:

1. representer.go `stringv`: a string with "\\n" is literal (`|`) when `shouldUseLiteralStyle`
   (node.go: 2+ chars, not all whitespace), else double-quoted; YAML 1.1 booleans (`isOldBool`),
   base-60 floats (`isBase60Float`) and "<<" are single-quoted; anything else plain;
2. desolver.go `desolveScalar`: a plain string that would resolve to another tag (resolver.go
   `resolve`: true, null, "", 12, 0x1f, 1.5, 2024-01-02, ...) is double-quoted (QuoteLegacy);
3. emitter.go `analyzeScalar` + `selectScalarStyle`: plain only where the scalar analysis
   allows it in block context (a `:` or `#` not followed/preceded by a space stays plain), else
   single-quoted (`requiredQuoteStyle`), else double-quoted; a literal that is not
   `block_allowed` (trailing space, space before a break, special characters) is double-quoted.

The writers follow emitter.go's `writePlainScalar`, `writeSingleQuotedScalar`,
`writeDoubleQuotedScalar`, `writeBlockScalarHints`/`writeLiteralScalar`, `writeIndent` and
`increaseIndentCompact`, with the column/whitespace/indention state they share. Values: str,
bool, int, None, dict (emitted in its order: the caller orders struct fields; `sorted_keys`
gives go-yaml's map order for string keys) and list. No flow style except `{}` and `[]`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

BEST_INDENT = 4  # WithV3Defaults: WithIndent(4)
_BREAKS = "\r\n\x85\u2028\u2029"  # scanner.go isLineBreak
_OLD_BOOLS = frozenset("y Y yes Yes YES on On ON n N no No NO off Off OFF".split())  # noqa: SIM905
_RESOLVE_MAP = frozenset(  # resolver.go resolveMapList, plus "" (null)
    "true True TRUE false False FALSE ~ null Null NULL .nan .NaN .NAN .inf .Inf .INF "  # noqa: SIM905
    "+.inf +.Inf +.INF -.inf -.Inf -.INF -0 -0.0 <<".split()
) | {""}
_BASE60 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")  # representer.go
_YAML_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_GO_INT = re.compile(r"^[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$")
_DOT_FLOAT = re.compile(r"^\.[0-9]+(?:[eE][-+]?[0-9]+)?$")
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt]\d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?(?:Z|[-+]\d{2}:\d{2}))"
    r"|(?: \d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?))?$"
)
PLAIN, SINGLE, DOUBLE, LITERAL = "plain", "single", "double", "literal"


def _resolves_to_str(s: str) -> bool:
    """resolver.go `resolve("", s)` answers !!str (approximating Go's time/strconv parsers)."""
    if s in _RESOLVE_MAP:
        return False
    hint = s[0]
    if hint == ".":  # strconv.ParseFloat; overflow is an error (ErrRange)
        return not (_DOT_FLOAT.match(s) and not math.isinf(float(s)))
    if hint not in "+-0123456789":
        return True
    if m := _TIMESTAMP.match(s):  # allowedTimestampFormats; time.Parse checks the date
        try:
            date(int(m[1]), int(m[2]), int(m[3]))
            return False
        except ValueError:
            pass
    plain = s.replace("_", "")
    if _GO_INT.match(plain):  # strconv.ParseInt/ParseUint(plain, 0, 64)
        value = int(plain, 8 if re.match(r"^[-+]?0[0-7]", plain) else 0)
        if -(2**63) <= value < 2**64 and not (value >= 2**63 and plain[0] in "+-"):
            return False
    if _YAML_FLOAT.match(plain):
        return math.isinf(float(plain))  # ParseFloat fails with ErrRange on overflow
    return True


def _go_space(c: str) -> bool:
    """Go's unicode.IsSpace (Python's isspace also counts the \\x1c-\\x1f separators)."""
    return c in "\t\n\v\f\r \x85\xa0" or (ord(c) > 0xFF and c.isspace())


def _printable(c: str) -> bool:
    """scanner.go isPrintable, per code point (4-byte UTF-8 characters are not printable)."""
    o = ord(c)
    return (
        o == 0x0A
        or 0x20 <= o <= 0x7E
        or 0xA0 <= o <= 0xD7FF
        or (0xE000 <= o <= 0xFFFD and o != 0xFEFF)
    )


def _analyze(s: str) -> tuple[bool, bool, bool, bool]:
    """emitter.go analyzeScalar in block context: (multiline, plain, single, block) allowed."""
    if not s:
        return False, True, True, False
    block_ind = s.startswith(("---", "..."))
    breaks = special = tabs = lead_sp = lead_br = trail_sp = trail_br = False
    break_space = space_break = prev_space = prev_break = False
    preceded_by_ws = True
    for i, c in enumerate(s):
        followed_by_ws = i + 1 >= len(s) or s[i + 1] in " \t"
        if i == 0:
            if c in "#,[]{}&*!|>'\"%@`" or (c in "?:-" and followed_by_ws):
                block_ind = True
        elif (c == ":" and followed_by_ws) or (c == "#" and preceded_by_ws):
            block_ind = True
        if c == "\t":
            tabs = True
        elif not _printable(c):
            special = True
        if c == " ":
            lead_sp = lead_sp or i == 0
            trail_sp = trail_sp or i == len(s) - 1
            break_space = break_space or prev_break
            prev_space, prev_break = True, False
        elif c in _BREAKS:
            breaks = True
            lead_br = lead_br or i == 0
            trail_br = trail_br or i == len(s) - 1
            space_break = space_break or prev_space
            prev_space, prev_break = False, True
        else:
            prev_space = prev_break = False
        preceded_by_ws = c in " \t\0" or c in _BREAKS
    plain = not (lead_sp or lead_br or trail_sp or trail_br or break_space)
    plain = plain and not (space_break or tabs or special or breaks or block_ind)
    single = not (break_space or space_break or tabs or special)
    block = not (trail_sp or space_break or special)
    return breaks, plain, single, block


def scalar_style(s: str, *, simple_key: bool = False) -> str:
    """The style go-yaml Marshal gives string `s` in block context (see the module doc)."""
    if "\n" in s:  # representer.stringv
        literal = len(s) >= 2 and not all(_go_space(c) for c in s)
        style = LITERAL if literal else DOUBLE
    elif _BASE60.match(s) or s in _OLD_BOOLS or s == "<<":
        style = SINGLE
    else:
        style = PLAIN
    if style == PLAIN and not _resolves_to_str(s):  # desolver: QuoteLegacy -> double
        style = DOUBLE
    multiline, plain_ok, single_ok, block_ok = _analyze(s)  # emitter.selectScalarStyle
    if simple_key and multiline:
        style = DOUBLE
    if style == PLAIN and (not plain_ok or (not s and simple_key)):
        style = SINGLE
    if style == SINGLE and not single_ok:
        style = DOUBLE
    if style == LITERAL and (not block_ok or simple_key):
        style = DOUBLE
    return style


_ESCAPES = {
    0x00: "0", 0x07: "a", 0x08: "b", 0x09: "t", 0x0A: "n", 0x0B: "v", 0x0C: "f", 0x0D: "r",
    0x1B: "e", 0x22: '"', 0x5C: "\\", 0x85: "N", 0xA0: "_", 0x2028: "L", 0x2029: "P",
}  # fmt: skip


class _Out:
    """The emitter's output and the state its writers share (column, whitespace, indention)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True

    def put(self, text: str) -> None:
        self.parts.append(text)
        self.column += len(text)

    def line_break(self, c: str = "\n") -> None:
        self.parts.append(c)
        self.column = 0
        self.indention = True

    def indent(self, indent: int) -> None:  # writeIndent
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.line_break()
        self.put(" " * max(0, indent - self.column))
        self.whitespace = True

    def indicator(self, text: str, need_ws: bool, is_ws: bool, is_indention: bool) -> None:
        if need_ws and not self.whitespace:
            self.put(" ")
        self.put(text)
        self.whitespace = is_ws
        self.indention = self.indention and is_indention

    def text(self) -> str:
        return "".join(self.parts)


def _write_scalar(out: _Out, s: str, style: str, indent: int) -> None:
    """processScalar: `indent` is the scalar's own (emitScalar's increaseIndent)."""
    if style == PLAIN:
        if s and not out.whitespace:
            out.put(" ")
        out.put(s)  # a plain scalar has no breaks (analyzeScalar forbids them)
        out.whitespace = out.whitespace and not s
        out.indention = False
    elif style == SINGLE:
        out.indicator("'", True, False, False)
        breaks = False
        for c in s:  # no wrapping: the line width is unlimited
            if c in _BREAKS:
                if not breaks and c == "\n":
                    out.line_break()
                out.line_break(c)
                breaks = True
            else:
                if breaks:
                    out.indent(indent)
                out.put("''" if c == "'" else c)
                out.indention = breaks = False
        out.indicator("'", False, False, False)
        out.whitespace = out.indention = False
    elif style == DOUBLE:
        out.indicator('"', True, False, False)
        bom = s.startswith("\ufeff")  # isBOM looks at the value's start, whatever i is
        for c in s:
            o = ord(c)
            if not _printable(c) or bom or c in _BREAKS or c in '"\\':
                esc = _ESCAPES.get(o)
                if esc is None:
                    esc = f"x{o:02X}" if o <= 0xFF else f"u{o:04X}" if o <= 0xFFFF else f"U{o:08X}"
                out.put("\\" + esc)
            else:
                out.put(c)
        out.indicator('"', False, False, False)
        out.whitespace = out.indention = False
    else:
        _write_literal(out, s, indent)


def _write_literal(out: _Out, s: str, indent: int) -> None:
    out.indicator("|", True, False, False)
    if s[0] == " ":  # writeBlockScalarHints: go-yaml writes BestIndent (go-yaml#65)
        out.indicator(str(BEST_INDENT), False, False, False)
    chomp = ""  # clip for one final break, strip for none, keep for more
    if s[-1] not in _BREAKS:
        chomp = "-"
    elif len(s) == 1 or s[-2] in _BREAKS:
        chomp = "+"
    if chomp:  # (writing it resets the OpenEnded that `+` set: no "..." follows)
        out.indicator(chomp, False, False, False)
    out.line_break()  # processLineCommentLinebreak(true), no comment
    out.whitespace = True
    breaks = True
    for c in s:
        if c in _BREAKS:
            out.line_break(c)
            breaks = True
        else:
            if breaks:
                out.indent(indent)
            out.put(c)
            out.indention = breaks = False


def _child_indent(indent: int, in_sequence: bool) -> int:
    """increaseIndentCompact: +2 inside a sequence item, else the next multiple of 4."""
    if indent < 0:
        return 0
    return indent + 2 if in_sequence else BEST_INDENT * ((indent + BEST_INDENT) // BEST_INDENT)


def _node(out: _Out, value: object, indent: int, in_sequence: bool) -> None:
    child = _child_indent(indent, in_sequence)
    if isinstance(value, Mapping):
        if not value:
            out.indicator("{", True, True, False)
            out.indicator("}", False, False, False)
            return
        for key, item in value.items():
            # checkSimpleKey: longer or multi-line keys become `? key` (never in a schematic)
            if not isinstance(key, str) or len(key) > 128 or any(c in _BREAKS for c in key):
                raise ValueError(f"unsupported mapping key {key!r}")
            out.indent(child)
            _write_scalar(out, key, scalar_style(key, simple_key=True), child)
            out.indicator(":", False, False, False)
            _node(out, item, child, False)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if not value:
            out.indicator("[", True, True, False)
            out.indicator("]", False, False, False)
            return
        for item in value:
            out.indent(child)
            out.indicator("-", True, False, True)
            _node(out, item, child, True)
    elif isinstance(value, str):
        _write_scalar(out, value, scalar_style(value), child)
    elif value is None or isinstance(value, (bool, int)):  # boolv/intv: plain, Go spelling
        text = (
            "null"
            if value is None
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        _write_scalar(out, text, PLAIN, child)
    else:
        raise ValueError(f"unsupported value {value!r}")


def marshal(document: Mapping[str, object]) -> str:
    """go-yaml `Marshal` of a mapping whose items are already in the order go-yaml emits."""
    out = _Out()
    _node(out, document, -1, False)
    out.indent(0)  # emitDocumentEnd
    return out.text()


def sorted_keys(keys: Iterable[str]) -> list[str]:
    """go-yaml's map key order for string keys (representer.go keyList.Less)."""
    import functools

    return sorted(keys, key=functools.cmp_to_key(_key_cmp))


def _key_cmp(a: str, b: str) -> int:
    digits = False
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            digits = ca.isdigit()
            continue
        al, bl = ca.isalpha(), cb.isalpha()
        if al and bl:
            return -1 if ca < cb else 1
        if al or bl:
            return (-1 if al else 1) if digits else (-1 if bl else 1)
        an = bn = 0
        if ca == "0" or cb == "0":
            j = i - 1
            while j >= 0 and a[j].isdigit():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdigit():
            an, ai = an * 10 + int(a[ai]), ai + 1
        bi = i
        while bi < len(b) and b[bi].isdigit():
            bn, bi = bn * 10 + int(b[bi]), bi + 1
        if an != bn:
            return -1 if an < bn else 1
        if ai != bi:
            return -1 if ai < bi else 1
        return -1 if ca < cb else 1
    return -1 if len(a) < len(b) else (1 if len(a) > len(b) else 0)
