"""User-chosen names -> safe file names: the one place where a name becomes a path.

Model, dataset, metric and suite names are labels a user types in a suite (or that a board
reads back from an MLflow store, where anything may have been written). A figure is named
after its dataset, and a name such as `../../x/escaped` or `/etc/cron.d/job` joined to a
folder would write outside it (issue 20). Every file name this package builds from such a
name goes through `safe_filename`; the folders are always ours (a temporary folder, the
cache, the run's artifacts).

The mapping:
- a name that is already safe maps to itself, so ordinary names stay readable and cache
  keys, artifact names and links do not change;
- any other name keeps its readable part (path separators become `_`, `.` and `..`
  components are dropped, other unsafe characters become `_`, the length is bounded) and
  gains `-` and 10 hex digits of a hash of the whole name, before its extension. So two
  names never share a file (unless one of them is already the mapped form of the other,
  which takes guessing a 40-bit hash), and the result is safe: mapping it again changes
  nothing.

Safe means: one path component of letters, digits, marks and `-_.+=@,()[]` and inner
spaces; not starting with `.`, `-` or a space, not ending with `.` or a space (Windows drops
those); no control or format characters, no `/`, `\\`, `:` or other characters that
Windows, shells or URLs read specially; not a Windows device name (`CON`, `NUL`, `COM1`...);
at most `max_len` bytes in UTF-8. Letter case is kept, so on a case-insensitive file system
`A.png` and `a.png` are one file (suites rarely name two datasets that way).

What validation refuses instead (bench.config.suite, `name_problem`): control characters and
bidirectional overrides in a suite's names (they rewrite the terminal and the board, and no
file name can show them), and names longer than MAX_NAME. A `/` in a name is kept (a
model called `stylegan2/ffhq` is a fine label) and mapped only where a file is named.

Names validation never saw (read back from a store, class folder and file names) are shown
through `printable`, the one place a name becomes text for a person: every board format,
the HTML page, the runner's console lines, `bench` errors and warnings (issue 29).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_LEN = 120  # bytes of a mapped file name: well under every file system's 255
MAX_NAME = 200  # characters of a suite's name: labels in boards and MLflow (run names: 250)
HASH_LEN = 10
_PUNCT = frozenset("-_.+=@,()[] ")
_EXT = re.compile(r"\.[A-Za-z0-9]{1,10}$")
_WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                              *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))})
# bidirectional embeddings, overrides and isolates: they reorder how a line is displayed
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _char_ok(c: str) -> bool:
    return c in _PUNCT or unicodedata.category(c)[0] in "LNM"


def is_safe(name: str, max_len: int = MAX_LEN) -> bool:
    """Whether `name` is already a safe single file name (see the module docstring)."""
    return (bool(name) and name[0] not in ".- " and name[-1] not in ". "
            and all(_char_ok(c) for c in name)
            and len(name.encode("utf-8", "surrogatepass")) <= max_len
            and name.split(".", 1)[0].rstrip(" ").upper() not in _WINDOWS_DEVICES)


def _bounded(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` (whole characters) of at most `max_bytes` in UTF-8."""
    out, used = [], 0
    for c in text:
        n = len(c.encode("utf-8"))
        if used + n > max_bytes:
            break
        out.append(c)
        used += n
    return "".join(out)


def safe_filename(name: str, max_len: int = MAX_LEN) -> str:
    """`name` as one safe file name of at most `max_len` bytes: itself when it is safe,
    else its readable part with a hash of the whole name (see the module docstring)."""
    if max_len < 2 * HASH_LEN + 12:
        raise ValueError(f"max_len must leave room for the hash and an extension, got {max_len}")
    name = str(name)
    if is_safe(name, max_len):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LEN]
    # path components: `a/../b` and `\\server\share` keep their words, never their climbing
    parts = [p for p in re.split(r"[/\\]+", name) if p.strip(" .")]
    text = "_".join("".join(c if _char_ok(c) else "_" for c in p) for p in parts)
    ext = ""
    if (m := _EXT.search(text)) and m.start() > 0:
        text, ext = text[: m.start()], m.group()
    text = text.lstrip(".- ").rstrip(". ")
    room = max_len - len(ext) - HASH_LEN - 1
    text = _bounded(text, room).rstrip(". ") or "_"
    return f"{text}-{digest}{ext}"


def name_problem(name: str) -> str | None:
    """Why a suite may not use `name` for a model, dataset, metric or the suite itself, or
    None: what a file name cannot show is refused at validation, the rest is mapped by
    `safe_filename` where a file is named after it."""
    if not name or not name.strip():
        return "is empty. Give it a name"
    for c in name:
        if unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI:
            what = ("a bidirectional override" if c in _BIDI
                    else "a lone surrogate" if unicodedata.category(c) == "Cs"
                    else "a control character")
            return (f"contains {what} ({ascii(c)}), which would rewrite the terminal, logs and "
                    "boards that show it. Remove it")
    if len(name) > MAX_NAME:
        return (f"is {len(name)} characters long; names are labels in boards and MLflow runs and "
                f"may have at most {MAX_NAME}. Shorten it")
    return None


def printable(text: object, keep: str = "") -> str:
    """`text` with control characters, lone surrogates and bidirectional overrides written
    as visible escapes (ESC as `\\x1b`, so `\\x1b[31m` prints as those characters, never as a
    colour change): the one function every name goes through before a terminal, a log, a
    markdown or HTML board shows it (names read back from a store, class folder names and
    file names were never validated). `keep`: control characters left as they are (a
    rendered board keeps its own line breaks, `keep="\\n"`). Idempotent: the escapes hold no
    control character."""
    # one regular-expression pass (a 10,000-model board is megabytes): Cc is exactly
    # U+0000-001F and U+007F-009F, Cs the surrogates
    return _SHOWN.sub(lambda m: m[0] if m[0] in keep else ascii(m[0])[1:-1], str(text))


_SHOWN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff" + "".join(sorted(_BIDI)) + "]")


def md_text(text: object) -> str:
    """`text` (a name) as inert GitHub-flavoured markdown inline text: shown as written, never
    as a tag, a link, emphasis, a heading, math or a second table cell (issue 28). Control
    characters are escaped first (`printable`, so no line break reaches the board), then
    markdown's punctuation: `\\`, backticks, `*`, `~`, `$`, `[`, `]`, `{`, `}`, `#` and `|` as
    backslash escapes, `<` and `&` as entities where a tag, autolink or character
    reference could start (`x < y` stays),
    `_` unless it is inside a word (`cgan_v2`: never emphasis there), a leading `+`, `-`, `=`,
    `>` (a list marker, underline or quote at a line's start; `a->b` inside stays), and the
    `://` and `www.` that GitHub turns into links. Ordinary names
    (`cgan_v2.1`, `dcgan-mnist`, `real (held-out)`) map to themselves. An e-mail address
    still becomes a mailto link showing itself: GitHub finds those after the escapes are
    undone. Idempotent only on names that need no escape."""
    s = _SHOWN.sub(lambda m: ascii(m[0])[1:-1], str(text))
    s = _MD_SPECIAL.sub(lambda m: _MD_ENTITY.get(m[0], "\\" + m[0]), s)
    s = _MD_UNDERSCORE.sub(_md_underscores, s)
    s = _MD_LINKISH.sub(lambda m: "\\://" if m[0] == "://" else m[0][:3] + "\\.", s)
    return "\\" + s if s[:1] in ("+", "-", "=", ">") else s


def md_code(text: object) -> str:
    """`text` (a name) as a markdown code span, shown literally: a fence of one backtick
    more than the longest run inside (`a`b` needs ``a`b``), padded when it starts or ends
    with a backtick. Ordinary names give `name`. Not for table cells (a `|` there would
    split the cell: use `md_text`)."""
    s = _SHOWN.sub(lambda m: ascii(m[0])[1:-1], str(text)) or " "
    fence = "`" * (max(map(len, re.findall("`+", s)), default=0) + 1)
    pad = " " if s[0] == "`" or s[-1] == "`" or (s[0] == s[-1] == " " and s.strip()) else ""
    return f"{fence}{pad}{s}{pad}{fence}"


# `<` only before what opens a tag or autolink, `&` before what a character reference needs
_MD_SPECIAL = re.compile(r"[\\`*~$\[\]{}#|]|<(?=[A-Za-z/!?])|&(?=[#A-Za-z0-9])")
_MD_ENTITY = {"<": "&lt;", "&": "&amp;"}
_MD_UNDERSCORE = re.compile("_+")


def _md_underscores(m: re.Match[str]) -> str:
    """A run of `_` between two letters or digits is never emphasis (kept); any other can
    open or close it (escaped)."""
    s, i, j = m.string, m.start(), m.end()
    inner = 0 < i and j < len(s) and s[i - 1].isalnum() and s[j].isalnum()
    return m[0] if inner else "\\_" * (j - i)


# GitHub's extended autolinks start at `scheme:` + `//` and `www.`: an escaped `:`/`.` stops them
_MD_LINKISH = re.compile(r"(?i)://|(?<![^\W_])www\.")
