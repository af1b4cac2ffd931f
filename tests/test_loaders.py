from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import LoadError
from rag.loaders import html_to_text, load_text, walk

from conftest import make_pdf, write_docs


def test_walk_skips_hidden_unsupported_and_given_folders(tmp_path: Path):
    write_docs(tmp_path, {
        "a.md": "x", "b.txt": "x", "c.rst": "x", "d.markdown": "x", "e.htm": "x", "f.html": "x", "g.pdf": "x",
        "sub/deep/h.txt": "x", ".hidden/i.md": "x", ".j.md": "x", "k.py": "x", "l.json": "{}",
        "myindex/m.md": "x",
    })
    found = [p.relative_to(tmp_path).as_posix() for p in walk(tmp_path, (tmp_path / "myindex",))]
    assert found == ["a.md", "b.txt", "c.rst", "d.markdown", "e.htm", "f.html", "g.pdf", "sub/deep/h.txt"]


def test_utf8_and_bom_and_crlf(tmp_path: Path):
    write_docs(tmp_path, {"a.txt": "caf\u00e9\r\nline two\r\n".encode("utf-8-sig")})
    assert load_text(tmp_path / "a.txt") == "caf\u00e9\nline two\n"


def test_non_utf8_text_is_decoded_by_detection(tmp_path: Path):
    text = "Le caf\u00e9 cr\u00e8me br\u00fbl\u00e9e est un dessert fran\u00e7ais, servi froid, tr\u00e8s appr\u00e9ci\u00e9 \u00e0 No\u00ebl."
    write_docs(tmp_path, {"fr.txt": text.encode("cp1252")})
    assert load_text(tmp_path / "fr.txt") == text


@pytest.mark.parametrize("name, content, reason", [
    ("empty.txt", b"", "empty"),
    ("blank.md", b"  \n\n\t ", "empty"),
    ("binary.txt", b"\x00\x01\x02\x03PNG\x00\x00", "binary"),
    ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "corrupt PDF"),
    ("nothing.html", b"<html><script>var a = 1;</script></html>", "no text"),
])
def test_bad_files_raise_load_error_with_reason(tmp_path: Path, name, content, reason):
    write_docs(tmp_path, {name: content})
    with pytest.raises(LoadError, match=reason):
        load_text(tmp_path / name)


def test_permission_denied(tmp_path: Path, monkeypatch):
    path = write_docs(tmp_path, {"secret.txt": "x"}) / "secret.txt"
    real = Path.read_bytes

    def denied(self):  # chmod 0 would not stop root, which CI may be
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(LoadError, match="permission denied"):
        load_text(path)


def test_html_keeps_visible_text_only():
    html = """<!doctype html><html><head><title>Attention</title><style>p { color: red }</style>
    <script>document.write("hidden")</script></head><body><nav>Home</nav>
    <h1>Cross-attention</h1><p>The decoder attends to the <b>encoder</b> outputs.</p>
    <noscript>enable js</noscript><ul><li>one</li><li>two &amp; three</li></ul></body></html>"""
    text = html_to_text(html)
    assert "hidden" not in text and "color" not in text and "enable js" not in text and "<" not in text
    lines = [line for line in text.splitlines() if line]
    assert lines == ["Attention", "Home", "Cross-attention", "The decoder attends to the encoder outputs.", "one", "two & three"]


def test_pdf_text_layer(tmp_path: Path):
    write_docs(tmp_path, {"paper.pdf": make_pdf(["T5 casts every task as text to text.", "It was trained on C4."])})
    text = load_text(tmp_path / "paper.pdf")
    assert "T5 casts every task as text to text." in text
    assert "It was trained on C4." in text
