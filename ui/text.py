"""Text a user or a file supplied (a path, a file or class name, a typed or dataset text), made safe for the
Markdown that st.caption, st.markdown, st.info, st.warning and st.error render."""

import re

# ASCII punctuation Streamlit's Markdown gives a meaning: CommonMark, GitHub autolinks, LaTeX ($), colour and
# Material-icon directives (:red[..], :material/x:), emoji shortcodes (:smile:); a backslash makes each literal
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>$:~/])")
# GitHub's autolinks are found in the text after its escapes are read: a word joiner (U+2060, invisible) after
# "http", "https" or "www" and before "@" keeps an address or e-mail in the text from becoming a link
_AUTOLINK = re.compile(r"(https?|www)(?=[:.])|(?=@)", re.IGNORECASE)
# what a tour file's text may not use: links, pictures, HTML, maths, icons, headings and tables (emphasis, lists
# and `code` stay)
_LINKING = re.compile(r"([\\\[\]()<>!$:~|#])")
SHOWN_CHARS = 400  # of a dataset text shown under the input picker


def literal(text: str) -> str:
    """`text` escaped so that Markdown shows it character for character (no formatting, links, maths or icons)."""
    return _escaped(_MARKDOWN, text)


def prose(text: str) -> str:
    """Markdown from a file someone else may have written (a tour): its emphasis, lists and `code` kept, nothing
    that links, fetches a picture, runs HTML, draws maths or icons."""
    return _escaped(_LINKING, text)


def _escaped(marks: re.Pattern, text: str) -> str:
    """`text` with a backslash before each of `marks` and a word joiner in each would-be autolink."""
    return marks.sub(r"\\\1", _AUTOLINK.sub("\\g<0>\u2060", text))


def excerpt(text: str, limit: int = SHOWN_CHARS) -> str:
    """The first `limit` characters of `text` (cut at a space where one is near), with "…" when cut."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", limit - 40, limit)
    return text[: cut if cut > 0 else limit].rstrip() + " …"
