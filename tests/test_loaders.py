from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_pdf, write_docs

from rag.errors import LoadError
from rag.loaders import html_to_text, load_text, walk


def test_walk_skips_hidden_unsupported_and_given_folders(tmp_path: Path):
    write_docs(
        tmp_path,
        {
            "a.md": "x",
            "b.txt": "x",
            "c.rst": "x",
            "d.markdown": "x",
            "e.htm": "x",
            "f.html": "x",
            "g.pdf": "x",
            "sub/deep/h.txt": "x",
            ".hidden/i.md": "x",
            ".j.md": "x",
            "k.py": "x",
            "l.json": "{}",
            "myindex/m.md": "x",
        },
    )
    found = [p.relative_to(tmp_path).as_posix() for p in walk(tmp_path, (tmp_path / "myindex",))]
    assert found == ["a.md", "b.txt", "c.rst", "d.markdown", "e.htm", "f.html", "g.pdf", "sub/deep/h.txt"]


def test_utf8_and_bom_and_crlf(tmp_path: Path):
    write_docs(tmp_path, {"a.txt": "caf\u00e9\r\nline two\r\n".encode("utf-8-sig")})
    assert load_text(tmp_path / "a.txt") == "caf\u00e9\nline two\n"


def test_non_utf8_text_is_decoded_by_detection(tmp_path: Path):
    text = "Le caf\u00e9 cr\u00e8me br\u00fbl\u00e9e est un dessert fran\u00e7ais, servi froid, tr\u00e8s appr\u00e9ci\u00e9 \u00e0 No\u00ebl."
    write_docs(tmp_path, {"fr.txt": text.encode("cp1252")})
    assert load_text(tmp_path / "fr.txt") == text


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n\t ", "empty"),
        ("binary.txt", b"\x00\x01\x02\x03PNG\x00\x00", "binary"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "corrupt PDF"),
        ("nothing.html", b"<html><script>var a = 1;</script></html>", "no text"),
    ],
)
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
    assert lines == [
        "Attention",
        "Home",
        "Cross-attention",
        "The decoder attends to the encoder outputs.",
        "one",
        "two & three",
    ]


def test_pdf_text_layer(tmp_path: Path):
    write_docs(tmp_path, {"paper.pdf": make_pdf(["T5 casts every task as text to text.", "It was trained on C4."])})
    text = load_text(tmp_path / "paper.pdf")
    assert "T5 casts every task as text to text." in text
    assert "It was trained on C4." in text


# Short real-language samples in legacy encodings: each must come back as the text it was.
# (Short texts are where detectors guess; see rag/encodings.py for the rule.)
LEGACY_SAMPLES = [
    ("cp1252", "El niño comió piña"),
    ("cp1252", "Ça coûte 5 €"),
    ("cp1252", "Où est la forêt?"),
    ("cp1252", "São Paulo é ótima"),
    ("cp1252", "“Hello” – it’s me"),
    ("cp1252", "Größe: 10 °C"),
    ("cp1252", "Sie sagte: „Das kostet 20 €“ – und ging."),
    ("latin-1", "Große Straße, schöne Grüße aus Köln."),
    ("latin-1", "Ísland er fallegt land með jöklum og fossum."),
    ("latin-1", "Ærø og Århus"),
    ("cp1250", "Łódź i Kraków"),
    ("cp1250", "Zażółć gęślą jaźń, powiedział Paweł."),
    ("cp1250", "Příliš žluťoučký kůň úpěl ďábelské ódy."),
    ("cp1251", "Привет мир"),
    ("cp1251", "Съешь же ещё этих мягких французских булок."),
    ("koi8-r", "Привет мир"),
    ("koi8-r", "В чащах юга жил бы цитрус? Да, но фальшивый экземпляр!"),
    ("cp1253", "Καλημέρα κόσμε, τι κάνεις;"),
    ("shift_jis", "こんにちは世界"),
    ("shift_jis", "吾輩は猫である。名前はまだ無い。"),
    ("cp949", "안녕하세요 세계. 오늘 날씨가 좋네요."),
    ("gb18030", "我们今天去北京看长城。"),
]


@pytest.mark.parametrize("encoding, text", LEGACY_SAMPLES, ids=[f"{e}-{i}" for i, (e, _) in enumerate(LEGACY_SAMPLES)])
def test_legacy_encodings_round_trip(tmp_path: Path, encoding, text):
    from rag.encodings import decode_bytes

    assert decode_bytes(text.encode(encoding)) == text
    write_docs(tmp_path, {"sample.txt": text.encode(encoding)})
    assert load_text(tmp_path / "sample.txt") == text


def test_mostly_utf8_with_a_bad_byte_stays_utf8_and_warns():
    from rag.encodings import decode_bytes

    data = "Café naïve — résumé".encode() + b"\xff" + " and more café".encode()
    warnings: list[str] = []
    assert decode_bytes(data, warn=warnings.append) == "Café naïve — résumé\ufffd and more café"
    assert len(warnings) == 1 and "not valid UTF-8: 1 bad byte sequence" in warnings[0]


def _encrypted_pdf(user_password: str) -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(make_pdf(["A protected document about encoders."]))).pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdfs(tmp_path: Path):
    write_docs(tmp_path, {"open.pdf": _encrypted_pdf(""), "locked.pdf": _encrypted_pdf("hunter2")})
    assert "A protected document about encoders." in load_text(tmp_path / "open.pdf")  # AES, empty user password
    with pytest.raises(LoadError, match=r"^encrypted \(password required\)$"):
        load_text(tmp_path / "locked.pdf")
